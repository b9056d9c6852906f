"""Registry of the NUFFT backends behind `fastmri_recon.ops.nufft.NUFFTPlan`.

A backend computes the raw NUFFT; `NUFFTPlan` keeps the shape handling and registers the gradients
(with respect to the image, and to the trajectory with ``grad_traj=True``) from the backend's forward
and adjoint, so every backend gets the same interface and the same gradients.

Backends:

- ``"tensorflow"`` (the default and the reference): `fastmri_recon.ops.nufft.TensorFlowEngine`, pure
  TensorFlow, differentiable, usable inside ``tf.function`` (XLA-compiled or not) and distribution
  strategies, and the only one exposing its interpolation matrix (`NUFFTPlan.interpolate`, ``spread``,
  ``grid_shape``, ``width``, ``beta``, ``kernel_integral``, used by density compensation).
- ``"finufft"``: `fastmri_recon.ops.nufft_finufft.FinufftEngine`, the Flatiron Institute NUFFT on CPU
  through ``tf.numpy_function`` (``pip install finufft``; imported only when selected). Works eagerly,
  inside ``tf.function`` and under a distribution strategy; refuses XLA compilation with a
  `ConfigError`, and is not serialisable in a SavedModel graph (``tf.numpy_function``).

Selection: the ``backend=`` argument of `NUFFTPlan`, `nufft` and `nufft_adjoint`; when it is None,
the environment variable ``FASTMRI_RECON_NUFFT_BACKEND`` (read at every plan construction); when that
is unset or empty, ``"tensorflow"``.

Engine protocol (for `register_backend`): ``factory(trajectory, image_shape, eps, oversampling, width)``
with a float32 ``(B, d, M)`` trajectory tensor, a tuple of ints ``N``, the requested accuracy, the
oversampling factor and the kernel width (None: chosen from ``eps``) returns an object with

- ``image_shape``: the tuple ``N``;
- ``xla_compatible``: whether its ops can be XLA-compiled;
- ``forward(x)``: complex64 ``(B, C, *N)`` -> ``(B, C, M)``, the type-2 NUFFT
  ``y_j = (1 / sqrt(prod N)) sum_n x[n] exp(-i w_j . (n - N // 2))`` (no gradient needed);
- ``adjoint(y)``: complex64 ``(B, C, M)`` -> ``(B, C, *N)``, its conjugate transpose.
"""

import dataclasses
import importlib
import os

from fastmri_recon.errors import ConfigError

ENV_VAR = "FASTMRI_RECON_NUFFT_BACKEND"
"""Environment variable naming the backend used when ``backend=None``."""

DEFAULT_BACKEND = "tensorflow"
"""The backend used when neither the argument nor the environment variable names one."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """A registered backend: where its engine factory lives and what it needs.

    Attributes:
        name: the name users select it by.
        module, attribute: the engine factory is ``module.attribute`` (imported when selected).
        requires: the Python module that must be importable (None: nothing beyond this package).
        pip_package: the package that provides ``requires``, named in the error when it is missing.
    """

    name: str
    module: str
    attribute: str
    requires: str = None
    pip_package: str = None


_REGISTRY = {}


def register_backend(name, module, attribute, requires=None, pip_package=None):
    """Register (or replace) a backend; its module is imported only when it is selected.

    Args:
        name: non-empty string.
        module, attribute: dotted module path and attribute name of the engine factory.
        requires: importable module the backend needs, or None.
        pip_package: the package to ``pip install`` for ``requires`` (default: ``requires``).

    Raises:
        ConfigError: for an empty or non-string name.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a NUFFT backend name must be a non-empty string, got {name!r}")
    _REGISTRY[name] = Backend(name, module, attribute, requires, pip_package or requires)


register_backend(DEFAULT_BACKEND, "fastmri_recon.ops.nufft", "TensorFlowEngine")
register_backend("finufft", "fastmri_recon.ops.nufft_finufft", "FinufftEngine", requires="finufft")


def registered_backends():
    """Names of all registered backends, installed or not (tuple of str, registration order)."""
    return tuple(_REGISTRY)


def backend_name(backend=None):
    """The backend selected by ``backend``, else by ``FASTMRI_RECON_NUFFT_BACKEND``, else the default.

    Raises:
        ConfigError: for a name that is not registered.
    """
    if backend is None:
        backend = os.environ.get(ENV_VAR, "").strip() or DEFAULT_BACKEND
        source = f"environment variable {ENV_VAR}"
    else:
        source = "backend"
    if backend not in _REGISTRY:
        raise ConfigError(f"{source} must be one of {sorted(_REGISTRY)}, got {backend!r}")
    return backend


def _import_requirement(entry):
    """Import what ``entry`` needs; ConfigError naming the pip package when it is missing."""
    if entry.requires is None:
        return
    try:
        importlib.import_module(entry.requires)
    except ImportError as error:
        raise ConfigError(
            f"the NUFFT backend {entry.name!r} needs the Python package {entry.pip_package!r}: "
            f"pip install {entry.pip_package} (or use backend='{DEFAULT_BACKEND}')"
        ) from error


def is_available(name):
    """Whether the registered backend ``name`` can be used here (its required package imports).

    Raises:
        ConfigError: for a name that is not registered.
    """
    entry = _REGISTRY[backend_name(name)]
    try:
        _import_requirement(entry)
    except ConfigError:
        return False
    return True


def available_backends():
    """Names of the registered backends whose packages are installed (tuple of str)."""
    return tuple(name for name in _REGISTRY if is_available(name))


def engine_factory(backend=None):
    """Resolve a backend selection to its name and engine factory.

    Args:
        backend: a registered name, or None (environment variable, then the default).

    Returns:
        ``(name, factory)``; ``factory`` follows the engine protocol of the module docstring.

    Raises:
        ConfigError: for an unknown name or a backend whose package is not installed.
    """
    entry = _REGISTRY[backend_name(backend)]
    _import_requirement(entry)
    return entry.name, getattr(importlib.import_module(entry.module), entry.attribute)

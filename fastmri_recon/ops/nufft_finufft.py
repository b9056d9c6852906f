"""The ``"finufft"`` NUFFT backend: the Flatiron Institute NUFFT (CPU) behind `ops.nufft.NUFFTPlan`.

Optional (``pip install finufft``): this module is imported by `ops.nufft_backends` only when the
backend is selected. The engine follows the protocol of `ops.nufft_backends`; `NUFFTPlan` registers
the gradients (image and, with ``grad_traj=True``, trajectory) from its forward and adjoint.

Mapping to finufft (single precision): the forward is finufft's type 2 with ``isign=-1`` and the
adjoint its type 1 with ``isign=+1``, both on the centred modes ``n - N // 2`` (finufft's default mode
order), times ``1 / sqrt(prod N)``; the trajectory is wrapped into ``[-pi, pi)`` first; ``eps`` is
passed as is and finufft chooses its own kernel width. An oversampling other than the package's
default (2) is passed as ``upsampfac``; at the default, finufft chooses its own (1.25 or 2, by its
heuristic on ``eps`` and the sizes: what a direct finufft call does).

Plans. With an eager trajectory, the finufft plans (``setpts`` included) are made at the first call
for each example, transform type and number of coils, and reused (guarded by a lock: a finufft plan is
not safe to execute from two threads at once). With a symbolic trajectory (a plan built inside
``tf.function``), the trajectory is an input of the ``tf.numpy_function`` and the plans are made at
every call. finufft uses all cores unless its ``nthreads`` option is set (not exposed here).
"""

import math
import threading

import finufft
import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.ops.nufft import DEFAULT_OVERSAMPLING


def _points(trajectory):
    """float32 ``(d, M)`` radians -> ``d`` contiguous float32 arrays in ``[-pi, pi)``."""
    wrapped = np.mod(np.asarray(trajectory, np.float64) + np.pi, 2.0 * np.pi) - np.pi
    return [np.ascontiguousarray(axis, np.float32) for axis in wrapped]


class FinufftEngine:
    """finufft plans for a canonical trajectory (see the module docstring).

    Args:
        trajectory: float32 ``(B, d, M)`` tensor (eager: plans reused; symbolic: made per call).
        image_shape: tuple of ints ``N``.
        eps: requested relative accuracy (finufft's ``eps``).
        oversampling: finufft's ``upsampfac``; at ``ops.nufft.DEFAULT_OVERSAMPLING`` finufft chooses.
        width: must be None (finufft sets its kernel width from ``eps``).

    Raises:
        ConfigError: if ``width`` is given.
    """

    name = "finufft"
    xla_compatible = False

    def __init__(self, trajectory, image_shape, eps, oversampling, width):
        if width is not None:
            raise ConfigError(f"width must be None for the 'finufft' backend (it sets its own from eps), got {width!r}")
        self.image_shape = tuple(image_shape)
        self.eps = float(eps)
        self._options = {} if float(oversampling) == DEFAULT_OVERSAMPLING else {"upsampfac": float(oversampling)}
        self.trajectory = trajectory
        self._scale = 1.0 / math.sqrt(float(np.prod(self.image_shape)))
        self._static_points = None if tf.is_symbolic_tensor(trajectory) else trajectory.numpy()
        self._cache = {}
        self._lock = threading.Lock()

    # -- finufft plans -----------------------------------------------------------------------------

    def _new_plan(self, kind, coils, trajectory):
        plan = finufft.Plan(kind, self.image_shape, n_trans=coils, eps=self.eps, isign=-1 if kind == 2 else 1,
                            dtype="complex64", **self._options)
        plan.setpts(*_points(trajectory))
        return plan

    def _run(self, kind, data, trajectory):
        """Apply the type-``kind`` transform per example: NumPy ``(B, C, ...)`` -> ``(B, C, ...)`` complex64."""
        batch, coils = data.shape[:2]
        outputs = []
        for b in range(batch):
            example = data[b] if coils > 1 else data[b, 0]
            if self._static_points is None:
                out = self._new_plan(kind, coils, trajectory[b]).execute(example)
            else:
                with self._lock:
                    key = (kind, b, coils)
                    if key not in self._cache:
                        self._cache[key] = self._new_plan(kind, coils, self._static_points[b])
                    out = self._cache[key].execute(example)
            outputs.append(np.reshape(out, (coils, -1) if kind == 2 else (coils, *self.image_shape)))
        return (np.stack(outputs) * np.float32(self._scale)).astype(np.complex64)

    # -- the engine protocol -------------------------------------------------------------------------

    def forward(self, x):
        """Type-2 NUFFT: complex64 ``(B, C, *N)`` -> ``(B, C, M)``."""
        y = tf.numpy_function(lambda data, traj: self._run(2, data, traj), [x, self.trajectory], tf.complex64,
                              stateful=False)
        y.set_shape([x.shape[0], x.shape[1], self.trajectory.shape[2]])
        return y

    def adjoint(self, y):
        """Adjoint NUFFT (type 1, ``+i``): complex64 ``(B, C, M)`` -> ``(B, C, *N)``."""
        x = tf.numpy_function(lambda data, traj: self._run(1, data, traj), [y, self.trajectory], tf.complex64,
                              stateful=False)
        x.set_shape([y.shape[0], y.shape[1], *self.image_shape])
        return x

"""The deep-equilibrium (DEQ) Keras layer (Bai et al. 2019) with the backward modes of SHINE.

``DEQ(f)(x, z0)`` returns the fixed point ``z* = f(z*, x)``:

- forward: a root solver (`solvers`) on ``g(z) = z - f(z, x)`` from ``z0``, run inside a
  ``tf.function`` whose outputs are cut from the gradient (``tf.stop_gradient``), so that no tape
  keeps any of its activations: the memory does not grow with the number of iterations;
- then one differentiable application ``z_out = f(z*, x)``: the gradients with respect to the
  weights of ``f`` and to ``x`` flow through it, with the incoming gradient replaced by the backward
  direction ``w ~ (I - J_f)^-T dL/dz`` (a ``tf.custom_gradient`` identity on ``z_out``), which is
  the implicit-function-theorem gradient (`backward`);
- backward modes: ``implicit``, ``shine``, ``shine-fallback``, ``shine-refine``, ``jacobian-free``
  (`backward.MODES`), and ``opa_every`` for the Outer-Problem-Awareness updates of the forward
  Broyden (adjoint Broyden, with the loss gradient ``outer_gradient_fn(z)`` injected every
  ``opa_every`` steps).

The state ``z`` may be any real or complex tensor ``(batch, ...)``; the solvers see it flattened to
``(batch, d)`` real (complex parts as real and imaginary halves; TensorFlow's complex gradients are
``dL/dRe + i dL/dIm``, so the packing is consistent with them). ``x`` may be any nest of tensors.

The layer keeps the statistics of its last forward and backward passes in variables outside the
Keras weights (not saved, not trained): `DEQ.solver_stats` (mean forward steps, fraction converged,
largest relative residual, mean backward steps, SHINE fallback rate) and `DEQ.fallback_rate`.
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.implicit.backward import NEEDS_FACTORS, adjoint_direction, check_mode
from fastmri_recon.implicit.solvers import get_solver

STATS = ("forward_steps", "forward_converged", "forward_residual", "backward_steps", "fallback_rate")


class Packer:
    """Flattens a state ``(batch, ...)`` (real or complex) to real ``(batch, d)`` and back.

    Args:
        like: a tensor with the state's shape and dtype.
    """

    def __init__(self, like):
        self.shape = tf.shape(like)
        self.static_shape = like.shape
        self.dtype = like.dtype
        self.real_dtype = like.dtype.real_dtype
        size = like.shape[1:].num_elements()
        self.static_packed = [like.shape[0], None if size is None else size * (2 if like.dtype.is_complex else 1)]

    def pack(self, z):
        """float ``(batch, d)`` (``d`` doubled for complex states)."""
        flat = tf.reshape(z, tf.stack([self.shape[0], -1]))
        if self.dtype.is_complex:
            flat = tf.concat([tf.math.real(flat), tf.math.imag(flat)], axis=-1)
        flat = tf.cast(flat, self.real_dtype)
        flat.set_shape(self.static_packed)
        return flat

    def unpack(self, flat):
        """The state, of the shape and dtype of ``like``."""
        if self.dtype.is_complex:
            real, imag = tf.split(flat, 2, axis=-1)
            flat = tf.complex(real, imag)
        z = tf.reshape(tf.cast(flat, self.dtype), self.shape)
        z.set_shape(self.static_shape)
        return z


class _Untracked:
    """A plain holder: what it holds is invisible to Keras and TensorFlow tracking (not saved)."""

    def __init__(self, **items):
        self.__dict__.update(items)


def _stat_variable(name):
    return tf.Variable(
        0.0,
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


@keras.saving.register_keras_serializable(package="fastmri_recon")
class DEQ(keras.layers.Layer):
    """Deep-equilibrium layer: the fixed point of ``f(z, x)`` with implicit / SHINE gradients.

    Args:
        function: a Keras layer (or a registered serializable function) called as ``f(z, x)`` and
            returning a tensor of ``z``'s shape and dtype.
        solver: forward solver, ``"broyden"``, ``"anderson"`` or ``"fixed-point"`` (the SHINE modes
            need ``"broyden"``).
        max_iter: forward iterations.
        tol: forward relative tolerance, ``||z - f(z)|| <= tol ||z||`` (per example).
        memory: Broyden rank-one updates / Anderson iterates kept (None: all, resp. 5).
        mixing: damping of the fixed-point and Anderson steps.
        backward: the backward mode (`backward.MODES`).
        backward_solver: solver of the ``implicit`` and ``shine-refine`` backward systems.
        backward_max_iter: iterations of the ``implicit`` backward solve.
        backward_tol: its relative tolerance.
        refine_iter: iterations of ``shine-refine``.
        fallback_threshold: ``shine-fallback`` falls back to ``dL/dz`` for the examples where
            ``||H^T dL/dz|| > fallback_threshold ||dL/dz||``.
        opa_every: None, or the period of the OPA updates: the forward solver is then adjoint
            Broyden and the call needs ``outer_gradient_fn``.

    Call args:
        x: a tensor or nest of tensors, the input of ``f``.
        z0: the initial state ``(batch, ...)``, float or complex; default ``zeros_like(x)`` (``x`` a tensor).
        outer_gradient_fn: ``z -> dL/dz`` (the state's shape and dtype), needed with ``opa_every``.

    Returns:
        The fixed point, of ``z0``'s shape and dtype.

    Raises:
        ConfigError: for an unknown solver or mode, a SHINE mode without Broyden, or OPA without
            ``outer_gradient_fn``.
    """

    def __init__(
        self,
        function,
        solver="broyden",
        max_iter=30,
        tol=1e-4,
        memory=None,
        mixing=1.0,
        backward="shine-fallback",
        backward_solver="broyden",
        backward_max_iter=30,
        backward_tol=1e-4,
        refine_iter=5,
        fallback_threshold=2.0,
        opa_every=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # complex states: no float16 autocasting of the inputs
        super().__init__(**kwargs)
        get_solver(solver)
        get_solver(backward_solver)
        check_mode(backward)
        if (backward in NEEDS_FACTORS or opa_every is not None) and solver != "broyden":
            raise ConfigError(f"DEQ: backward {backward!r} and OPA need the 'broyden' forward solver, got {solver!r}")
        self.function = function
        self.solver = solver
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.memory = None if memory is None else int(memory)
        self.mixing = float(mixing)
        self.backward = backward
        self.backward_solver = backward_solver
        self.backward_max_iter = int(backward_max_iter)
        self.backward_tol = float(backward_tol)
        self.refine_iter = int(refine_iter)
        self.fallback_threshold = float(fallback_threshold)
        self.opa_every = None if opa_every is None else int(opa_every)
        self._state = _Untracked(
            solve=tf.function(self._solve, reduce_retracing=True),
            stats={name: _stat_variable(name) for name in STATS},
        )

    def build(self, input_shape=None):
        """Build ``f`` (if it is an unbuilt layer) for a state shaped like ``x``, the default ``z0``.

        A layer whose state has another shape must be built beforehand (or is built by the first call).
        """
        single = isinstance(input_shape, tf.TensorShape) or (
            isinstance(input_shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in input_shape)
        )
        if isinstance(self.function, keras.layers.Layer) and not self.function.built and single:
            self.function.build(input_shape)
        self.built = True

    # -- forward -------------------------------------------------------------------------------

    def _solver_options(self):
        if self.solver == "broyden":
            return {"memory": self.memory}
        if self.solver == "anderson":
            return {"memory": self.memory or 5, "mixing": self.mixing}
        return {"mixing": self.mixing}

    def _solve(self, z0, x, outer_gradient_fn=None):
        """The forward solve from ``z0``, cut from the gradient; returns a `SolverResult` (packed states)."""
        packer = Packer(z0)
        options = self._solver_options()
        if self.opa_every is not None:
            options.update(
                update="adjoint",
                opa_every=self.opa_every,
                opa_direction=lambda z: packer.pack(outer_gradient_fn(packer.unpack(z))),
            )
        result = get_solver(self.solver)(
            lambda z: z - self._apply(packer, z, x), packer.pack(z0), max_iter=self.max_iter, tol=self.tol, **options
        )
        return tf.nest.map_structure(lambda t: None if t is None else tf.stop_gradient(t), result)

    def _apply(self, packer, z, x):
        return packer.pack(self.function(packer.unpack(z), x))

    def call(self, x, z0=None, outer_gradient_fn=None):
        if z0 is None:
            if not tf.is_tensor(x):
                raise ConfigError("DEQ: give z0 when the input x is not a single tensor")
            z0 = tf.zeros_like(x)
        if self.opa_every is not None and outer_gradient_fn is None:
            raise ConfigError("DEQ: opa_every needs outer_gradient_fn (z -> dL/dz) in the call")
        if isinstance(self.function, keras.layers.Layer) and not self.function.built:
            self.function(z0, x)  # create the weights outside the solver's tf.function
        packer = Packer(z0)
        result = self._state.solve(z0, x, outer_gradient_fn)
        self._record_forward(result)
        z_star = result.z
        z_out = self._adjoint_hook(self._apply(packer, z_star, x), z_star, x, packer, result.factors)
        return packer.unpack(z_out)

    # -- backward ------------------------------------------------------------------------------

    def _adjoint_hook(self, z_out, z_star, x, packer, factors):
        """Identity on ``z_out`` whose gradient maps ``dL/dz`` to ``w ~ (I - J_f)^-T dL/dz`` at ``z_star``."""
        x = tf.nest.map_structure(tf.stop_gradient, x)

        @tf.custom_gradient
        def hook(z):
            def grad(upstream):
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch(z_star)
                    fz = self._apply(packer, z_star, x)

                def jt_vector(v):  # (I - J_f)^T v
                    return v - tape.gradient(fz, z_star, output_gradients=v)

                w, info = adjoint_direction(
                    upstream,
                    jt_vector,
                    self.backward,
                    factors=factors,
                    solver=self.backward_solver,
                    max_iter=self.backward_max_iter,
                    tol=self.backward_tol,
                    refine_iter=self.refine_iter,
                    fallback_threshold=self.fallback_threshold,
                )
                with tf.control_dependencies(self._record_backward(info)):
                    return tf.identity(w)

            return tf.identity(z), grad

        return hook(z_out)

    # -- statistics ----------------------------------------------------------------------------

    def _assign(self, values):
        stats = self._state.stats
        return [stats[name].assign(tf.cast(value, tf.float32)) for name, value in values.items()]

    def _record_forward(self, result):
        relative = result.residual / tf.maximum(tf.norm(result.z, axis=-1), 1e-30)
        return self._assign(
            {
                "forward_steps": tf.reduce_mean(tf.cast(result.n_steps, tf.float32)),
                "forward_converged": tf.reduce_mean(tf.cast(result.converged, tf.float32)),
                "forward_residual": tf.reduce_max(relative),
            }
        )

    def _record_backward(self, info):
        return self._assign(
            {
                "backward_steps": tf.reduce_mean(tf.cast(info.n_steps, tf.float32)),
                "fallback_rate": tf.reduce_mean(tf.cast(info.fallback, tf.float32)),
            }
        )

    def solver_stats(self):
        """Statistics of the last forward and backward passes.

        Returns:
            dict: ``forward_steps`` (mean over examples), ``forward_converged`` (fraction),
            ``forward_residual`` (largest ``||z - f(z)|| / ||z||``), ``backward_steps`` (mean), and
            ``fallback_rate`` (fraction of examples where ``shine-fallback`` fell back), as floats.
        """
        return {name: float(variable.numpy()) for name, variable in self._state.stats.items()}

    @property
    def fallback_rate(self):
        """Fraction of the examples of the last backward pass that fell back to ``jacobian-free``."""
        return float(self._state.stats["fallback_rate"].numpy())

    # -- configuration -------------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "function": keras.saving.serialize_keras_object(self.function),
            "solver": self.solver,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "memory": self.memory,
            "mixing": self.mixing,
            "backward": self.backward,
            "backward_solver": self.backward_solver,
            "backward_max_iter": self.backward_max_iter,
            "backward_tol": self.backward_tol,
            "refine_iter": self.refine_iter,
            "fallback_threshold": self.fallback_threshold,
            "opa_every": self.opa_every,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["function"] = keras.saving.deserialize_keras_object(config["function"])
        return cls(**config)

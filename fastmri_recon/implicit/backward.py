"""The backward pass of an implicit model: the direction ``w ~ J^-T grad`` by each mode.

At a root ``z*`` of ``g(z, theta) = 0``, the implicit function theorem gives
``dz*/dtheta = -J^-1 dg/dtheta`` with ``J = dg/dz (z*)``, so the gradient of a loss ``L(z*)`` is

    dL/dtheta = -w^T dg/dtheta,   where   J^T w = grad = dL/dz (z*).

For a deep equilibrium ``g = z - f(z, x)``, ``J^T w = w - J_f^T w`` and ``dL/dtheta = w^T df/dtheta``:
``w`` is the cotangent to pull back through one application of ``f`` at ``z*``. `adjoint_direction`
computes ``w`` by the modes of SHINE (Ramzi et al. 2022):

- ``implicit``: an iterative solve of ``J^T w = grad`` from ``w_0 = grad`` (one VJP per
  iteration), accurate to the solver's tolerance;
- ``shine``: ``w = H^T grad`` with ``H ~ J^-1`` the forward Broyden estimate (two small matrix
  products);
- ``shine-fallback``: ``shine``, or ``grad`` for the examples where
  ``||H^T grad|| > fallback_threshold ||grad||``;
- ``shine-refine``: ``refine_iter`` iterations of the ``implicit`` solve started from ``H^T grad``
  (Broyden started from the estimate ``H^T`` itself): between ``shine`` and ``implicit``;
- ``jacobian-free``: ``w = grad`` (Fung et al. 2022, ``J ~ I``), exact only when ``J_f = 0``.

Accuracy of ``shine``: the good-Broyden estimate is secant-exact along the forward steps only; in a
generic direction it is not exact, and it beats the Jacobian-free direction only where Broyden's
inverse estimate is good (a well-converged forward solve of a strongly contractive map): on the tests'
5-dimensional ``tanh(z W + x)`` with ``||W|| = 0.8``, the weight gradient is 15 % off with ``shine``,
62 % with ``jacobian-free``, but with a spectral radius of 0.97 and a poor estimate the ``shine``
direction's cosine with the true one was measured at 0.32 against 0.68 for ``jacobian-free`` and 2e-10 after 5 ``shine-refine`` iterations; on the bilevel logistic regression
(``experiments/deq_shine/logreg_problem.py``), 5 % at a cold start but up to orders of magnitude after the few steps of a warm-started
solve. With adjoint Broyden or OPA updates (`solvers.broyden`) it becomes exact on affine problems
once the forward solve has converged (relative error below 1e-6 in the tests) and within 0.2 % on
the logistic regression. ``shine-fallback``'s threshold bounds the
direction: for a contraction ``||J_f|| <= rho``, ``||J^-T grad|| <= ||grad|| / (1 - rho)``, so a larger
norm flags an estimate that is off (the default 2 assumes ``rho <= 1/2``).
"""

from typing import NamedTuple

import tensorflow as tf

from fastmri_recon.errors import ConfigError
from fastmri_recon.implicit.solvers import apply_inverse_transpose, get_solver, transpose_factors

MODES = ("implicit", "shine", "shine-fallback", "shine-refine", "jacobian-free")
NEEDS_FACTORS = ("shine", "shine-fallback", "shine-refine")


class BackwardInfo(NamedTuple):
    """Per-example report of a backward direction.

    Attributes:
        fallback: bool ``(batch,)``, examples that fell back to the Jacobian-free direction.
        n_steps: int32 ``(batch,)``, iterations of the backward solve (0 without one).
        residual: float ``(batch,)``, ``||J^T w - grad||`` where a solve ran, else -1.
    """

    fallback: tf.Tensor
    n_steps: tf.Tensor
    residual: tf.Tensor


def check_mode(mode):
    """Raise `ConfigError` unless ``mode`` is one of `MODES`."""
    if mode not in MODES:
        raise ConfigError(f"unknown backward mode {mode!r} (known: {', '.join(MODES)})")


def adjoint_direction(
    grad,
    jt_vector,
    mode,
    factors=None,
    solver="broyden",
    max_iter=30,
    tol=1e-4,
    atol=0.0,
    refine_iter=5,
    fallback_threshold=2.0,
):
    """The direction ``w ~ J^-T grad`` for the backward pass of an implicit model.

    Args:
        grad: float ``(batch, d)``, ``dL/dz`` at the solution.
        jt_vector: ``v -> J^T v`` (float ``(batch, d)`` both), the vector-Jacobian product of the root
            function at the solution.
        mode: one of `MODES`.
        factors: the forward Broyden factors ``(U, V)`` (``H = I + U^T V``), needed by the SHINE modes.
        solver: the backward solver (``"broyden"``, ``"anderson"`` or ``"fixed-point"``), for
            ``implicit`` and ``shine-refine``.
        max_iter, tol, atol: the ``implicit`` solve's iterations and tolerances.
        refine_iter: iterations of ``shine-refine``.
        fallback_threshold: the ``shine-fallback`` bound on ``||H^T grad|| / ||grad||``.

    Returns:
        ``(w, BackwardInfo)``, ``w`` float ``(batch, d)``.

    Raises:
        ConfigError: for an unknown mode or solver, or a SHINE mode without factors.
    """
    check_mode(mode)
    if mode in NEEDS_FACTORS and factors is None:
        raise ConfigError(f"backward mode {mode!r} needs the forward Broyden factors (forward solver 'broyden')")
    batch = tf.shape(grad)[:1]
    no_fallback = tf.zeros(batch, tf.bool)
    info = BackwardInfo(no_fallback, tf.zeros(batch, tf.int32), -tf.ones(batch, grad.dtype))
    if mode == "jacobian-free":
        return grad, info
    if mode == "implicit":
        return _solve(grad, jt_vector, grad, None, solver, max_iter, tol, atol, no_fallback)
    w = apply_inverse_transpose(factors, grad)
    if mode == "shine":
        return w, info
    if mode == "shine-fallback":
        ratio = tf.norm(w, axis=-1) / tf.maximum(tf.norm(grad, axis=-1), 1e-30)
        fallback = ~(ratio <= fallback_threshold)  # NaN counts as a fallback
        return tf.where(fallback[:, None], grad, w), info._replace(fallback=fallback)
    init = transpose_factors(factors) if solver == "broyden" else None
    return _solve(w, jt_vector, grad, init, solver, refine_iter, tol, atol, no_fallback)


def _solve(w0, jt_vector, grad, init_factors, solver, max_iter, tol, atol, fallback):
    """Solve ``J^T w = grad`` from ``w0``; returns ``(w, BackwardInfo)``."""
    options = {"init_factors": init_factors} if init_factors is not None else {}
    result = get_solver(solver)(lambda w: jt_vector(w) - grad, w0, max_iter=max_iter, tol=tol, atol=atol, **options)
    return result.z, BackwardInfo(fallback, result.n_steps, result.residual)

"""The problem of ``bilevel_logreg.py``: l2-regularised logistic regression tuned by implicit hypergradients.

The inner problem fits a logistic regression with an l2 penalty of weight ``exp(lam)``,

    theta*(lam) = argmin_theta  F(theta, lam) = mean_i log(1 + exp(-y_i <a_i, theta>)) + exp(lam) ||theta||^2 / 2,

and the outer problem tunes ``lam`` on held-out data, ``min_lam L(theta*(lam))`` with ``L`` the mean
logistic loss on the held-out examples. The inner optimum is the root of

    g(theta, lam) = P(lam) dF/dtheta (theta, lam),   P(lam) = (A^T A / (4 n) + exp(lam) I)^-1,

the gradient preconditioned by the inverse of the Hessian's upper bound (``P`` is held constant in
the derivatives), so that ``J = dg/dtheta = P * Hessian`` has its eigenvalues in ``(0, 1]`` and the
solvers' initial inverse-Jacobian guess ``I`` is a sensible one: line-search-free Broyden then solves
the inner problem to 1e-6 in some 20-80 steps for ``lam`` in ``[-7, 0]``, where with the scalar
step ``1 / ||P^-1||`` it fails below ``lam = -5`` (the data are nearly separable). By the implicit function theorem
(`fastmri_recon.implicit.backward`), ``dL/dlam = -w^T dg/dlam`` with ``J^T w = dL/dtheta``; `hypergradient` computes ``w``
by any backward mode, `METHODS` names the combinations compared by
``bilevel_logreg.py`` (beside this module, which it imports), and `exact_hypergradient` is the dense reference (SciPy
L-BFGS for the inner problem, a dense Hessian solve for ``w``).

Every tensor is float64 here; labels are -1 / +1; ``theta`` is a batch of one, ``(1, p)``.
"""

import dataclasses
import time
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import DataError
from fastmri_recon.implicit.backward import adjoint_direction
from fastmri_recon.implicit.solvers import get_solver

# method name -> backward mode and OPA period of the forward Broyden (None: no OPA)
METHODS = {
    "implicit": dict(backward="implicit", opa_every=None),
    "shine": dict(backward="shine", opa_every=None),
    "shine-fallback": dict(backward="shine-fallback", opa_every=None),
    "shine-refine": dict(backward="shine-refine", opa_every=None),
    "shine-opa": dict(backward="shine", opa_every=5),
    "jacobian-free": dict(backward="jacobian-free", opa_every=None),
}


def _logistic(margins):
    """Mean of ``log(1 + exp(-margins))``, stable for large margins of either sign."""
    return tf.reduce_mean(tf.nn.softplus(-margins))


@dataclasses.dataclass(frozen=True)
class LogisticProblem:
    """The data of the bilevel problem, as float64 tensors.

    Attributes:
        a_train: ``(n, p)`` training features.
        y_train: ``(n,)`` training labels in {-1, +1}.
        a_val: ``(m, p)`` held-out features.
        y_val: ``(m,)`` held-out labels in {-1, +1}.
        curvature: ``(p, p)`` ``a_train^T a_train / (4 n)``, an upper bound of the data term's Hessian.
    """

    a_train: tf.Tensor
    y_train: tf.Tensor
    a_val: tf.Tensor
    y_val: tf.Tensor
    curvature: tf.Tensor

    @classmethod
    def from_arrays(cls, a_train, y_train, a_val, y_val):
        """Build the problem from NumPy arrays (labels in {0, 1} or {-1, +1}).

        Raises:
            DataError: for features and labels of inconsistent sizes, non-finite values, or labels
                with other values.
        """
        arrays = []
        for name, a, y in (("train", a_train, y_train), ("held-out", a_val, y_val)):
            a, y = np.asarray(a, np.float64), np.asarray(y, np.float64)
            if a.ndim != 2 or y.shape != (a.shape[0],) or not (np.isfinite(a).all() and np.isfinite(y).all()):
                raise DataError(
                    f"bilevel: {name} features must be finite (n, p) with n labels, got {a.shape}, {y.shape}"
                )
            if not set(np.unique(y)) <= {-1.0, 0.0, 1.0}:
                raise DataError(f"bilevel: {name} labels must be 0 / 1 or -1 / +1")
            arrays += [tf.constant(a), tf.constant(np.where(y > 0, 1.0, -1.0))]
        a = np.asarray(a_train, np.float64)
        return cls(*arrays, tf.constant(a.T @ a / (4 * len(a))))

    @property
    def n_features(self):
        return int(self.a_train.shape[1])

    def inner_objective(self, theta, lam):
        """``F(theta, lam)``, float64 scalar, for ``theta`` ``(1, p)`` and ``lam`` a scalar."""
        margins = self.y_train * tf.linalg.matvec(self.a_train, theta[0])
        return _logistic(margins) + tf.exp(lam) * tf.reduce_sum(theta**2) / 2

    def preconditioner(self, lam):
        """``P(lam) = (curvature + exp(lam) I)^-1`` ``(p, p)``, symmetric, constant for derivatives."""
        eye = tf.eye(self.n_features, dtype=tf.float64)
        return tf.stop_gradient(tf.linalg.inv(self.curvature + tf.exp(lam) * eye))

    def root(self, theta, lam):
        """``g(theta, lam) = P(lam) dF/dtheta``, ``(1, p)``."""
        with tf.GradientTape() as tape:
            tape.watch(theta)
            objective = self.inner_objective(theta, lam)
        return tf.matmul(tape.gradient(objective, theta), self.preconditioner(lam))

    def outer_loss(self, theta):
        """Held-out mean logistic loss, float64 scalar, for ``theta`` ``(1, p)``."""
        return _logistic(self.y_val * tf.linalg.matvec(self.a_val, theta[0]))


class Hypergradient(NamedTuple):
    """One evaluation of the outer problem.

    Attributes:
        loss: held-out loss at the inner solution, float64 scalar.
        gradient: ``dL/dlam`` by the chosen mode, float64 scalar.
        theta: the inner solution ``(1, p)``.
        forward_steps: int32 scalar, inner solver steps.
        backward_steps: int32 scalar, backward solver steps (0 without a solve).
        fallback: bool scalar, whether ``shine-fallback`` fell back.
    """

    loss: tf.Tensor
    gradient: tf.Tensor
    theta: tf.Tensor
    forward_steps: tf.Tensor
    backward_steps: tf.Tensor
    fallback: tf.Tensor


def hypergradient(
    problem,
    lam,
    theta0,
    backward="implicit",
    opa_every=None,
    solver="broyden",
    max_iter=100,
    tol=1e-6,
    backward_max_iter=100,
    backward_tol=1e-6,
    refine_iter=5,
    fallback_threshold=2.0,
):
    """Solve the inner problem at ``lam`` and compute ``dL/dlam`` by one backward mode.

    Args:
        problem: a `LogisticProblem`.
        lam: float64 scalar, the log regularisation weight.
        theta0: float64 ``(1, p)``, the inner solver's initial point (a warm start).
        backward: the backward mode (`fastmri_recon.implicit.backward.MODES`).
        opa_every: None, or the OPA period (the inner solver is then adjoint Broyden with the
            held-out gradient injected every ``opa_every`` steps).
        solver: the inner solver (the SHINE modes need ``"broyden"``).
        max_iter, tol: inner iterations and relative tolerance.
        backward_max_iter, backward_tol: the ``implicit`` backward solve's.
        refine_iter: iterations of ``shine-refine``.
        fallback_threshold: the ``shine-fallback`` threshold.

    Returns:
        `Hypergradient`.
    """
    lam = tf.convert_to_tensor(lam, tf.float64)

    def root(theta):
        return problem.root(theta, lam)

    def outer_gradient(theta):
        with tf.GradientTape() as tape:
            tape.watch(theta)
            loss = problem.outer_loss(theta)
        return tape.gradient(loss, theta)

    options = {}
    if opa_every is not None:
        options = dict(update="adjoint", opa_every=opa_every, opa_direction=outer_gradient)
    result = get_solver(solver)(root, theta0, max_iter=max_iter, tol=tol, **options)
    theta = result.z
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([theta, lam])
        g = problem.root(theta, lam)
        loss = problem.outer_loss(theta)
    w, info = adjoint_direction(
        tape.gradient(loss, theta),
        lambda v: tape.gradient(g, theta, output_gradients=v),
        backward,
        factors=result.factors,
        solver="broyden",
        max_iter=backward_max_iter,
        tol=backward_tol,
        refine_iter=refine_iter,
        fallback_threshold=fallback_threshold,
    )
    gradient = -tape.gradient(g, lam, output_gradients=w)
    return Hypergradient(loss, gradient, theta, result.n_steps[0], info.n_steps[0], info.fallback[0])


def breast_cancer_problem(held_out=0.4, seed=0):
    """The bilevel problem on scikit-learn's bundled breast-cancer data (569 examples, 30 features).

    The examples are split at random (``seed``) into training and held-out sets, the features
    standardised with the training mean and deviation, and a constant feature (the intercept,
    penalised like the others) appended: ``p = 31``.

    Args:
        held_out: fraction of the examples held out.
        seed: the split's seed.

    Returns:
        `LogisticProblem`.
    """
    from sklearn.datasets import load_breast_cancer  # shipped inside scikit-learn's wheel: no download

    features, labels = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = int(round(held_out * len(labels)))
    val, train = order[:n_val], order[n_val:]
    mean, std = features[train].mean(0), features[train].std(0)

    def design(rows):
        standardised = (features[rows] - mean) / std
        return np.hstack([standardised, np.ones((len(rows), 1))])

    return LogisticProblem.from_arrays(design(train), labels[train], design(val), labels[val])


def reference_solution(problem, lam, tol=1e-12):
    """``theta*(lam)`` by SciPy's L-BFGS-B (float64 NumPy ``(p,)``), for references and tests."""
    from scipy.optimize import minimize

    a, y = problem.a_train.numpy(), problem.y_train.numpy()
    weight = float(np.exp(lam))

    def objective(theta):
        margins = y * (a @ theta)
        sigma = 0.5 * (1 - np.tanh(margins / 2))  # 1 / (1 + exp(margins)), stable
        value = np.mean(np.logaddexp(0.0, -margins)) + weight * theta @ theta / 2
        return value, -(a.T @ (y * sigma)) / len(y) + weight * theta

    solution = minimize(
        objective,
        np.zeros(a.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": tol, "ftol": 0.0, "maxiter": 10_000},
    )
    return solution.x


def exact_hypergradient(problem, lam):
    """The held-out loss and ``dL/dlam`` at ``lam`` by dense linear algebra (NumPy float64).

    ``dtheta*/dlam = -H^-1 exp(lam) theta*`` with ``H`` the inner Hessian, so
    ``dL/dlam = -exp(lam) <H^-1 dL/dtheta, theta*>``.

    Returns:
        ``(loss, gradient)`` floats.
    """
    theta = reference_solution(problem, lam)
    a, y = problem.a_train.numpy(), problem.y_train.numpy()
    a_val, y_val = problem.a_val.numpy(), problem.y_val.numpy()
    sigma = 0.5 * (1 - np.tanh(y * (a @ theta) / 2))
    hessian = (a.T * (sigma * (1 - sigma))) @ a / len(y) + np.exp(lam) * np.eye(len(theta))
    margins = y_val * (a_val @ theta)
    loss = np.mean(np.logaddexp(0.0, -margins))
    outer = -(a_val.T @ (y_val * 0.5 * (1 - np.tanh(margins / 2)))) / len(y_val)
    return float(loss), float(-np.exp(lam) * np.linalg.solve(hessian, outer) @ theta)


def run(
    problem,
    method,
    lam0=0.0,
    n_outer=50,
    learning_rate=1.0,
    max_step=1.0,
    lam_bounds=(-7.0, 3.0),
    warm_start=True,
    **options,
):
    """Safeguarded gradient descent on ``lam`` with hypergradients by one of `METHODS`, timed.

    Each outer step solves the inner problem from the previous solution (``warm_start``) or from
    zero, computes the hypergradient and moves ``lam <- lam - clip(learning_rate * dL/dlam, +-max_step)``,
    kept within ``lam_bounds`` (a vanishing penalty makes the inner problem ill-posed on separable
    data). The step is compiled once (``tf.function``, traced before the clock starts).

    Args:
        problem: a `LogisticProblem`.
        method: a key of `METHODS`.
        lam0: the initial ``lam``.
        n_outer: outer steps.
        learning_rate: the outer step size.
        max_step: the largest change of ``lam`` in one step.
        lam_bounds: ``(low, high)``, the box ``lam`` is projected on.
        warm_start: start each inner solve from the previous solution.
        **options: further `hypergradient` arguments (tolerances, iterations).

    Returns:
        dict of lists, one entry per outer step (plus the start for ``time`` / ``loss`` / ``lam``):
        ``time`` (cumulative seconds), ``loss`` (held-out loss), ``lam``, ``gradient``,
        ``forward_steps``, ``backward_steps``, ``fallback``.
    """
    settings = {**METHODS[method], **options}
    step = tf.function(lambda lam, theta0: hypergradient(problem, lam, theta0, **settings))
    lam = tf.constant(float(lam0), tf.float64)
    theta = tf.zeros((1, problem.n_features), tf.float64)
    step(lam, theta)  # trace and compile outside the timing
    history = {key: [] for key in ("time", "loss", "lam", "gradient", "forward_steps", "backward_steps", "fallback")}
    elapsed = 0.0
    for _ in range(n_outer):
        start = time.perf_counter()
        out = step(lam, theta if warm_start else tf.zeros_like(theta))
        gradient = float(out.gradient)
        elapsed += time.perf_counter() - start
        history["time"].append(elapsed)
        history["loss"].append(float(out.loss))
        history["lam"].append(float(lam))
        history["gradient"].append(gradient)
        history["forward_steps"].append(int(out.forward_steps))
        history["backward_steps"].append(int(out.backward_steps))
        history["fallback"].append(bool(out.fallback))
        theta = out.theta
        change = float(np.clip(learning_rate * gradient, -max_step, max_step)) if np.isfinite(gradient) else 0.0
        lam = tf.constant(float(np.clip(float(lam) - change, *lam_bounds)), tf.float64)
    return history

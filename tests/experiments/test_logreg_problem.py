"""Bilevel logistic regression (experiments/deq_shine/logreg_problem.py): hypergradients against finite differences, a short outer run.

The module is imported from its folder, as ``experiments/deq_shine/bilevel_logreg.py`` imports it.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "deq_shine"))
from logreg_problem import (  # noqa: E402
    LogisticProblem,
    breast_cancer_problem,
    exact_hypergradient,
    hypergradient,
    reference_solution,
    run,
)

pytest.importorskip("sklearn")
LAM = -2.0


@pytest.fixture(scope="module")
def problem():
    return breast_cancer_problem(seed=0)


def held_out_loss(problem, lam):
    return float(problem.outer_loss(tf.constant(reference_solution(problem, lam)[None])))


def test_problem_shapes_and_labels(problem):
    assert problem.a_train.shape == (341, 31) and problem.a_val.shape == (228, 31)
    assert set(np.unique(problem.y_train.numpy())) == {-1.0, 1.0}
    with pytest.raises(DataError, match="labels"):
        LogisticProblem.from_arrays(np.ones((3, 2)), [0, 1, 2], np.ones((2, 2)), [0, 1])


@pytest.mark.slow
def test_inner_solution_matches_scipy(problem):
    result = hypergradient(
        problem, LAM, tf.zeros((1, 31), tf.float64), backward="jacobian-free", max_iter=300, tol=1e-10
    )
    reference = reference_solution(problem, LAM)
    np.testing.assert_allclose(result.theta.numpy()[0], reference, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_implicit_hypergradient_matches_finite_differences(problem):
    precise = dict(max_iter=300, tol=1e-10, backward_max_iter=300, backward_tol=1e-10)
    result = hypergradient(problem, LAM, tf.zeros((1, 31), tf.float64), backward="implicit", **precise)
    eps = 1e-4
    finite = (held_out_loss(problem, LAM + eps) - held_out_loss(problem, LAM - eps)) / (2 * eps)
    _, exact = exact_hypergradient(problem, LAM)
    assert abs(float(result.gradient) - exact) < 1e-4 * abs(exact)
    assert abs(float(result.gradient) - finite) < 1e-4 * abs(finite)


@pytest.mark.slow
def test_shine_opa_and_refine_approach_the_exact_hypergradient(problem):
    _, exact = exact_hypergradient(problem, LAM)
    theta0 = tf.zeros((1, 31), tf.float64)
    errors = {
        name: abs(float(hypergradient(problem, LAM, theta0, **options).gradient) - exact) / abs(exact)
        for name, options in {
            "opa": dict(backward="shine", opa_every=5),
            "refine": dict(backward="shine-refine"),
            "jacobian-free": dict(backward="jacobian-free"),
        }.items()
    }
    assert errors["opa"] < 1e-2 and errors["refine"] < 1e-2 and errors["jacobian-free"] > 0.1


@pytest.mark.slow
def test_a_short_run_decreases_the_held_out_loss(problem):
    history = run(problem, "implicit", lam0=0.0, n_outer=4, learning_rate=30.0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["lam"][-1] < history["lam"][0] and len(history["time"]) == 4
    assert all(np.diff(history["time"]) > 0)

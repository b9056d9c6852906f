"""Bilevel hyperparameter optimisation with SHINE: held-out loss versus time for each backward mode.

l2-regularised logistic regression on scikit-learn's bundled breast-cancer data (60 % training, 40 %
held out, `logreg_problem.breast_cancer_problem`): the outer variable ``lam`` sets
the penalty weight ``exp(lam)``; every outer step solves the inner problem by Broyden (warm-started
at the previous solution), computes ``dL/dlam`` by one method of `logreg_problem.METHODS` and takes a
safeguarded gradient step (`logreg_problem.run`). The reference is the best held-out loss over
``lam`` in the same box, computed with SciPy's L-BFGS inner solves; the hypergradient error of each
method is measured at ``lam0`` from a cold start against the dense implicit-function-theorem
gradient (`logreg_problem.exact_hypergradient`). ``shine-fallback``'s threshold is 100 by default here: the
inner Jacobian is far from a contraction's (``||J^-T dL/dtheta|| / ||dL/dtheta||`` is 2 at ``lam = 0``,
6 at -2, 27 at -6 and 53 at -7), so DEQ's default of 2 would make it the Jacobian-free method.

    python experiments/deq_shine/bilevel_logreg.py [--n-outer 50] [--learning-rate 30] [--lam0 0] [--seed 0]
                                                   [--fallback-threshold 100]

The problem and the outer loop are ``logreg_problem.py`` beside this script (imported from the
script's own folder, which Python puts first on the module path).

Writes ``bilevel_logreg.png`` (excess held-out loss versus time), ``bilevel_logreg.md`` (the table)
and ``bilevel_logreg.json`` (every run's history) beside this script, or in ``--output-dir``.
Timings are wall-clock seconds of the compiled outer steps on the machine that ran it (tracing
excluded); on a shared machine they vary by some 20 % from run to run.
"""

import datetime
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402

from fastmri_recon.evaluate.figures import curves_figure  # noqa: E402
from fastmri_recon.files import write_text  # noqa: E402
from logreg_problem import (  # noqa: E402
    METHODS,
    breast_cancer_problem,
    exact_hypergradient,
    hypergradient,
    run,
)

HERE = Path(__file__).resolve().parent
LAM_BOUNDS = (-7.0, 3.0)


def best_loss(problem):
    """The smallest held-out loss over ``lam`` in `LAM_BOUNDS` and its ``lam`` (exact inner solves)."""
    found = minimize_scalar(lambda lam: exact_hypergradient(problem, lam)[0], bounds=LAM_BOUNDS, method="bounded")
    return float(found.fun), float(found.x)


def gradient_errors(problem, lam0, **options):
    """Relative error of each method's hypergradient at ``lam0`` (cold start) against the exact one."""
    exact = exact_hypergradient(problem, lam0)[1]
    theta0 = tf.zeros((1, problem.n_features), tf.float64)
    errors = {}
    for method, settings in METHODS.items():
        estimate = float(hypergradient(problem, tf.constant(lam0, tf.float64), theta0, **settings, **options).gradient)
        errors[method] = abs(estimate - exact) / abs(exact)
    return errors


def time_to_reach(history, target):
    """Seconds until the held-out loss first gets below ``target`` (None if never)."""
    for seconds, loss in zip(history["time"], history["loss"]):
        if loss <= target:
            return seconds
    return None


def table(histories, errors, best, best_lam, args):
    header = (
        "| method | dL/dlam rel. error at lam0 | final lam | final held-out loss | time to within 1 % of best (s) "
        "| total time (s) | inner steps / outer step | backward steps / outer step | fallback rate |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for method, history in histories.items():
        reach = time_to_reach(history, best * 1.01)
        rows.append(
            f"| {method} | {errors[method]:.2e} | {history['lam'][-1]:.2f} | {history['loss'][-1]:.4f} | "
            f"{'never' if reach is None else f'{reach:.2f}'} | {history['time'][-1]:.2f} | "
            f"{np.mean(history['forward_steps']):.1f} | {np.mean(history['backward_steps']):.1f} | "
            f"{np.mean(history['fallback']):.2f} |"
        )
    command = "python experiments/deq_shine/bilevel_logreg.py " + " ".join(sys.argv[1:])
    return (
        "# Bilevel logistic regression: hypergradients by backward mode\n\n"
        f"`{command.strip()}` — {datetime.date.today()}, {platform.machine()} CPU "
        f"({os.cpu_count()} cores), TensorFlow {tf.__version__}.\n\n"
        f"Breast-cancer data (scikit-learn), {int(args['n_train'])} training / {int(args['n_val'])} held-out "
        f"examples, {args['n_outer']} outer steps of `lam <- lam - clip({args['learning_rate']} dL/dlam, +-1)` in "
        f"{list(LAM_BOUNDS)} from lam0 = {args['lam0']}; shine-fallback threshold {args['fallback_threshold']:g}; "
        "inner Broyden to a relative residual of 1e-6 (at most 100 steps), warm-started. "
        f"Best held-out loss {best:.4f} at lam = {best_lam:.2f} (SciPy L-BFGS inner solves). The hypergradient "
        "error is measured at lam0 from a cold start against the dense implicit-function-theorem gradient.\n\n"
        + header
        + "\n".join(rows)
        + "\n"
    )


@click.command()
@click.option("--n-outer", default=50, show_default=True, help="outer gradient steps")
@click.option("--learning-rate", default=30.0, show_default=True, help="outer step size")
@click.option("--lam0", default=0.0, show_default=True, help="initial log penalty weight")
@click.option("--seed", default=0, show_default=True, help="train / held-out split seed")
@click.option("--fallback-threshold", default=100.0, show_default=True, help="shine-fallback's norm ratio bound")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=HERE, show_default=True)
def main(n_outer, learning_rate, lam0, seed, fallback_threshold, output_dir):
    """Run every method and write the figure, the table and the histories."""
    problem = breast_cancer_problem(seed=seed)
    best, best_lam = best_loss(problem)
    errors = gradient_errors(problem, lam0, fallback_threshold=fallback_threshold)
    histories = {}
    for method in METHODS:
        histories[method] = run(
            problem,
            method,
            lam0=lam0,
            n_outer=n_outer,
            learning_rate=learning_rate,
            lam_bounds=LAM_BOUNDS,
            fallback_threshold=fallback_threshold,
        )
        history = histories[method]
        loss, lam, seconds = history["loss"][-1], history["lam"][-1], history["time"][-1]
        click.echo(f"{method:15s} final loss {loss:.4f} lam {lam:.2f} time {seconds:.2f} s")
    curves = {
        method: (history["time"], np.maximum(np.asarray(history["loss"]) - best, 1e-6))
        for method, history in histories.items()
    }
    curves_figure(
        output_dir / "bilevel_logreg.png",
        curves,
        "time (s)",
        "held-out loss - best (floored at 1e-6)",
        title=f"l2-logistic regression on breast cancer: best held-out loss {best:.4f} (lam = {best_lam:.2f})",
        logx=True,
        logy=True,
    )
    n_val = int(problem.a_val.shape[0])
    settings = dict(
        n_outer=n_outer,
        learning_rate=learning_rate,
        lam0=lam0,
        n_train=problem.a_train.shape[0],
        n_val=n_val,
        fallback_threshold=fallback_threshold,
    )
    write_text(output_dir / "bilevel_logreg.md", table(histories, errors, best, best_lam, settings))
    record = {"best_loss": best, "best_lam": best_lam, "gradient_errors": errors, "histories": histories}
    write_text(output_dir / "bilevel_logreg.json", json.dumps(record, indent=1) + "\n")
    click.echo(f"wrote {output_dir / 'bilevel_logreg.png'}, bilevel_logreg.md and bilevel_logreg.json")


if __name__ == "__main__":
    main()

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from fastmri_recon.data.gradient_limits import (
    GYROMAGNETIC_RATIO,
    GradientSystem,
    ReadoutConstraints,
    physical_to_radians,
    radians_to_physical,
)
from fastmri_recon.data.trajectories import radial_trajectory, spiral_trajectory
from fastmri_recon.errors import ConfigError, DataError


def test_physical_units_by_hand():
    # 64 pixels over 220 mm: pi rad is the Nyquist edge 1 / (2 * 3.4375 mm) = 145.4545 1/m
    k = radians_to_physical(np.array([[math.pi], [-math.pi / 2]]), (64, 32), (0.22, 0.11))
    np.testing.assert_allclose(k[:, 0], [145.45454545, -72.72727273], rtol=1e-9)
    back = physical_to_radians(k, (64, 32), (0.22, 0.11))
    np.testing.assert_allclose(back[:, 0], [math.pi, -math.pi / 2], rtol=1e-12)
    constraints = ReadoutConstraints((64, 64), 0.22)
    # largest step per raster: 2 pi * 3.4375e-3 m * 42.577e6 Hz/T * 0.04 T/m * 1e-5 s
    np.testing.assert_allclose(constraints.gradient_step, [0.36783887] * 2, rtol=1e-7)
    np.testing.assert_allclose(constraints.slew_bound, 150 * 1e-5 / 0.04)


def test_gradient_and_slew_waveforms_by_hand():
    # one shot from the centre along the columns: steps of 10, 10, 30 1/m in 10 us
    steps = np.array([0.0, 10.0, 20.0, 50.0])
    physical = np.stack([np.zeros(4), steps])
    trajectory = physical_to_radians(physical, (64, 64), 0.22)
    centre = ReadoutConstraints((64, 64), 0.22, start_at_centre=True)
    g = centre.gradients(trajectory)
    unit = 10.0 / (GYROMAGNETIC_RATIO * 1e-5)  # T/m of a 10 1/m step: 0.0234869 T/m
    np.testing.assert_allclose(unit, 0.023486859, rtol=1e-7)
    np.testing.assert_allclose(g[0, :, 1], [unit, unit, 3 * unit], rtol=1e-9)
    np.testing.assert_allclose(g[0, :, 0], 0.0, atol=1e-12)
    # from rest: the first slew is g_0 / dt, then the changes
    np.testing.assert_allclose(centre.slew_rates(trajectory)[0, :, 1], [unit / 1e-5, 0.0, 2 * unit / 1e-5], rtol=1e-9, atol=1e-6)
    free = ReadoutConstraints((64, 64), 0.22)
    np.testing.assert_allclose(free.slew_rates(trajectory)[0, :, 1], [0.0, 2 * unit / 1e-5], atol=1e-6)
    report = centre.violations(trajectory)
    np.testing.assert_allclose(report.max_gradient, 3 * unit, rtol=1e-9)
    np.testing.assert_allclose(report.gradient, 3 * unit - 0.04, rtol=1e-9)
    np.testing.assert_allclose(report.slew, 2 * unit / 1e-5 - 150.0, rtol=1e-9)
    assert report.kspace == 0.0 and report.start == 0.0 and not report.feasible


def test_norms_differ_on_diagonal_gradients():
    # a diagonal step of 0.03 T/m per axis: 0.0424 T/m in norm, over a 40 mT/m limit; within it per axis
    step = 0.03 * GYROMAGNETIC_RATIO * 1e-5
    trajectory = physical_to_radians(np.outer([1.0, 1.0], np.arange(3) * step), (64, 64), 0.22)
    euclid = ReadoutConstraints((64, 64), 0.22).violations(trajectory)
    per_axis = ReadoutConstraints((64, 64), 0.22, system=GradientSystem(norm="axis")).violations(trajectory)
    np.testing.assert_allclose(euclid.max_gradient, 0.03 * math.sqrt(2), rtol=1e-9)
    assert euclid.gradient > 0 and per_axis.gradient == 0.0
    np.testing.assert_allclose(per_axis.max_gradient, 0.03, rtol=1e-9)


@pytest.mark.slow
def test_textbook_trajectories_against_the_limits():
    radial = radial_trajectory(64, n_spokes=20)
    assert ReadoutConstraints((64, 64), 0.22, n_shots=20).violations(radial).feasible
    spiral = spiral_trajectory(64, n_shots=16, acceleration=4, n_samples=128)
    constraints = ReadoutConstraints((64, 64), 0.22, n_shots=16, start_at_centre=True)
    before = constraints.violations(spiral)
    assert before.slew > 0  # constant speed from rest at the centre: too fast a start
    projected = constraints.project(spiral).numpy()
    assert constraints.violations(projected).feasible
    assert np.abs(projected - spiral).max() < 0.2  # the shape is kept


def _adversarial(rng, ndim, n_shots, length, kind):
    shape = (ndim, n_shots * length)
    if kind == "noise":
        return rng.uniform(-math.pi, math.pi, shape)
    if kind == "huge":
        return rng.standard_normal(shape) * 100.0
    if kind == "spikes":
        out = radial_trajectory(n_spokes=n_shots, n_samples=length).astype(np.float64)[:ndim]
        out = np.concatenate([out, np.zeros((ndim - out.shape[0], out.shape[1]))]) if ndim > 2 else out
        out[:, rng.integers(0, shape[1], 5)] += rng.choice([-1, 1], (ndim, 5)) * 6.0
        return out
    if kind == "zigzag":
        return np.tile(np.array([[-1.0, 1.0]]), (ndim, shape[1] // 2 + 1))[:, : shape[1]] * 3.14159
    if kind == "edge":
        return np.full(shape, math.pi) * rng.choice([-1, 1], shape)
    return rng.standard_normal(shape) * 1e-3  # nearly feasible


SYSTEMS = [
    dict(),
    dict(norm="axis"),
    dict(max_gradient=0.005, max_slew=20.0),
    dict(max_gradient=0.08, max_slew=200.0, raster_time=4e-6),
    dict(max_slew=1000.0, norm="axis"),
]


@pytest.mark.slow
def test_projection_never_returns_a_violating_trajectory():
    """Property test: random and adversarial inputs under random limits, fields of view, shot layouts."""
    rng = np.random.default_rng(1234)
    checked = 0
    for index, system in enumerate(SYSTEMS):
        for start in (False, True):
            ndim = 3 if index == 4 and start else 2
            shape = tuple(int(n) for n in rng.choice([16, 32, 64], ndim))
            constraints = ReadoutConstraints(
                shape, tuple(rng.uniform(0.1, 0.4, ndim)), n_shots=int(rng.integers(1, 5)), start_at_centre=start,
                system=GradientSystem(**system), k_max=float(rng.choice([math.pi, 2.0])),
            )
            for kind in ("noise", "huge", "spikes", "zigzag", "edge", "small"):
                length = int(rng.integers(3, 40))
                z = _adversarial(rng, ndim, constraints.n_shots, length, kind)
                projected = constraints.project(z, n_iter=int(rng.choice([1, 30, 300])))  # feasible whatever the count
                report = constraints.violations(projected.numpy())
                assert projected.dtype.name == "float32" and projected.shape == z.shape
                assert report.feasible, (system, start, kind, report)
                checked += 1
    assert checked == len(SYSTEMS) * 2 * 6


def test_projection_is_the_identity_on_feasible_trajectories_and_idempotent():
    constraints = ReadoutConstraints((32, 32), 0.2, n_shots=4, start_at_centre=True)
    spiral = constraints.project(spiral_trajectory(32, n_shots=4, n_samples=40)).numpy()
    again = constraints.project(spiral).numpy()
    np.testing.assert_array_equal(again, spiral)
    assert np.all(spiral.reshape(2, 4, 40)[:, :, 0] == 0.0)  # shots start at the centre
    radial = radial_trajectory(32, n_spokes=6) * np.float32(0.9)
    np.testing.assert_array_equal(ReadoutConstraints((32, 32), 0.2, n_shots=6).project(radial).numpy(), radial)


def _reference_projection(constraints, z):
    """The Euclidean projection by SciPy's SLSQP (independent of the dual method), float64 ``(2, L)``.

    The gradient and slew maps are taken as matrices (`gradients` / `slew_rates` of unit vectors, checked by hand
    above); each bound is the quadratic ``|R x|^2 <= c^2`` over its group of rows ``R``.
    """
    system = constraints.system
    size = z.size
    eye = np.eye(size).reshape(size, 2, -1)
    gradient = np.stack([constraints.gradients(e)[0] for e in eye], -1) / system.max_gradient  # (T, 2, size)
    slew = np.stack([constraints.slew_rates(e)[0] for e in eye], -1) / system.max_slew
    box = np.eye(size)[:, None, :] / constraints.k_max  # (size, 1, size)
    if system.norm == "euclidean":
        pairs, singles = np.concatenate([gradient, slew]), box  # groups of 2 rows, of 1 row
    else:
        pairs, singles = np.zeros((0, 2, size)), np.concatenate([gradient.reshape(-1, 1, size), slew.reshape(-1, 1, size), box])

    def quadratic(rows):
        return {
            "type": "ineq",
            "fun": lambda x: 1.0 - np.sum((rows @ x) ** 2, axis=1),
            "jac": lambda x: -2.0 * np.einsum("ng,ngs->ns", rows @ x, rows),
        }

    cons = [quadratic(rows) for rows in (pairs, singles) if len(rows)]
    if constraints.start_at_centre:
        first = np.zeros((2, size))
        first[0, 0] = first[1, size // 2] = 1.0
        cons.append({"type": "eq", "fun": lambda x: first @ x, "jac": lambda x: first})
    result = minimize(lambda x: 0.5 * np.sum((x - z.ravel()) ** 2), np.zeros(size), jac=lambda x: x - z.ravel(),
                      constraints=cons, method="SLSQP", options={"maxiter": 1000, "ftol": 1e-14})
    return result.x.reshape(2, -1)  # SLSQP may stop on its line search at this ftol: checked feasible by the caller


@pytest.mark.slow
@pytest.mark.parametrize("start, norm", [(False, "euclidean"), (True, "axis")])
def test_projection_matches_a_reference_solver(start, norm):
    rng = np.random.default_rng(7)
    constraints = ReadoutConstraints((16, 16), 0.05, start_at_centre=start, system=GradientSystem(max_gradient=0.02, norm=norm))
    z = rng.standard_normal((2, 12)).astype(np.float32)
    if start:
        z[:, 0] = 0.0
    reference = _reference_projection(constraints, z.astype(np.float64))
    projected = constraints.project(z, n_iter=5000).numpy()  # converged (the default 1000 stops within 0.5%)
    check = constraints.violations(reference)
    assert check.gradient <= 1e-8 and check.slew <= 150 * 1e-6 and check.kspace <= 1e-8
    assert np.linalg.norm(projected - reference) <= 1e-3 * np.linalg.norm(z - reference)


def test_bad_configurations_and_shapes_are_refused():
    with pytest.raises(ConfigError, match="norm"):
        GradientSystem(norm="l1")
    with pytest.raises(ConfigError, match="max_slew"):
        GradientSystem(max_slew=-1.0)
    with pytest.raises(ConfigError, match="k_max"):
        ReadoutConstraints((16, 16), k_max=4.0)
    with pytest.raises(ConfigError, match="fov"):
        ReadoutConstraints((16, 16), fov=(0.2, 0.2, 0.2))
    with pytest.raises(ConfigError, match="unknown fields"):
        GradientSystem.from_dict({"max_gradient": 0.04, "slew": 100})
    constraints = ReadoutConstraints((16, 16), n_shots=3)
    with pytest.raises(DataError, match="n_shots = 3"):
        constraints.violations(np.zeros((2, 10)))
    with pytest.raises(DataError, match="at least 3 samples"):
        constraints.project(np.zeros((2, 6)))
    round_trip = ReadoutConstraints.from_dict(constraints.to_dict())
    assert round_trip == constraints

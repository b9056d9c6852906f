"""Simulated B0 field maps and spiral read-out times."""

import numpy as np
import pytest

from fastmri_recon.data.field_maps import (
    air_tissue_boundary,
    normalised_coordinates,
    simulate_field_map,
    spiral_readout_times,
)
from fastmri_recon.data.trajectories import radial_trajectory, spiral_trajectory
from fastmri_recon.errors import ConfigError, DataError


def head(shape=(32, 28)):
    """An ellipse of tissue in air, magnitude with a little texture."""
    coords = normalised_coordinates(shape)
    radius = sum((c / 0.8) ** 2 for c in coords)
    return np.where(radius < 1, 1.0 + 0.2 * np.cos(6 * coords[0]), 0.0)


def test_deterministic_given_a_seed_and_different_across_seeds():
    image = head()
    first = simulate_field_map(image, seed=3)
    assert first.dtype == np.float32 and first.shape == image.shape
    np.testing.assert_array_equal(simulate_field_map(image, seed=3), first)
    assert np.abs(simulate_field_map(image, seed=4) - first).max() > 1.0


def polynomial_residual(field, order):
    """Largest residual of the least-squares fit of ``field`` by the monomials of total degree <= order."""
    u, v = (np.broadcast_to(c, field.shape).ravel() for c in normalised_coordinates(field.shape))
    monomials = np.stack([u**a * v**b for a in range(order + 1) for b in range(order + 1) if a + b <= order], axis=1)
    values = field.astype(np.float64).ravel()
    coefficients, *_ = np.linalg.lstsq(monomials, values, rcond=None)
    return np.abs(monomials @ coefficients - values).max()


def test_smooth_part_is_a_low_order_polynomial_of_the_stated_amplitude():
    image = head()
    field = simulate_field_map(image, seed=1, smooth_hz=50.0, bump_hz=0.0, order=2)
    assert np.abs(field).max() == pytest.approx(50.0, rel=1e-6)
    assert polynomial_residual(field, 2) < 1e-4 < polynomial_residual(field, 1)
    assert polynomial_residual(simulate_field_map(image, seed=1, bump_hz=0.0, order=1), 1) < 1e-4


def test_bump_peaks_on_the_air_tissue_boundary():
    image = head()
    boundary = air_tissue_boundary(image)
    tissue = image > 0.1 * image.max()
    assert boundary.any() and not (boundary & ~tissue).any()  # tissue pixels ...
    assert not boundary[16, 14]  # ... at the edge, not inside
    for seed in range(3):
        field = simulate_field_map(image, seed=seed, smooth_hz=0.0, bump_hz=-150.0, bump_width=0.1)
        peak = np.unravel_index(np.argmin(field), field.shape)
        assert boundary[peak] and field[peak] == pytest.approx(-150.0)
        assert abs(field[0, 0]) < 0.5 * 150.0  # a local bump


def test_three_dimensional_images():
    volume = np.stack([head((16, 16))] * 6)
    field = simulate_field_map(volume, seed=0)
    assert field.shape == (6, 16, 16) and np.isfinite(field).all()


def test_bad_images_and_parameters_are_reported():
    with pytest.raises(DataError, match="no tissue"):
        simulate_field_map(np.zeros((8, 8)))
    with pytest.raises(DataError, match="2D or 3D"):
        simulate_field_map(np.ones(8))
    with pytest.raises(ConfigError, match="order"):
        simulate_field_map(head(), order=-1)
    with pytest.raises(ConfigError, match="bump width"):
        simulate_field_map(head(), bump_width=0.0)


def test_spiral_readout_times():
    n_shots = 4
    traj = spiral_trajectory(32, n_shots=n_shots)
    times = spiral_readout_times(traj, n_shots, dwell_time=4e-6, echo_time=2e-3)
    per_shot = traj.shape[1] // n_shots
    assert times.shape == (traj.shape[1],) and times.dtype == np.float32
    arms = times.reshape(n_shots, per_shot)
    np.testing.assert_allclose(arms[:, 0], 2e-3)
    np.testing.assert_allclose(np.diff(arms, axis=1), 4e-6, rtol=1e-3)
    np.testing.assert_allclose(arms[:, -1], 2e-3 + 4e-6 * (per_shot - 1), rtol=1e-6)
    radius = np.hypot(*traj).reshape(n_shots, per_shot)
    assert np.all(np.diff(radius, axis=1) > 0)  # later samples further out: the times follow the arm


def test_bad_spiral_trajectories_are_reported():
    traj = spiral_trajectory(16, n_shots=2)
    with pytest.raises(DataError, match="start at the k-space centre"):
        spiral_readout_times(traj[:, ::-1], 2, 4e-6)
    with pytest.raises(DataError, match="start at the k-space centre"):
        spiral_readout_times(radial_trajectory(16, n_spokes=4), 4, 4e-6)  # spokes start at the edge
    with pytest.raises(DataError, match=r"\(2, n_shots \* n_samples\)"):
        spiral_readout_times(traj[:, :-1], 2, 4e-6)
    with pytest.raises(ConfigError, match="dwell_time"):
        spiral_readout_times(traj, 2, 0.0)
    with pytest.raises(ConfigError, match="echo_time"):
        spiral_readout_times(traj, 2, 4e-6, echo_time=-1.0)

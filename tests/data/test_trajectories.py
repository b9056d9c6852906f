import math

import numpy as np
import pytest

from fastmri_recon.data import trajectories as tr
from fastmri_recon.data.datasets.nc_config import TRAJECTORIES_2D, TRAJECTORIES_3D
from fastmri_recon.errors import ConfigError
from fastmri_recon.hub.manifest import manifest_schema


def check_range(traj, ndim):
    assert traj.dtype == np.float32 and traj.ndim == 2 and traj.shape[0] == ndim
    k = traj.astype(np.float64)
    assert np.all(k >= -np.pi) and np.all(k < np.pi)


def test_wrap_stays_inside_the_half_open_interval():
    k = tr.wrap(np.array([-np.pi, np.pi, 3 * np.pi, -1.0, 0.0, np.nextafter(np.pi, 0)]))
    check_range(k[None], 1)
    np.testing.assert_allclose(k[[2, 3, 4]], [-np.pi, -1.0, 0.0], atol=1e-6)


def test_golden_angle_radial():
    traj = tr.radial_trajectory(n_spokes=10, n_samples=16)
    check_range(traj, 2)
    assert traj.shape == (2, 160)
    spokes = traj.reshape(2, 10, 16).astype(np.float64)
    # sample 0 of each spoke is at radius pi, direction -(sin, cos)(theta); sample 8 is the centre
    np.testing.assert_allclose(spokes[:, :, 8], 0.0, atol=1e-7)
    theta = np.mod(np.arctan2(-spokes[0, :, 0], -spokes[1, :, 0]), np.pi)
    expected = np.mod(np.arange(10) * np.pi / ((1 + np.sqrt(5)) / 2), np.pi)
    np.testing.assert_allclose(theta, expected, atol=1e-5)
    assert math.isclose(np.degrees(tr.GOLDEN_ANGLE_RADIAL), 111.246, abs_tol=1e-3)
    # radius along a spoke: -pi + 2 pi i / n
    radius = np.sqrt(np.sum(spokes[:, 3] ** 2, axis=0))
    np.testing.assert_allclose(radius, np.abs(-np.pi + 2 * np.pi * np.arange(16) / 16), atol=1e-5)
    # uniform angles, and continuing a golden sequence
    uniform = tr.radial_angles(4, golden=False)
    np.testing.assert_allclose(uniform, np.arange(4) * np.pi / 4)
    np.testing.assert_allclose(tr.radial_angles(3, offset=2), tr.radial_angles(5)[2:])


def test_nyquist_and_acceleration_arithmetic():
    assert math.isclose(tr.nyquist_spokes(320), 160 * math.pi)
    assert tr.spokes_for_acceleration(320, 1) == 503
    assert tr.spokes_for_acceleration(320, 4) == math.ceil(40 * math.pi)
    assert tr.spokes_for_acceleration(16, 2, ndim=3) == math.ceil(math.pi / 2 * 256 / 2)
    traj = tr.radial_trajectory(64, acceleration=4)
    assert traj.shape == (2, math.ceil(32 * math.pi / 4) * 128)  # 2x readout oversampling by default
    assert math.isclose(tr.spiral_turns_for_acceleration(64, 4, 2), 4.0)
    assert tr.radial_trajectory(20, acceleration=1, readout_oversampling=1).shape == (2, 32 * 20)


def test_spiral():
    traj = tr.spiral_trajectory(64, n_shots=4, acceleration=2)
    check_range(traj, 2)
    shots = traj.reshape(2, 4, -1).astype(np.float64)
    k = shots[1] + 1j * shots[0]
    np.testing.assert_allclose(np.abs(k[:, 0]), 0.0, atol=1e-7)  # every arm starts at the centre
    assert np.abs(k).max() < np.pi and np.abs(k[:, -1]).min() > 0.95 * np.pi
    # interleaves are rotations of the first one
    np.testing.assert_allclose(k[1], k[0] * np.exp(2j * np.pi / 4), atol=1e-5)
    # uniform arc-length sampling at the default spacing 2 pi / (2 N)
    steps = np.abs(np.diff(k[0]))
    assert steps.max() <= np.pi / 64 + 1e-6 and steps.min() >= 0.95 * steps.max()  # chords of the arcs
    # the arms of all shots wind N / (2 R) = 16 times in total: 4 turns per shot
    turns = np.unwrap(np.angle(k[0, 1:]))
    np.testing.assert_allclose((turns[-1] - turns[0]) / (2 * np.pi), 4.0, atol=0.1)
    # variable density: more samples near the centre
    vd = tr.spiral_trajectory(64, n_shots=4, acceleration=2, density_power=2.0, n_samples=500)
    radius = np.sqrt(np.sum(vd.astype(np.float64) ** 2, axis=0))
    uniform = tr.spiral_trajectory(64, n_shots=4, acceleration=2, n_samples=500)
    assert np.mean(radius < 1.0) > np.mean(np.sqrt(np.sum(uniform.astype(np.float64) ** 2, axis=0)) < 1.0)
    assert vd.shape == (2, 2000)


def test_3d_trajectories():
    sor = tr.stack_of_radial_trajectory((4, 16, 12), n_spokes=5)
    check_range(sor, 3)
    assert sor.shape == (3, 4 * 5 * 32)
    np.testing.assert_allclose(np.unique(sor[0]), 2 * np.pi * (np.arange(4) - 2) / 4, atol=1e-6)
    # golden sequence continued across partitions: partitions differ
    planes = sor.reshape(3, 4, -1)
    assert not np.allclose(planes[1:, 0], planes[1:, 1])

    sos = tr.stack_of_spirals_trajectory((3, 16, 16), n_shots=2, n_samples=40)
    check_range(sos, 3)
    assert sos.shape == (3, 3 * 2 * 40)

    for ordering in ("golden_means", "phyllotaxis"):
        koosh = tr.kooshball_trajectory(8, n_spokes=50, n_samples=16, ordering=ordering)
        check_range(koosh, 3)
        assert koosh.shape == (3, 800)
        directions = tr.kooshball_directions(50, ordering)
        np.testing.assert_allclose(np.sum(directions**2, axis=0), 1.0)
        assert np.all(directions[0] >= 0) and np.all(directions[0] < 1)
        # roughly uniform over the hemisphere: mean z about 1/2
        assert abs(directions[0].mean() - 0.5) < 0.05
    assert tr.kooshball_trajectory(8, acceleration=4).shape == (3, math.ceil(math.pi / 2 * 64 / 4) * 16)


@pytest.mark.parametrize(
    "kind, shape, ndim",
    [("radial", (16, 16), 2), ("spiral", (16, 16), 2), ("stack_of_radial", (2, 8, 8), 3),
     ("stack_of_spirals", (2, 8, 8), 3), ("kooshball", (8, 8, 8), 3)],
)
def test_make_trajectory(kind, shape, ndim):
    traj = tr.make_trajectory(kind, shape, acceleration=4)
    check_range(traj, ndim)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="unknown trajectory kind"):
        tr.make_trajectory("rosette", (16, 16))
    with pytest.raises(ConfigError, match="2D image_shape"):
        tr.make_trajectory("radial", (4, 16, 16))
    with pytest.raises(ConfigError, match="image_size"):
        tr.radial_trajectory(n_spokes=4)
    with pytest.raises(ConfigError, match="acceleration"):
        tr.radial_trajectory(16, acceleration=0)
    with pytest.raises(ConfigError, match="density_power"):
        tr.spiral_trajectory(16, density_power=0.5)
    with pytest.raises(ConfigError, match="ordering"):
        tr.kooshball_directions(4, "random")
    with pytest.raises(ConfigError, match="depth, height, width"):
        tr.stack_of_radial_trajectory((16, 16))


# --- the registry ------------------------------------------------------------------------------------


def cartesian_rows(image_shape, acceleration, readout_oversampling=2):
    """A test-local 2D kind: every ``acceleration``-th row of the Cartesian grid, as readouts along the columns."""
    height, width = image_shape
    rows = 2 * np.pi * (np.arange(0, height, int(acceleration)) - height // 2) / height
    readout = -np.pi + 2 * np.pi * np.arange(readout_oversampling * width) / (readout_oversampling * width)
    return tr.wrap(np.stack([np.repeat(rows, readout.size), np.tile(readout, rows.size)]))


@pytest.fixture()
def rows_kind():
    """The test-local kinds ``cartesian_rows`` and ``learned-rows``, registered by one line each and removed afterwards."""
    kinds = [
        tr.register_trajectory_kind("cartesian_rows", 2, cartesian_rows, "Cartesian rows"),
        tr.register_trajectory_kind("learned-rows", 2, None, "learned from rows", learned_from="cartesian_rows"),
    ]
    yield kinds[0]
    for kind in kinds:
        del tr.TRAJECTORY_KINDS[kind.name]


def test_the_package_kinds_are_registered_and_the_lists_derive_from_them():
    assert tr.trajectory_kind_names() == tr.KINDS + tr.LEARNED_TRAJECTORIES
    assert tr.KINDS == ("radial", "spiral", "stack_of_radial", "stack_of_spirals", "kooshball")
    assert tr.LEARNED_TRAJECTORIES == ("learned-radial", "learned-spiral")
    assert TRAJECTORIES_2D == ("radial", "spiral") == tr.trajectory_kind_names(dimensions=2, learned=False)
    assert TRAJECTORIES_3D == ("stack_of_radial", "stack_of_spirals", "kooshball")
    assert [tr.TRAJECTORY_KINDS[name].learned_from for name in tr.LEARNED_TRAJECTORIES] == ["radial", "spiral"]
    assert all(kind.name == name and kind.description for name, kind in tr.TRAJECTORY_KINDS.items())


def test_a_kind_registered_by_one_line_is_built_by_make_trajectory(rows_kind):
    assert tr.trajectory_kind_names()[-2:] == ("cartesian_rows", "learned-rows")
    assert tr.trajectory_kind_names(dimensions=2, learned=False)[-1] == "cartesian_rows"
    assert tr.trajectory_kind_names(learned=True)[-1] == "learned-rows"
    traj = tr.make_trajectory("cartesian_rows", (16, 12), 4, readout_oversampling=1)
    check_range(traj, 2)
    assert traj.shape == (2, 4 * 12)
    np.testing.assert_array_equal(traj, cartesian_rows((16, 12), 4, readout_oversampling=1))
    with pytest.raises(ConfigError, match="2D image_shape"):
        tr.make_trajectory("cartesian_rows", (4, 16, 16))
    with pytest.raises(ConfigError, match="learned with the network from a 'cartesian_rows' start"):
        tr.make_trajectory("learned-rows", (16, 16))


def test_registered_kinds_reach_the_manifest_schema(rows_kind):
    enum = manifest_schema()["$defs"]["entry"]["properties"]["acquisition"]["properties"]["trajectory"]["enum"]
    assert enum == ["cartesian", *tr.trajectory_kind_names()]
    assert enum[-2:] == ["cartesian_rows", "learned-rows"]


def test_registration_refuses_bad_kinds():
    with pytest.raises(ConfigError, match="new trajectory kind name, got 'radial'"):
        tr.register_trajectory_kind("radial", 2, cartesian_rows, "again")
    with pytest.raises(ConfigError, match="dimensions must be 2 or 3"):
        tr.register_trajectory_kind("rows4d", 4, cartesian_rows, "4D")
    with pytest.raises(ConfigError, match="builder must be callable"):
        tr.register_trajectory_kind("rows", 2, None, "no builder")
    with pytest.raises(ConfigError, match="learned_from must name a registered fixed 2D kind"):
        tr.register_trajectory_kind("learned-koosh", 2, None, "3D base", learned_from="kooshball")
    assert not {"rows4d", "rows", "learned-koosh"} & set(tr.TRAJECTORY_KINDS)


@pytest.mark.parametrize("traj", [tr.radial_trajectory(16, acceleration=4), tr.kooshball_trajectory(8, acceleration=8)],
                         ids=["2d", "3d"])
def test_plot_writes_a_png(tmp_path, traj):
    path = tmp_path / "traj.png"
    assert tr.plot_trajectory(traj[None], path) == str(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["traj.png"]
    with pytest.raises(ConfigError):
        tr.plot_trajectory(np.zeros((4, 10)), tmp_path / "bad.png")

"""Behaviour specific to the non-Cartesian networks and baselines (their common contract: `test_contract.py`).

Inputs ``(kspace, trajectory, density[, smaps])`` (`models.nc_base`).
"""

import numpy as np
import pytest
from tiny_models import (
    NONCARTESIAN_BAND,
    image_shape,
    mixed_precision,
    nc_example,
    smooth_images,
    smooth_maps,
    tiny_model,
)

from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.trajectories import radial_trajectory
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.registry import build
from fastmri_recon.ops.encoding import nc_forward_op


@pytest.mark.slow
@pytest.mark.parametrize("multicoil", [False, True])
def test_density_compensated_adjoint_of_a_fully_sampled_radial_acquisition(multicoil):
    """At the Nyquist rate (pi / 2 * N spokes), |A^H D y| approximates the image within the covered disc."""
    shape = (32, 32)
    traj = radial_trajectory(32, acceleration=1)
    density = pipe_menon_density(traj, shape).numpy()
    image = smooth_images(shape, 1, 3, NONCARTESIAN_BAND)
    if multicoil:
        smaps = smooth_maps(shape, 1, 4, NONCARTESIAN_BAND)
        inputs = (nc_forward_op(image, traj[None], smaps).numpy(), traj[None], density[None], smaps)
    else:
        inputs = (nc_forward_op(image, traj[None]).numpy(), traj[None], density[None])
    recon = build("nc-adjoint", image_shape=shape)(inputs).numpy()
    error = np.linalg.norm(recon - np.abs(image)) / np.linalg.norm(image)
    print(f"multicoil={multicoil}: relative error {error:.4f}")
    assert error < 0.03
    undersampled = (inputs[0][..., ::4], traj[None, :, ::4], pipe_menon_density(traj[:, ::4], shape).numpy()[None])
    if multicoil:  # without maps: the root-sum-of-squares of the coil images
        rss = build("nc-adjoint", image_shape=shape)(inputs[:3]).numpy()
        assert np.linalg.norm(rss - np.abs(image)) / np.linalg.norm(image) < 0.03
    else:  # a quarter of the samples on every spoke: aliasing
        aliased = build("nc-adjoint", image_shape=shape)(undersampled).numpy()
        assert np.linalg.norm(aliased - np.abs(image)) / np.linalg.norm(image) > 2 * error


def test_cartesian_inputs_and_missing_maps_are_refused():
    model = tiny_model("ncpdnet")
    with pytest.raises(DataError, match=r"\(kspace, trajectory, density\[, smaps\]\)"):
        model((np.zeros((1, 16, 16), np.complex64), np.ones((1, 16), np.float32)))
    (kspace, traj, density, _), _ = nc_example(image_shape("ncpdnet"), True)
    with pytest.raises(DataError, match="sensitivity maps"):
        model((kspace, traj, density))
    with pytest.raises(DataError, match="trajectory must be"):
        tiny_model("ncpdnet-3d")((kspace[:, 0], traj, density))
    with pytest.raises(ConfigError, match="2D"):
        build("nc-unet", image_shape=image_shape("ncpdnet-3d"))


def test_mixed_precision_keeps_the_trajectory_float32():
    """Under mixed precision the CNNs compute in float16 while the NUFFT runs on the float32 trajectory."""
    with mixed_precision():
        model = tiny_model("ncpdnet")
        model(nc_example(image_shape("ncpdnet"), True)[0])
    assert model.primal_cnns[0].output_conv.compute_dtype == "float16"

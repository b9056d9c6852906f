"""The benchmark code's Keras-2 weight files load into the package's models and give the original outputs.

The reference data (``tests/fixtures/orig_weights``, see its README) were made by running the
original code. Each network is loaded through the public path (`fastmri_recon.from_keras2`) with its
registry preset at the fixture's small configuration, called on the fixture's inputs (converted from
the original's channels-last layout to the package's) and compared with the original's outputs.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from fastmri_recon import from_keras2
from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.hub.load import load_keras2
from fastmri_recon.models.layers.coils import refine_smaps
from fastmri_recon.models.legacy.h5 import read_legacy_weights
from fastmri_recon.ops.encoding import NonCartesianEncoding
from fastmri_recon.ops.nufft import np_ndft_adjoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orig_weights"
TOLERANCE = 1e-5  # relative error, float32

SMALL_MWCNN = dict(filters=(4, 8, 8), n_convs=3, first_filters=10, n_first_convs=2)
SMALL_XPDNET = dict(n_iter=2, image_net_params=SMALL_MWCNN, crop_size=(32, 32))
# the small NC-PDNet: grid 64 x 48 cropped to the width 44 inside the original network, NUFFT normalised
# over the 2x grid (128 x 96): the package's NUFFT on the 64 x 44 grid scaled by sqrt(44 / 48) / 2
SMALL_NCPDNET = dict(n_iter=2, n_filters=4, image_shape=(64, 44), operator_scale=0.5 * np.sqrt(44 / 48))
# fixture -> (registry preset, small configuration)
CARTESIAN = {
    "cascadenet": ("cascade-net", dict(n_cascades=2, n_convs=3, n_filters=4)),
    "pdnet": ("pdnet-benchmark", dict(n_iter=2, n_filters=4)),
    "kikinet": ("kiki-net-benchmark", dict(n_convs=3, n_filters=4)),
}
UNETS = {  # the two U-net variants of the original code: same layout, the 4-channel conv linear or relu
    "unet": ("unet-benchmark", dict(filters=(4, 8, 16, 32))),
    "unet_new": ("unet-benchmark", dict(filters=(4, 8, 16, 32), penultimate_activation="relu")),
}


def relative(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def fixture(name):
    return dict(np.load(FIXTURES / f"{name}_small_io.npz"))


def cartesian_inputs(io):
    """(kspace (B, H, W), mask (B, W)) from the original's kspace (B, H, W, 1) and row-repeated mask (B, H, W)."""
    mask = io["mask"].real
    assert np.all(mask == mask[:, :1, :])
    return io["kspace"][..., 0], mask[:, 0, :].astype(np.float32)


@pytest.mark.parametrize("name", CARTESIAN)
def test_cartesian_networks_match_the_original(name):
    architecture, config = CARTESIAN[name]
    io = fixture(name)
    model = from_keras2(FIXTURES / f"{name}_small.h5", architecture, config)
    assert relative(model(cartesian_inputs(io)).numpy(), io["output"][..., 0]) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet", "kikinet"])
def test_full_model_files_load_the_same_weights(name):
    """The Hub's U-net and KIKI-net files are full-model files (weights under model_weights/)."""
    architecture, config = (UNETS if name in UNETS else CARTESIAN)[name]
    weights_only = from_keras2(FIXTURES / f"{name}_small.h5", architecture, config)
    model, legacy = load_keras2(FIXTURES / f"{name}_small_fullmodel.h5", architecture, config)
    assert legacy.full_model and not read_legacy_weights(FIXTURES / f"{name}_small.h5").full_model
    for a, b in zip(model.weights, weights_only.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name", UNETS)
def test_unet_variants_match_the_original(name):
    """The fixture's input is the original network's input: the standardised zero-filled image."""
    architecture, config = UNETS[name]
    io = fixture(name)
    model = from_keras2(FIXTURES / f"{name}_small.h5", architecture, config)
    assert relative(model.unet(io["image"]).numpy(), io["output"]) <= TOLERANCE


def test_unet_benchmark_standardises_each_slice_as_the_benchmark_pipeline():
    """k-space -> |zero-filled| cropped -> (z - mean) / (std + 1e-11) -> U-net -> * std + mean (NumPy reference)."""
    architecture, config = UNETS["unet"]
    model = from_keras2(FIXTURES / "unet_small.h5", architecture, {**config, "crop_size": (32, 24)})
    kspace, mask = cartesian_inputs(fixture("pdnet"))
    kspace = np.concatenate([kspace, 1e3 * kspace])  # two slices of different scales
    mask = np.concatenate([mask, mask])
    masked = kspace * mask[:, None, :]
    zero_filled = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(masked, axes=(1, 2)), norm="ortho"), axes=(1, 2)))
    cropped = zero_filled[:, 16:48, 12:36]
    mean, std = cropped.mean(axis=(1, 2), keepdims=True), cropped.std(axis=(1, 2), keepdims=True)
    network = model.unet(((cropped - mean) / (std + 1e-11))[..., None].astype(np.float32)).numpy()[..., 0]
    expected = network * std + mean
    assert relative(model((kspace.astype(np.complex64), mask)).numpy(), expected) <= TOLERANCE
    out = model((kspace.astype(np.complex64), mask)).numpy()
    assert relative(out[1] / 1e3, out[0]) <= TOLERANCE  # standardisation: no dependence on the data's scale


@pytest.mark.slow
def test_pdnet_at_the_real_size_with_the_320_crop():
    io = dict(np.load(FIXTURES / "pdnet_small_fullsize_io.npz"))
    architecture, config = CARTESIAN["pdnet"]
    model = from_keras2(FIXTURES / "pdnet_small.h5", architecture, {**config, "crop_size": (320, 320)})
    mask = io["mask"][:, 0, :].astype(np.float32)
    out = model((io["kspace"][..., 0], mask)).numpy()
    assert out.shape == (1, 320, 320) and relative(out, io["output"][..., 0]) <= TOLERANCE


def xpdnet_inputs(io):
    mask = io["mask"].real
    assert np.all(mask == mask[:, :1, :1, :])
    return io["kspace"][..., 0], mask[:, 0, 0, :].astype(np.float32), io["smaps"]


@pytest.mark.slow
def test_xpdnet_challenge_matches_the_original_and_its_blocks():
    io = fixture("xpdnet")
    model = from_keras2(FIXTURES / "xpdnet_small.h5", "xpdnet-challenge", SMALL_XPDNET, multicoil=True)
    assert relative(model(xpdnet_inputs(io)).numpy(), io["output"][..., 0]) <= TOLERANCE
    block = model.image_nets[0](io["block_image_net_0_input"]).numpy()
    assert relative(block, io["block_image_net_0_output"]) <= TOLERANCE
    refined = refine_smaps(model.smaps_refiner, io["block_refine_smaps_input"]).numpy()
    assert relative(refined, io["block_refine_smaps_output"]) <= TOLERANCE


@pytest.mark.slow
def test_ncpdnet_blocks_match_and_the_network_within_the_nufft_difference():
    """The image networks match to float32; end to end the original's tfkbnufft (table interpolation) differs.

    tfkbnufft's density-compensated adjoint is within 1e-3 of the exact NDFT on the fixture's
    trajectory, the package's within 1e-5; the network's output differs from the original's by no
    more than that NUFFT difference.
    """
    io = fixture("ncpdnet")
    model = from_keras2(FIXTURES / "ncpdnet_small.h5", "ncpdnet-benchmark", SMALL_NCPDNET)
    block_input = io["block_image_net_0_input"]
    block = block_input[..., :5] + model.primal_cnns[0](block_input).numpy()
    assert relative(block, io["block_image_net_0_output"]) <= TOLERANCE

    kspace, trajectory, density = io["kspace"][:, 0, :, 0], io["traj"], io["dcomp"].astype(np.float32)
    exact = model.operator_scale * np_ndft_adjoint(density * kspace, trajectory[0], (64, 44))
    ours = model.operator_scale * NonCartesianEncoding(trajectory, (64, 44), density, eps=1e-6).adjoint(kspace).numpy()
    original = io["adj_nufft_dcomp"][..., 0]
    original_error = relative(original, exact)
    assert relative(ours, exact) <= 1e-5 and original_error <= 1e-3
    out = model((kspace, trajectory, density)).numpy()
    assert relative(out, io["output"][..., 0]) <= original_error


@pytest.mark.slow
@pytest.mark.parametrize("cropped", [True, False])
def test_ncpdnet_3d_matches_within_the_nufft_difference(cropped):
    """3D: tfkbnufft's NUFFT is the orthonormal one over the 2x grid, 2**-1.5 of the package's; the
    original crops the volume to ``orig_shape`` inside the network: the package's NUFFT on that grid."""
    io = fixture("ncpdnet3d")
    grid = tuple(int(n) for n in io["orig_shape"][0]) if cropped else (16, 16, 16)
    scale = 2**-1.5 * np.sqrt(np.prod(grid) / 16**3)
    config = dict(n_iter=2, n_filters=4, image_shape=grid, operator_scale=scale)
    model = from_keras2(FIXTURES / "ncpdnet3d_small.h5", "ncpdnet-benchmark", config)
    if cropped:
        block_input = io["block_image_net_0_input"]
        block = block_input[..., :5] + model.primal_cnns[0](block_input).numpy()
        assert relative(block, io["block_image_net_0_output"]) <= TOLERANCE
    kspace, trajectory, density = io["kspace"][:, 0, :, 0], io["traj"], io["dcomp"][:, 0].astype(np.float32)
    expected = io["output" if cropped else "output_full_shape"][..., 0]
    assert relative(model((kspace, trajectory, density)).numpy(), expected) <= 1e-3  # tfkbnufft: 8e-4 from the NDFT


def _swap(path, first, second, what):
    """Swap two datasets (``what="dataset"``) or two layers' places in ``layer_names`` (``what="layer"``)."""
    with h5py.File(path, "r+") as handle:
        if what == "dataset":
            a, b = handle[first][()], handle[second][()]
            handle[first][...], handle[second][...] = b, a
        else:
            names = [n.decode() if isinstance(n, bytes) else n for n in handle.attrs["layer_names"]]
            i, j = names.index(first), names.index(second)
            names[i], names[j] = names[j], names[i]
            handle.attrs["layer_names"] = np.array([n.encode() for n in names])


@pytest.mark.parametrize(
    "first, second, what",
    [
        ("conv2d/conv2d/bias:0", "conv2d_1/conv2d_1/bias:0", "dataset"),  # two biases of the same shape
        ("conv2d_1", "conv2d_4", "layer"),  # the dual and the primal network's middle convolutions
    ],
)
def test_a_swapped_bias_or_layer_changes_the_output(tmp_path, first, second, what):
    """The fixture test is sensitive: the same file with two same-shaped weights swapped fails it."""
    path = tmp_path / "pdnet_swapped.h5"
    shutil.copy(FIXTURES / "pdnet_small.h5", path)
    _swap(path, first, second, what)
    architecture, config = CARTESIAN["pdnet"]
    io = fixture("pdnet")
    out = from_keras2(path, architecture, config)(cartesian_inputs(io)).numpy()
    assert relative(out, io["output"][..., 0]) > 100 * TOLERANCE


def test_a_file_of_another_architecture_is_refused_with_the_layer_and_shapes():
    with pytest.raises(ConfigError) as error:
        from_keras2(FIXTURES / "pdnet_small.h5", *CARTESIAN["cascadenet"])
    message = str(error.value)
    assert "pdnet_small.h5" in message and "weighted layer 0 'conv2d'" in message
    assert "(3, 3, 14, 4)" in message and "(3, 3, 2, 4)" in message and "\n" not in message
    with pytest.raises(ConfigError, match="12 weighted layers where .* expects 6"):
        from_keras2(FIXTURES / "pdnet_small.h5", "pdnet-benchmark", dict(n_iter=1, n_filters=4))


def test_files_that_are_not_keras2_weights_are_refused(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="not an HDF5 file"):
        read_legacy_weights(text)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(DataError, match="not a Keras-2 weights file"):
        read_legacy_weights(empty)


def test_external_links_and_external_storage_are_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    for kind in ("link", "storage"):
        path = tmp_path / f"{kind}.h5"
        with h5py.File(path, "w") as handle:
            handle.attrs["layer_names"] = np.array([b"conv2d"])
            group = handle.create_group("conv2d")
            group.attrs["weight_names"] = np.array([b"conv2d/kernel:0"])
            if kind == "link":
                group["conv2d/kernel:0"] = h5py.ExternalLink(str(secret), "/x")
            else:
                group.create_dataset("conv2d/kernel:0", shape=(16,), dtype="f4", external=[(str(secret), 0, 64)])
        with pytest.raises(DataError, match="external"):
            read_legacy_weights(path)


def test_split_name_attributes_are_read(tmp_path):
    """Keras 2 splits attributes above 64 KB into layer_names0, layer_names1, ..."""
    path = tmp_path / "split.h5"
    shutil.copy(FIXTURES / "cascadenet_small.h5", path)
    with h5py.File(path, "r+") as handle:
        names = handle.attrs["layer_names"]
        del handle.attrs["layer_names"]
        handle.attrs["layer_names0"], handle.attrs["layer_names1"] = names[:3], names[3:]
    architecture, config = CARTESIAN["cascadenet"]
    io = fixture("cascadenet")
    assert relative(from_keras2(path, architecture, config)(cartesian_inputs(io)).numpy(), io["output"][..., 0]) <= TOLERANCE


def write_layout(layout, path, full_model=False, seed=0):
    """A Keras-2 file of a paper-size layout (``*_paper_layout.json``) with random float32 values.

    Returns:
        the sum of all values written (float64).
    """
    rng = np.random.default_rng(seed)
    total = 0.0
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights") if full_model else handle
        layers = layout["h5"]["layers"]
        root.attrs["layer_names"] = np.array([layer["name"].encode() for layer in layers])
        root.attrs["backend"], root.attrs["keras_version"] = b"tensorflow", b"2.4.0"
        for layer in layers:
            group = root.require_group(layer["name"])
            group.attrs["weight_names"] = np.array([w["name"].encode() for w in layer["weights"]], dtype="S")
            for weight in layer["weights"]:
                values = rng.standard_normal(weight["shape"], dtype=np.float32)
                total += float(values.sum(dtype=np.float64))
                root.create_dataset(weight["h5_path"], data=values)
        if full_model:
            handle.attrs["model_config"] = json.dumps({"class_name": "Functional"})
            handle.create_group("optimizer_weights").attrs["weight_names"] = np.array([b"iter:0"])
    return total


# published network -> (layout file, registry preset, config, multi-coil, Hub file layout)
PAPER_SIZE = {
    "unet": ("unet", "unet-benchmark", {"crop_size": (320, 320)}, False, "full-model"),
    "pdnet": ("pdnet", "pdnet-benchmark", {"crop_size": (320, 320)}, False, "weights"),
    "cascadenet": ("cascadenet", "cascade-net", {"crop_size": (320, 320)}, False, "weights"),
    "kikinet": ("kikinet", "kiki-net-benchmark", {"crop_size": (320, 320)}, False, "full-model"),
    "xpdnet": ("xpdnet", "xpdnet-challenge", {"crop_size": (320, 320)}, True, "weights"),
    "ncpdnet": ("ncpdnet", "ncpdnet-benchmark", {}, False, "weights"),
    "ncpdnet-3d": (
        "ncpdnet3d",
        "ncpdnet-benchmark",
        {"image_shape": (176, 256, 256), "n_iter": 6, "n_filters": 16, "operator_scale": 2**-1.5},
        False,
        "weights",
    ),
    "ncpdnet-multicoil": (
        "ncpdnet_multicoil",
        "ncpdnet-benchmark",
        {"refine_smaps": True, "smaps_refiner_params": {"penultimate_channels": 4, "penultimate_activation": "lrelu"}},
        True,
        "weights",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_SIZE)
def test_paper_size_layouts_load_into_the_presets(tmp_path, name):
    layout_file, architecture, config, multicoil, kind = PAPER_SIZE[name]
    layout = json.loads((FIXTURES / f"{layout_file}_paper_layout.json").read_text())
    path = tmp_path / "model_weights.h5"
    total = write_layout(layout, path, full_model=kind == "full-model")
    model = from_keras2(path, architecture, config, multicoil=multicoil)
    assert model.count_params() == layout["count_params"]
    assert sum(float(w.numpy().sum(dtype=np.float64)) for w in model.weights) == pytest.approx(total, rel=1e-6, abs=1e-2)

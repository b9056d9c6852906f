"""The registered models at their tiny configurations, and example data of each acquisition.

A case is a registry entry with a ``tiny`` configuration (`registry.Entry.tiny`), named as the entry,
or one of `VARIANTS`: a configuration of an entry over its tiny one that takes other code paths.
Each case runs in the settings of its acquisition (`settings`):

- Cartesian: fully-sampled k-space ``(BATCH[, COILS], HEIGHT, WIDTH)`` with a mask keeping 6 of the
  16 columns (the model masks it), single-coil (unless the class is multi-coil only) and multi-coil
  with maps; outputs cropped to `CROP`.
- Non-Cartesian: the NUFFT of smooth images on the tiny ``image_shape`` grid (2D radial, 3D
  kooshball) with Pipe-Menon density; 2D single- and multi-coil, 3D single-coil; outputs cropped to
  `CROP_2D` (3D: `CROP_3D` in-plane, the depth kept).
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from fastmri_recon.data.density import pipe_menon_density
from fastmri_recon.data.trajectories import kooshball_trajectory, radial_trajectory
from fastmri_recon.models.nc_base import crop_volume
from fastmri_recon.models.registry import ENTRIES, build, get_entry
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.encoding import nc_forward_op
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

BATCH, COILS, HEIGHT, WIDTH = 2, 3, 32, 16
CROP = (16, 8)
CROP_2D, CROP_3D = (12, 10), (6, 6)
CARTESIAN_BAND, NONCARTESIAN_BAND = (8, 6), 5
"""Central frequencies per axis of the smooth example images (`smooth_images`)."""

VARIANTS = {
    "xpdnet-kspace-refine": (
        "xpdnet",
        {"primal_only": False, "refine_smaps": True, "kspace_net_params": dict(n_convs=1, n_filters=4)},
    ),
}
"""case -> (registry name, configuration over the entry's tiny one)."""

CASES = {
    **{name: (name, entry.tiny) for name, entry in ENTRIES.items() if entry.tiny is not None},
    **{case: (name, {**ENTRIES[name].tiny, **config}) for case, (name, config) in VARIANTS.items()},
}
"""case -> (registry name, tiny configuration)."""


def entry(case):
    """The registry entry of ``case``."""
    return get_entry(CASES[case][0])


def noncartesian(case):
    return entry(case).acquisition == "noncartesian"


def image_shape(case):
    """The tiny image grid of a non-Cartesian case: ``(H, W)`` or ``(D, H, W)``."""
    return tuple(CASES[case][1]["image_shape"])


def crop(case):
    if not noncartesian(case):
        return CROP
    return CROP_3D if len(image_shape(case)) == 3 else CROP_2D


def tiny_model(case, **overrides):
    """``case``'s model at its tiny configuration, cropped to the case's crop; ``overrides`` on top."""
    name, config = CASES[case]
    return build(name, **{"crop_size": crop(case), **config, **overrides})


def multicoil_only(case):
    return entry(case).load_class().multicoil_only


def settings(case):
    """The coil settings ``case`` runs in: a list of ``multicoil`` flags (see the module docstring)."""
    if noncartesian(case):
        return [False] if len(image_shape(case)) == 3 else [False, True]
    return [True] if multicoil_only(case) else [False, True]


def output_shape(case, cropped=True):
    """The shape of ``case``'s outputs on `example` inputs of `BATCH` examples."""
    if not noncartesian(case):
        return (BATCH, *CROP) if cropped else (BATCH, HEIGHT, WIDTH)
    shape = image_shape(case)
    return (BATCH, *shape[:-2], *crop(case)) if cropped else (BATCH, *shape)


def smooth_images(shape, batch, seed, band):
    """complex64 ``(batch, *shape)`` images with low-frequency content: a random centre of k-space of
    ``band`` frequencies per axis (an int: the same on every axis)."""
    rng = np.random.default_rng(seed)
    band = (band,) * len(shape) if isinstance(band, int) else band
    spectrum = np.zeros((batch, *shape), np.complex64)
    centre = (slice(None),) + tuple(slice(n // 2 - b // 2, n // 2 - b // 2 + b) for n, b in zip(shape, band))
    spectrum[centre] = rng.standard_normal(spectrum[centre].shape) + 1j * rng.standard_normal(spectrum[centre].shape)
    return np_ifftc(spectrum, axes=tuple(range(1, len(shape) + 1))).astype(np.complex64)


def smooth_maps(shape, batch, seed, band, coils=COILS):
    """complex64 ``(batch, coils, *shape)`` smooth sensitivity maps, normalised (sum of squares 1)."""
    smaps = smooth_images(shape, batch * coils, seed, band).reshape(batch, coils, *shape) + 1.0
    return (smaps / np.sqrt(np.sum(np.abs(smaps) ** 2, axis=1, keepdims=True))).astype(np.complex64)


def cartesian_example(multicoil, batch=BATCH, seed=0):
    """(inputs, target): fully-sampled k-space with a mask keeping 6 of 16 columns, and the cropped magnitude."""
    rng = np.random.default_rng(seed)
    image = smooth_images((HEIGHT, WIDTH), batch, seed, CARTESIAN_BAND)
    mask = np.zeros((batch, WIDTH), np.float32)
    mask[:, WIDTH // 2 - 2 : WIDTH // 2 + 2] = 1
    mask[np.arange(batch), rng.integers(0, WIDTH // 2 - 2, batch)] = 1
    mask[np.arange(batch), rng.integers(WIDTH // 2 + 2, WIDTH, batch)] = 1
    target = center_crop(np.abs(image), CROP)
    if not multicoil:
        return (np_fftc(image).astype(np.complex64), mask), target
    smaps = smooth_maps((HEIGHT, WIDTH), batch, seed + 1, CARTESIAN_BAND)
    return (np_fftc(image[:, None] * smaps).astype(np.complex64), mask, smaps), target


def nc_example(shape, multicoil, batch=BATCH, seed=0):
    """(inputs, target): the NUFFT of smooth images on an undersampled trajectory, and their cropped magnitude."""
    three_d = len(shape) == 3
    if three_d:
        traj = kooshball_trajectory(n_spokes=40, n_samples=2 * shape[0])
    else:
        traj = radial_trajectory(shape[0], n_spokes=6)
    density = pipe_menon_density(traj, shape).numpy()
    image = smooth_images(shape, batch, seed, NONCARTESIAN_BAND)
    target = crop_volume(np.abs(image), CROP_3D if three_d else CROP_2D)
    trajs, densities = np.stack([traj] * batch), np.stack([density] * batch)
    if not multicoil:
        return (nc_forward_op(image, trajs).numpy(), trajs, densities), target
    smaps = smooth_maps(shape, batch, seed + 1, NONCARTESIAN_BAND)
    return (nc_forward_op(image, trajs, smaps).numpy(), trajs, densities, smaps), target


def example(case, multicoil, batch=BATCH, seed=0):
    """(inputs, target) of ``case``'s acquisition (see the module docstring)."""
    if noncartesian(case):
        return nc_example(image_shape(case), multicoil, batch, seed)
    return cartesian_example(multicoil, batch, seed)


def input_signature(case, multicoil):
    """``tf.TensorSpec`` of ``case``'s inputs with unknown batch, coils and (Cartesian) k-space size or
    (non-Cartesian) number of samples."""
    coils = [None] if multicoil else []
    if not noncartesian(case):
        kspace = tf.TensorSpec([None, *coils, None, None], tf.complex64)
        return (kspace, tf.TensorSpec([None, None])) + ((kspace,) if multicoil else ())
    shape = image_shape(case)
    signature = (
        tf.TensorSpec([None, *coils, None], tf.complex64),
        tf.TensorSpec([None, len(shape), None]),
        tf.TensorSpec([None, None]),
    )
    return signature + ((tf.TensorSpec([None, None, *shape], tf.complex64),) if multicoil else ())


@contextlib.contextmanager
def mixed_precision():
    """Run the block under the ``mixed_float16`` policy (models built inside it compute in float16)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")

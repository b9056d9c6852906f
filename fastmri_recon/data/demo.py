"""The demo data set: fastMRI-format files simulated from a real MR brain volume.

The real fastMRI data needs a licence; the demo data lets every command run end to end without it.
It starts from the MNI ICBM152 2009a T1 template (1 mm, 197 x 233 x 189) that nilearn ships inside
its wheel, read with nibabel from the installed package (nilearn itself is not imported). Each
"subject" is the template under its own random smooth deformation (in-plane rotation, scaling,
translation and an elastic field), intensity bias field and smooth image phase. Axial slices are
sampled on an ``image_size`` x ``image_size`` grid over a 220 mm field of view, padded 2x along the
read-out axis (H) as fastMRI's raw data is, and turned into

- single-coil k-space: ``F x + n``;
- multi-coil k-space: ``F S_c x + n_c`` with birdcage-like coil sensitivities `birdcage_maps`;

with complex Gaussian noise ``n`` of standard deviation ``sigma = mean(|x| in the brain) / snr`` per
sample for single-coil data and ``sigma / sqrt(coils)`` per coil for multi-coil data, so that both
targets have about the same signal-to-noise ratio. Targets are computed from the noisy fully-sampled k-space as fastMRI's are: the magnitude
(``reconstruction_esc``) or root-sum-of-squares (``reconstruction_rss``) image, center-cropped to
``image_size`` x ``image_size``. Subjects are split into train / val / test; test files carry
their k-space already undersampled with the ``mask`` that produced it and no target.

Every file also holds a simulated B0 field map per slice (``b0_map``, `data.h5.FIELD_MAP_KEY`: float32
``(slices, n, n)`` in Hz on the target's grid, `data.field_maps.simulate_field_map` of the noiseless
magnitude image: a smooth second-order field of up to 40 Hz and a 120 Hz susceptibility-like bump at the
brain's boundary), for the non-Cartesian pipelines' off-resonant spirals; it is drawn from its own seed,
so that the k-space and targets do not depend on it.

Same configuration and seed, same bytes.
"""

import dataclasses
import hashlib
import importlib.util
import json
from pathlib import Path

import nibabel
import numpy as np
from scipy import ndimage

from fastmri_recon.data.field_maps import simulate_field_map
from fastmri_recon.data.h5 import Header, Volume, write_volume
from fastmri_recon.data.masks import MaskSampler, apply_mask, default_center_fraction
from fastmri_recon.errors import ConfigError
from fastmri_recon.files import make_directory, remove_temporaries, write_text
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.fourier import np_fftc, np_ifftc
from fastmri_recon.progress import progress_bar

TEMPLATE_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
FIELD_OF_VIEW_MM = 220.0
BRAIN_CENTRE_VOXEL = (98.0, 117.0, 72.0)  # template voxel at the brain's centre in-plane, at the AC height
INTENSITY_SCALE = 1e-4  # k-space and targets on the order of real fastMRI files
SPLITS = ("train", "val", "test")
INFO_FILE = "demo_info.json"
DEMO_FORMAT = 2
"""Version of the files' content, in ``demo_info.json``: 2 added the field maps (older builds are rebuilt)."""


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Size and physics of a demo data set.

    Attributes:
        train_subjects, val_subjects, test_subjects: number of subjects (volumes) per split.
        slices: axial slices per volume.
        image_size: target size (pixels, square); k-space is ``(2 * image_size, image_size)``.
        coils: number of receive coils of the multi-coil data.
        snr: mean brain magnitude over the noise standard deviation (per coil: times sqrt(coils)).
        test_accelerations: accelerations of the test files' random masks, cycled over the subjects.
        seed: the seed of everything random.
    """

    train_subjects: int = 6
    val_subjects: int = 2
    test_subjects: int = 2
    slices: int = 8
    image_size: int = 128
    coils: int = 8
    snr: float = 40.0
    test_accelerations: tuple = (4, 8)
    seed: int = 0

    def __post_init__(self):
        checks = {
            "train_subjects": self.train_subjects >= 1,
            "val_subjects": self.val_subjects >= 1,
            "test_subjects": self.test_subjects >= 0,
            "slices": self.slices >= 1,
            "image_size": self.image_size >= 16 and self.image_size % 2 == 0,
            "coils": self.coils >= 2,
            "snr": self.snr > 0,
            "test_accelerations": len(self.test_accelerations) > 0 and all(a > 1 for a in self.test_accelerations),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid demo configuration: {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}")

    def to_json(self):
        return {**dataclasses.asdict(self), "test_accelerations": list(self.test_accelerations)}


def template_path():
    """Path of the MNI ICBM152 T1 template inside the installed nilearn wheel.

    Raises:
        ConfigError: if nilearn is not installed or the file is missing.
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the demo data needs the MNI template shipped with nilearn: pip install nilearn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / TEMPLATE_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: the MNI ICBM152 template is missing from the installed nilearn")
    return path


def load_template():
    """The MNI ICBM152 T1 template, float32 ``(x=197, y=233, z=189)`` (L-R, P-A, I-S), scaled to [0, 1]."""
    volume = np.asarray(nibabel.load(template_path()).dataobj, dtype=np.float32)
    return np.clip(volume, 0, None) / volume.max()


def birdcage_maps(coils, shape, radius=1.5):
    """Birdcage-like coil sensitivities: coils evenly spaced on a circle around the field of view.

    Each coil's sensitivity falls off as the inverse distance to the coil and its phase turns with
    the direction from the coil, as the field of a loop does; maps are scaled so that their
    root-sum-of-squares averages to one over the image.

    Args:
        coils: number of coils.
        shape: image size ``(H, W)``; H may be a multiple of W (read-out oversampling), the coils
            sit around the central ``W x W`` field of view.
        radius: coil circle radius, relative to half the field of view.

    Returns:
        complex64 ``(coils, H, W)``.
    """
    height, width = shape
    rows = (np.arange(height) - height / 2 + 0.5) / (width / 2)
    cols = (np.arange(width) - width / 2 + 0.5) / (width / 2)
    y, x = np.meshgrid(rows, cols, indexing="ij")
    angles = 2 * np.pi * np.arange(coils) / coils
    dx = x[None] - radius * np.cos(angles)[:, None, None]
    dy = y[None] - radius * np.sin(angles)[:, None, None]
    maps = np.exp(1j * (np.arctan2(dy, dx) - angles[:, None, None])) / np.hypot(dx, dy)
    maps /= np.sqrt(np.sum(np.abs(maps) ** 2, axis=0)).mean()
    return maps.astype(np.complex64)


def _smooth_field(rng, shape, grid, amplitude):
    """Random smooth field: a coarse Gaussian grid upsampled (cubic) to ``shape``, scaled by ``amplitude``."""
    coarse = rng.standard_normal(grid)
    zoom = [s / g for s, g in zip(shape, grid)]
    return amplitude * ndimage.zoom(coarse, zoom, order=3, mode="nearest")[tuple(slice(s) for s in shape)]


def _subject_images(template, rng, config):
    """Complex images of one subject, ``(slices, image_size, image_size)`` complex128, and its brain mask."""
    n, size = config.slices, config.image_size
    pixel = FIELD_OF_VIEW_MM / size
    # Output grid in mm around the template centre: rows anterior -> posterior, columns right -> left.
    rows = (np.arange(size) - size / 2 + 0.5) * pixel
    cols = (np.arange(size) - size / 2 + 0.5) * pixel
    z_mm = np.linspace(-20.0, 50.0, n) + rng.uniform(-4, 4)  # axial positions above the AC, in mm
    zz, yy, xx = np.meshgrid(z_mm, -rows, cols, indexing="ij")
    angle = np.deg2rad(rng.uniform(-8, 8))
    scale = rng.uniform(0.92, 1.08)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    u = cos * xx - sin * yy + rng.uniform(-5, 5)
    v = sin * xx + cos * yy + rng.uniform(-5, 5)
    grid_shape = zz.shape
    u = u + _smooth_field(rng, grid_shape, (3, 5, 5), 3.0)
    v = v + _smooth_field(rng, grid_shape, (3, 5, 5), 3.0)
    w = zz + _smooth_field(rng, grid_shape, (3, 5, 5), 1.5)
    centre = BRAIN_CENTRE_VOXEL  # voxel size 1 mm
    coords = np.stack([u + centre[0], v + centre[1], w + centre[2]])
    magnitude = ndimage.map_coordinates(template, coords, order=1, cval=0.0)
    brain = magnitude > 0.1
    bias = np.exp(_smooth_field(rng, grid_shape, (2, 3, 3), 0.15))
    phase = _smooth_field(rng, grid_shape, (2, 3, 3), 0.8)
    return magnitude * bias * np.exp(1j * phase), brain


def _oversample_readout(images):
    """Zero-pad the read-out axis (H, axis -2) by 2, as fastMRI's raw data is oversampled."""
    size = images.shape[-2]
    pad = [(0, 0)] * images.ndim
    pad[-2] = (size // 2, size - size // 2)
    return np.pad(images, pad)


def _complex_noise(rng, shape, sigma):
    return (sigma / np.sqrt(2)) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def _header(config):
    size = config.image_size
    return Header((2 * size, size, 1), (size, size, 1), encoding_center=size // 2, encoding_maximum=size - 1)


def simulate_subject(template, config, subject):
    """Simulate one subject's fully-sampled k-space and targets.

    Args:
        template: output of `load_template`.
        config: `DemoConfig`.
        subject: subject index (seeds its randomness together with ``config.seed``).

    Returns:
        dict with ``singlecoil`` complex64 ``(slices, 2n, n)``, ``multicoil`` complex64
        ``(slices, coils, 2n, n)``, ``esc`` and ``rss`` float32 targets ``(slices, n, n)``
        and ``b0_map`` float32 ``(slices, n, n)`` (Hz) with ``n = config.image_size``.
    """
    rng = np.random.default_rng([config.seed, subject])
    images, brain = _subject_images(template, rng, config)
    sigma = np.abs(images[brain]).mean() / config.snr
    images = _oversample_readout(images)
    maps = birdcage_maps(config.coils, images.shape[-2:])
    singlecoil = np_fftc(images) + _complex_noise(rng, images.shape, sigma)
    coil_images = images[:, None] * maps[None]
    multicoil = np_fftc(coil_images) + _complex_noise(rng, coil_images.shape, sigma / np.sqrt(config.coils))
    crop = (config.image_size, config.image_size)
    esc = center_crop(np.abs(np_ifftc(singlecoil)), crop)
    rss = center_crop(np.sqrt(np.sum(np.abs(np_ifftc(multicoil)) ** 2, axis=1)), crop)
    magnitude = center_crop(np.abs(images), crop)
    b0_map = [simulate_field_map(image, seed=(config.seed, subject, index)) for index, image in enumerate(magnitude)]
    scale = INTENSITY_SCALE
    return {
        "b0_map": np.asarray(b0_map, np.float32),
        "singlecoil": (scale * singlecoil).astype(np.complex64),
        "multicoil": (scale * multicoil).astype(np.complex64),
        "esc": (scale * esc).astype(np.float32),
        "rss": (scale * rss).astype(np.float32),
    }


def _subject_splits(config):
    counts = (config.train_subjects, config.val_subjects, config.test_subjects)
    subject = 0
    for split, count in zip(SPLITS, counts):
        for _ in range(count):
            yield split, subject
            subject += 1


def _test_volume(path, kspace, header, attrs, acceleration, field_map):
    """Undersample a test volume with a random mask seeded by its file name, as fastMRI's test files."""
    center_fraction = default_center_fraction(acceleration)
    sampler = MaskSampler("random", [center_fraction], [acceleration])
    mask, _ = sampler(kspace.shape[-1], seed=path.name)
    num_low = int(round(kspace.shape[-1] * center_fraction))
    attrs = {**attrs, "acceleration": acceleration, "num_low_frequency": num_low}
    return Volume(path, apply_mask(kspace, mask), header, mask=mask, attrs=attrs, field_map=field_map)


def _write_subject(out_dir, template, header, config, split, subject):
    """Simulate one subject and write its single-coil and multi-coil files into ``split``."""
    data = simulate_subject(template, config, subject)
    name = f"demo_{subject:03d}.h5"
    patient = hashlib.sha256(f"fastmri-recon-demo-{config.seed}-{subject}".encode()).hexdigest()[:16]
    attrs = {"acquisition": "AXT1", "patient_id": patient}
    for coil, target_key in (("singlecoil", "esc"), ("multicoil", "rss")):
        path = out_dir / f"{coil}_{split}" / name
        if split == "test":
            acceleration = config.test_accelerations[subject % len(config.test_accelerations)]
            volume = _test_volume(path, data[coil], header, attrs, acceleration, data["b0_map"])
        else:
            volume = Volume(path, data[coil], header, target=data[target_key], attrs=attrs, field_map=data["b0_map"])
        write_volume(volume)


def build_demo_dataset(out_dir, config=DemoConfig(), progress=True):
    """Write the demo data set under ``out_dir``.

    Layout: ``{singlecoil,multicoil}_{train,val,test}/demo_XXX.h5`` and ``demo_info.json`` (the
    configuration, written last: its presence marks a complete build). A complete build with the
    same configuration is left as it is; a new build removes the temporary files an interrupted
    one left.

    Args:
        out_dir: output directory (created).
        config: `DemoConfig`.
        progress: show a progress bar.

    Returns:
        dict: the configuration and the file list, as written to ``demo_info.json``, plus
        ``"built"``: False when an identical build was already there.

    Raises:
        DataError: ``out_dir`` cannot be created or written.
    """
    out_dir = Path(out_dir)
    make_directory(out_dir)
    info_path = out_dir / INFO_FILE
    expected_info = {"format": DEMO_FORMAT, "config": config.to_json(), "files": {}}
    for split, subject in _subject_splits(config):
        for coil in ("singlecoil", "multicoil"):
            expected_info["files"].setdefault(f"{coil}_{split}", []).append(f"demo_{subject:03d}.h5")
    if info_path.is_file() and json.loads(info_path.read_text()) == expected_info:
        if all((out_dir / d / f).is_file() for d, files in expected_info["files"].items() for f in files):
            return {**expected_info, "built": False}

    info_path.unlink(missing_ok=True)
    template = load_template()
    header = _header(config)
    with progress_bar(list(_subject_splits(config)), "demo data", "subject", progress) as bar:
        for split, subject in bar:
            _write_subject(out_dir, template, header, config, split, subject)
    for folder, names in expected_info["files"].items():  # files of an earlier, bigger build, an interrupted one's temporaries
        for stale in set(p.name for p in (out_dir / folder).glob("demo_*.h5")) - set(names):
            (out_dir / folder / stale).unlink()
        remove_temporaries(out_dir / folder)
    write_text(info_path, json.dumps(expected_info, indent=2) + "\n")
    return {**expected_info, "built": True}

"""The interface shared by the non-Cartesian networks and baselines (NC-PDNet, adjoint + U-net, adjoint).

Non-Cartesian models are called as ``model((kspace, trajectory, density))`` or
``model((kspace, trajectory, density, smaps))``, the tuple the non-Cartesian pipelines yield
(`data.datasets.noncartesian`, `data.datasets.volume3d`):

- ``kspace``: complex64 samples ``(batch, M)`` (single-coil) or ``(batch, coils, M)`` (multi-coil);
- ``trajectory``: float32 ``(batch, ndim, M)``, radians in ``[-pi, pi)``, ``ndim = len(image_shape)``;
- ``density``: float32 density-compensation weights ``(batch, M)`` (`data.density`), applied in the
  adjoint (``A^H D``);
- ``smaps``: complex64 sensitivity maps ``(batch, coils, *image_shape)``.

Off-resonance-aware, they take ``(kspace, trajectory, density[, smaps], field_map, readout_times)``
(5 inputs without maps, 6 with them): a B0 field map float32 ``(batch, *image_shape)`` in Hz and the
samples' acquisition times float32 ``(batch, M)`` in seconds; the encoding is then the time-segmented
`ops.off_resonance.OffResonanceEncoding` (``b0_segments`` segments) instead of
`ops.encoding.NonCartesianEncoding`.

They return float32 magnitude images ``(batch, h, w)`` (2D) or ``(batch, d, h, w)`` (3D),
center-cropped to ``crop_size`` as the Cartesian models are, so evaluation and training loops serve
both once they feed the right inputs.

Design. `NonCartesianModel` subclasses `models.base.ReconstructionModel`: it keeps its output
(magnitude, crop), ``crop_size``, ``needs_smaps`` / ``multicoil_only`` and configuration, and
replaces the input parsing; its class attribute ``acquisition = "noncartesian"`` (``"cartesian"``
on every other model, and the registry entry's field of the same name) lets commands tell the two
input conventions apart before calling a model. Calling a non-Cartesian model with Cartesian inputs
raises a `DataError` that names the expected tuple.

The image grid ``image_shape`` is a constructor argument: the NUFFT needs the image size before it
sees any data, and single-coil samples do not carry it. It must be the grid the data were simulated
on (the pipelines' ``image_shape``); the sensitivity maps, when given, are checked against it. The
default, ``(640, 400)``, is the grid of the NC-PDNet paper's 2D fastMRI experiments (the read-out
oversampled field of view of most knee volumes). The NUFFT inside the models runs at ``nufft_eps``
(default 1e-4, kernel width 5), one plan per call shared by all iterations.
"""

import numpy as np
import tensorflow as tf

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.models.base import ReconstructionModel, remove_global_phase
from fastmri_recon.ops.crop import center_crop
from fastmri_recon.ops.encoding import NonCartesianEncoding
from fastmri_recon.ops.nufft import NUFFTPlan
from fastmri_recon.ops.off_resonance import DEFAULT_SEGMENTS, OffResonanceEncoding

DEFAULT_IMAGE_SHAPE = (640, 400)
"""Default 2D image grid (the NC-PDNet paper's fastMRI grid)."""

DEFAULT_NUFFT_EPS = 1e-4
"""Default NUFFT accuracy inside the models (kernel width 5 at oversampling 2)."""

INPUTS = "(kspace, trajectory, density[, smaps])"
B0_INPUTS = "(kspace, trajectory, density[, smaps], field_map, readout_times)"


def crop_volume(image, crop_size):
    """Center-crop the last two axes (``crop_size`` of 2 ints) or three axes (3 ints) of ``image``.

    Args:
        image: tensor ``(..., H, W)`` or ``(..., D, H, W)``.
        crop_size: ``(h, w)`` or ``(d, h, w)``.

    Returns:
        tensor ``(..., h, w)`` or ``(..., d, h, w)``.
    """
    if len(crop_size) == 3:
        depth = tf.shape(image)[-3]
        start = (depth - crop_size[0]) // 2
        image = image[..., start : start + crop_size[0], :, :]
        crop_size = crop_size[1:]
    return center_crop(image, crop_size)


class NonCartesianModel(ReconstructionModel):
    """Base class of the non-Cartesian networks and baselines: input parsing, output magnitude and crop.

    Subclasses implement ``call(inputs)`` with `parse_inputs` (which gives the measured samples and
    the batch's `ops.encoding.NonCartesianEncoding`) and `output_image`.

    Args:
        image_shape: the image grid ``(H, W)`` or ``(D, H, W)``; its length sets 2D or 3D.
        nufft_eps: NUFFT accuracy.
        crop_size: output size ``(h, w)`` (in-plane; a 3D output keeps its depth) or ``(d, h, w)``,
            or None for the full image.
        b0_segments: time segments of the off-resonance-aware encoding (inputs with a field map),
            or None for `ops.off_resonance.DEFAULT_SEGMENTS`; in the configuration only when set.
    """

    acquisition = "noncartesian"
    trajectory_gradient = False
    """Whether the batch's NUFFT plan also gives gradients with respect to the trajectory (set on an
    instance trained behind a learned trajectory, `models.learned_trajectory`; not part of the configuration)."""

    def __init__(self, image_shape=DEFAULT_IMAGE_SHAPE, nufft_eps=DEFAULT_NUFFT_EPS, crop_size=None, b0_segments=None,
                 **kwargs):
        # no autocasting of the inputs under mixed precision: a float16 trajectory would lose the
        # phase accuracy of the NUFFT (1e-3 rad at pi); the sub-layers still cast their own inputs
        kwargs.setdefault("autocast", False)
        super().__init__(crop_size=crop_size, **kwargs)
        self.image_shape = tuple(int(n) for n in image_shape)
        if len(self.image_shape) not in (2, 3) or min(self.image_shape) < 1:
            raise DataError(f"{type(self).__name__}: image_shape must be (H, W) or (D, H, W), got {image_shape!r}")
        self.nufft_eps = float(nufft_eps)
        if b0_segments is not None and (
            isinstance(b0_segments, bool) or not isinstance(b0_segments, (int, np.integer)) or b0_segments < 1
        ):
            raise ConfigError(f"{type(self).__name__}: b0_segments must be a positive integer, got {b0_segments!r}")
        self.b0_segments = None if b0_segments is None else int(b0_segments)

    @property
    def ndim(self):
        """Number of spatial axes, 2 or 3."""
        return len(self.image_shape)

    def parse_inputs(self, inputs):
        """Split and check the inputs and build the batch's encoding operator.

        Args:
            inputs: ``(kspace, trajectory, density[, smaps])``, or with a field map and read-out
                times ``(kspace, trajectory, density[, smaps], field_map, readout_times)`` (see the
                module docstring).

        Returns:
            ``(kspace, encoding)``: the samples (complex64; without their global phase with
            ``phase_normalization``, see `models.base`) and the `NonCartesianEncoding` of the
            batch (an `OffResonanceEncoding` with a field map), with the maps of multi-coil data
            (None when a network that does not need them gets none: then ``kspace`` is multi-coil
            and ``encoding.multicoil`` False).

        Raises:
            DataError: for inputs of another structure, rank or dtype, single-coil samples to a
                multi-coil network, or multi-coil samples without maps when the network needs them.
        """
        name = type(self).__name__
        if not isinstance(inputs, (tuple, list)) or len(inputs) not in (3, 4, 5, 6):
            raise DataError(f"{name}: non-Cartesian models take {INPUTS} or {B0_INPUTS}, got {_describe(inputs)}")
        kspace, trajectory, density = inputs[:3]
        smaps = inputs[3] if len(inputs) in (4, 6) else None
        field_map, readout_times = inputs[-2:] if len(inputs) > 4 else (None, None)
        if kspace.dtype != tf.complex64 or kspace.shape.rank not in (2, 3):
            raise DataError(
                f"{name}: non-Cartesian k-space must be complex64 (batch, n_samples) or (batch, coils, n_samples), "
                f"got {kspace.dtype.name} of shape {tuple(kspace.shape)}; inputs are {INPUTS}"
            )
        if trajectory.shape.rank != 3 or trajectory.shape[1] != self.ndim:
            raise DataError(
                f"{name}: trajectory must be float32 (batch, {self.ndim}, n_samples) for images {self.image_shape}, "
                f"got shape {tuple(trajectory.shape)}"
            )
        if density.shape.rank != 2:
            raise DataError(f"{name}: density must be float32 (batch, n_samples), got shape {tuple(density.shape)}")
        multicoil = kspace.shape.rank == 3
        if not multicoil and self.multicoil_only:
            raise DataError(f"{name}: multi-coil only: k-space must be (batch, coils, n_samples)")
        if not multicoil:
            smaps = None
        elif smaps is None and self.needs_smaps:
            raise DataError(f"{name}: multi-coil k-space needs coil sensitivity maps: call it with {INPUTS}")
        trajectory = tf.cast(trajectory, tf.float32)
        if smaps is not None:
            smaps = self.prepare_smaps(smaps)
        if field_map is None:
            plan = NUFFTPlan(trajectory, self.image_shape, eps=self.nufft_eps, grad_traj=True) if self.trajectory_gradient else None
            encoding = NonCartesianEncoding(trajectory, self.image_shape, density, smaps, self.nufft_eps, plan=plan)
        else:
            segments = DEFAULT_SEGMENTS if self.b0_segments is None else self.b0_segments
            encoding = OffResonanceEncoding(
                trajectory, field_map, readout_times, self.image_shape, density, smaps, segments, self.nufft_eps
            )
        if self.phase_normalization:
            kspace = remove_global_phase(kspace, encoding.adjoint(kspace))
        return kspace, encoding

    def prepare_smaps(self, smaps):
        """The maps the encoding uses: the given ones here; subclasses may refine them.

        Args:
            smaps: complex64 ``(batch, coils, *image_shape)``.

        Returns:
            complex64 of the same shape.
        """
        return smaps

    def output_image(self, image):
        """Magnitude of a complex image (or a magnitude image), as float32, center-cropped.

        Args:
            image: complex64 or float ``(batch, *image_shape)``.

        Returns:
            float32 ``(batch, h, w)`` or ``(batch, [d,] h, w)`` in 3D.
        """
        image = tf.abs(image) if image.dtype.is_complex else tf.cast(image, tf.float32)
        return image if self.crop_size is None else crop_volume(image, self.crop_size)

    def get_config(self):
        config = {**super().get_config(), "image_shape": self.image_shape, "nufft_eps": self.nufft_eps}
        return config if self.b0_segments is None else {**config, "b0_segments": self.b0_segments}


def _describe(inputs):
    if isinstance(inputs, (tuple, list)):
        return f"{len(inputs)} inputs"
    return f"a single {type(inputs).__name__}"


def dummy_inputs(image_shape, multicoil=False, batch=1, coils=2):
    """Zero inputs of the non-Cartesian models (to build them or count their weights).

    A few radial spokes (2D) or kooshball spokes (3D) through the centre, unit density, zero
    samples and uniform maps.

    Args:
        image_shape: ``(H, W)`` or ``(D, H, W)``.
        multicoil: multi-coil inputs (with maps) or single-coil ones.
        batch: batch size.
        coils: number of coils of multi-coil inputs.

    Returns:
        ``(kspace, trajectory, density[, smaps])`` as NumPy arrays.
    """
    ndim = len(image_shape)
    radius = np.linspace(-np.pi, np.pi, 8, endpoint=False)
    directions = np.eye(ndim)
    trajectory = (directions[:, :, None] * radius).transpose(1, 0, 2).reshape(ndim, -1).astype(np.float32)
    n_samples = trajectory.shape[1]
    leading = (batch, coils) if multicoil else (batch,)
    inputs = (
        np.zeros(leading + (n_samples,), np.complex64),
        np.broadcast_to(trajectory, (batch, ndim, n_samples)).copy(),
        np.ones((batch, n_samples), np.float32),
    )
    if multicoil:
        inputs += (np.full((batch, coils) + tuple(image_shape), coils**-0.5, np.complex64),)
    return inputs

"""The MRI forward operator ``A`` and its adjoint ``A^H``, Cartesian and non-Cartesian.

Cartesian: ``A = M F S`` and ``A^H = S^H F^H M`` (`forward_op`, `adjoint_op`, `CartesianEncoding`,
`ForwardOperator`, `AdjointOperator`). ``F`` is the centered orthonormal 2D FFT (`fourier.fft2c`), ``M`` the column
sampling mask (`masking.apply_mask`) and ``S`` the coil sensitivities: the identity for single-coil
data, the pointwise product with each coil's map for multi-coil data (``S^H`` multiplies by the
conjugate maps and sums over coils). With ``mask=None`` the operators are the fully-sampled ``F S``
and ``S^H F^H``, which data-consistency layers and k-space networks use. Shapes (docs/architecture.md): images
``(batch, H, W)`` complex64; single-coil k-space ``(batch, H, W)``, multi-coil k-space and
sensitivity maps ``(batch, coils, H, W)`` complex64; masks float ``(batch, W)`` or ``(W,)`` along
the last (phase-encoding) axis.

Non-Cartesian: ``A = F_nu S`` and its adjoint ``A^H = S^H F_nu^H``, optionally density-compensated
``A^H D = S^H F_nu^H D`` (`nc_forward_op`, `nc_adjoint_op`, `NonCartesianEncoding`,
`NonCartesianForwardOperator`, `NonCartesianAdjointOperator`). ``F_nu`` is the type-2 NUFFT of
`ops.nufft` (2D or 3D) and ``D = diag(density)`` the density-compensation weights of
`data.density` (scaled so that ``A^H D A x ~ x`` for a trajectory that covers k-space). Shapes:
images ``(batch, *N)`` complex64 with ``N`` ``(H, W)`` or ``(D, H, W)``; single-coil samples
``(batch, M)``, multi-coil samples ``(batch, coils, M)`` complex64; sensitivity maps
``(batch, coils, *N)`` complex64; trajectories float32 ``(batch, ndim, M)`` in radians (or
``(ndim, M)`` shared by the batch); densities float32 ``(batch, M)`` (or ``(M,)``). One NUFFT plan
serves the forward and adjoint operators of a batch (`NonCartesianEncoding`), so an unrolled
network builds the interpolation matrix once per call.

One protocol: `CartesianEncoding` and `NonCartesianEncoding` (and `ops.off_resonance.OffResonanceEncoding`,
`ScaledEncoding`) are built once per batch from its sampling and maps and offer ``forward(image)``,
``adjoint(kspace)``, ``normal(image)`` and ``multicoil``; the models receive the measured data and
one of them.

The functions work eagerly, inside ``tf.function`` and are differentiable (with respect to the
image / k-space); the Keras layers wrap them for functional models (the Cartesian mask argument is
``sampling_mask``: Keras reserves ``mask`` for its padding masks).
"""

import keras
import tensorflow as tf

from fastmri_recon.errors import DataError
from fastmri_recon.ops.fourier import fft2c, ifft2c
from fastmri_recon.ops.masking import apply_mask
from fastmri_recon.ops.nufft import DEFAULT_EPS, NUFFTPlan


def forward_op(image, mask=None, smaps=None):
    """Apply ``A = M F S``.

    Args:
        image: complex64 ``(batch, H, W)``.
        mask: float ``(batch, W)`` or ``(W,)``, or None for no undersampling (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)`` for multi-coil data, or None (single-coil).

    Returns:
        k-space, complex64 ``(batch, H, W)`` (single-coil) or ``(batch, coils, H, W)`` (multi-coil).
    """
    if smaps is not None:
        image = image[:, None] * smaps
    kspace = fft2c(image)
    return kspace if mask is None else apply_mask(kspace, mask)


def adjoint_op(kspace, mask=None, smaps=None):
    """Apply ``A^H = S^H F^H M``, the exact adjoint of `forward_op` with the same arguments.

    Args:
        kspace: complex64 ``(batch, H, W)`` (single-coil) or ``(batch, coils, H, W)`` (multi-coil).
        mask: float ``(batch, W)`` or ``(W,)``, or None for no undersampling (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)`` for multi-coil k-space, or None (single-coil).

    Returns:
        image, complex64 ``(batch, H, W)``.
    """
    if mask is not None:
        kspace = apply_mask(kspace, mask)
    image = ifft2c(kspace)
    if smaps is not None:
        image = tf.reduce_sum(tf.math.conj(smaps) * image, axis=1)
    return image


class CartesianEncoding:
    """The Cartesian operator of one batch, ``A = M F S``, with the methods of `NonCartesianEncoding`.

    The models receive an encoding object whatever the acquisition (`models.base.ReconstructionModel.parse_inputs`
    builds this one, `models.nc_base` the non-Cartesian one), so that an unrolled network
    (`models.unrolled`) is written once for both. The NumPy twin for the classical baselines is
    `baselines.operators.CartesianOperator` (one slice, same methods).

    Args:
        mask: float ``(batch, W)`` or ``(W,)`` along the last axis, or None for no undersampling (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)`` (multi-coil), or None (single-coil).

    Attributes:
        mask, smaps: as given; ``multicoil``: bool.
    """

    def __init__(self, mask=None, smaps=None):
        self.mask = mask
        self.smaps = smaps
        self.multicoil = smaps is not None

    @property
    def unmasked(self):
        """The fully-sampled operator ``F S`` with the same maps (data-consistency layers, k-space networks)."""
        return CartesianEncoding(None, self.smaps)

    def forward(self, image):
        """Apply ``A = M F S``: complex64 ``(batch, H, W)`` -> k-space ``(batch, [coils,] H, W)``."""
        return forward_op(image, self.mask, self.smaps)

    def adjoint(self, kspace):
        """Apply ``A^H = S^H F^H M``: k-space complex64 ``(batch, [coils,] H, W)`` -> ``(batch, H, W)``."""
        return adjoint_op(kspace, self.mask, self.smaps)

    def normal(self, image):
        """Apply ``A^H A``: complex64 ``(batch, H, W)`` -> ``(batch, H, W)``."""
        return self.adjoint(self.forward(image))


class ScaledEncoding:
    """An encoding whose forward and adjoint operators are both multiplied by a constant ``s``.

    ``s A`` and ``s A^H`` (``s^2 A^H A`` as normal operator): how NC-PDNet's published weights
    see the NUFFT of the code that trained them (`models.ncpdnet`).

    Args:
        encoding: a `CartesianEncoding` or `NonCartesianEncoding`.
        scale: float ``s``.

    Attributes:
        encoding, scale (complex64 scalar tensor), multicoil.
    """

    def __init__(self, encoding, scale):
        self.encoding = encoding
        self.scale = tf.constant(scale, tf.complex64)
        self.multicoil = encoding.multicoil

    def forward(self, image):
        """``s A x``: the shapes of the wrapped encoding's `forward`."""
        return self.scale * self.encoding.forward(image)

    def adjoint(self, kspace):
        """``s A^H y`` (density-compensated where the wrapped encoding's adjoint is)."""
        return self.scale * self.encoding.adjoint(kspace)

    def normal(self, image):
        """``s^2 A^H A x``."""
        return self.adjoint(self.forward(image))


class _EncodingLayer(keras.layers.Layer):
    """A weightless layer applying an encoding function; keeps complex64 whatever the policy."""

    function = None

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # no autocasting of the float mask under mixed precision
        super().__init__(**kwargs)
        self.built = True

    def call(self, x, sampling_mask=None, smaps=None):
        return self.function(x, sampling_mask, smaps)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class ForwardOperator(_EncodingLayer):
    """Keras layer applying ``A = M F S`` (`forward_op`).

    Call args:
        x: image, complex64 ``(batch, H, W)``.
        sampling_mask: float ``(batch, W)`` or ``(W,)``, or None (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)``, or None (single-coil).

    Returns:
        k-space, complex64 ``(batch, H, W)`` or ``(batch, coils, H, W)``.
    """

    function = staticmethod(forward_op)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class AdjointOperator(_EncodingLayer):
    """Keras layer applying ``A^H = S^H F^H M`` (`adjoint_op`).

    Call args:
        x: k-space, complex64 ``(batch, H, W)`` or ``(batch, coils, H, W)``.
        sampling_mask: float ``(batch, W)`` or ``(W,)``, or None (``M = I``).
        smaps: complex64 ``(batch, coils, H, W)``, or None (single-coil).

    Returns:
        image, complex64 ``(batch, H, W)``.
    """

    function = staticmethod(adjoint_op)


# --------------------------------------------------------------------------------------------------
# Non-Cartesian
# --------------------------------------------------------------------------------------------------


def _static_image_shape(image_shape, smaps, trajectory):
    """The spatial shape ``N``: ``image_shape`` if given, else the maps' trailing axes."""
    ndim = trajectory.shape[-2]
    if image_shape is None:
        if smaps is None:
            raise DataError("non-Cartesian adjoint: give image_shape (single-coil samples carry no image size)")
        image_shape = tuple(smaps.shape[2:])
    image_shape = tuple(image_shape)
    if len(image_shape) != ndim or any(n is None for n in image_shape):
        raise DataError(f"image shape {image_shape} does not fit a {ndim}D trajectory of shape {tuple(trajectory.shape)}")
    if smaps is not None and tuple(smaps.shape[2:]) != tuple(int(n) for n in image_shape):
        raise DataError(
            f"sensitivity maps of shape {tuple(smaps.shape)} do not match the image shape {image_shape}: "
            "expected (batch, coils, *image_shape)"
        )
    return tuple(int(n) for n in image_shape)


class NonCartesianEncoding:
    """The non-Cartesian operator of one batch: ``A = F_nu S`` and ``A^H D``, sharing one NUFFT plan.

    Build it once per batch (eagerly or inside ``tf.function``) and apply `forward` / `adjoint`
    as often as needed: the NUFFT's interpolation matrix is computed once, here.

    Args:
        trajectory: float32 ``(batch, ndim, M)`` or ``(ndim, M)`` (shared), radians in ``[-pi, pi)``.
        image_shape: spatial shape ``N`` (``ndim`` ints), or None to take it from ``smaps``.
        density: float32 density-compensation weights ``(batch, M)`` (``(M,)`` with a shared
            trajectory), or None for no compensation (``D = I``).
        smaps: complex64 sensitivity maps ``(batch, coils, *N)`` (multi-coil), or None (single-coil).
        eps: requested relative accuracy of the NUFFT (`ops.nufft.NUFFTPlan`).
        plan: an existing `NUFFTPlan` of this trajectory and image shape to reuse (``eps`` is then
            ignored), or None.

    Attributes:
        plan: the `ops.nufft.NUFFTPlan`; ``image_shape``: tuple of ints; ``multicoil``: bool.

    Raises:
        DataError: for a trajectory, image shape or maps that do not fit together.
    """

    def __init__(self, trajectory, image_shape=None, density=None, smaps=None, eps=DEFAULT_EPS, plan=None):
        trajectory = tf.convert_to_tensor(trajectory)
        if trajectory.shape.rank not in (2, 3) or trajectory.shape[-2] not in (2, 3):
            raise DataError(
                f"trajectory must have shape (batch, ndim, M) or (ndim, M) with ndim 2 or 3, got {tuple(trajectory.shape)}"
            )
        self.image_shape = _static_image_shape(image_shape, smaps, trajectory)
        if plan is not None and tuple(plan.image_shape) != self.image_shape:
            raise DataError(f"NUFFT plan for images {plan.image_shape}, not {self.image_shape}")
        self.plan = NUFFTPlan(trajectory, self.image_shape, eps=eps) if plan is None else plan
        self.smaps = smaps
        self.multicoil = smaps is not None
        self.density = None if density is None else tf.cast(tf.convert_to_tensor(density, tf.float32), tf.complex64)

    def forward(self, image):
        """Apply ``A = F_nu S``.

        Args:
            image: complex64 ``(batch, *N)``.

        Returns:
            complex64 samples ``(batch, M)`` (single-coil) or ``(batch, coils, M)`` (multi-coil).
        """
        if self.multicoil:
            image = tf.convert_to_tensor(image)[:, None] * self.smaps
        return self._nufft(image)

    def compensate(self, kspace):
        """Apply ``D``: multiply the samples by the density weights (identity without weights).

        Args:
            kspace: complex64 ``(batch, [coils,] M)``.

        Returns:
            complex64 of the same shape.
        """
        kspace = tf.convert_to_tensor(kspace)
        if self.density is None:
            return kspace
        density = self.density
        if 2 <= density.shape.rank < kspace.shape.rank:  # (batch, M) weights of (batch, coils, M) samples
            density = density[:, None]
        return kspace * density

    def adjoint(self, kspace, compensate=True):
        """Apply ``A^H D = S^H F_nu^H D`` (``A^H`` with ``compensate=False`` or no density).

        Args:
            kspace: complex64 ``(batch, M)`` (single-coil) or ``(batch, coils, M)`` (multi-coil).
            compensate: whether to apply the density compensation ``D`` first.

        Returns:
            complex64 image ``(batch, *N)``.
        """
        image = self.coil_adjoint(kspace, compensate)
        if self.multicoil:
            image = tf.reduce_sum(tf.math.conj(self.smaps) * image, axis=1)
        return image

    def normal(self, image, compensate=True):
        """Apply ``A^H D A`` (``A^H A`` with ``compensate=False`` or no density).

        Args:
            image: complex64 ``(batch, *N)``.
            compensate: whether to compensate the density between the two operators.

        Returns:
            complex64 ``(batch, *N)``.
        """
        return self.adjoint(self.forward(image), compensate)

    def coil_adjoint(self, kspace, compensate=True):
        """Apply ``F_nu^H D`` to each coil (no coil combination): the coil images.

        Args:
            kspace: complex64 ``(batch, [coils,] M)``.
            compensate: whether to apply the density compensation first.

        Returns:
            complex64 ``(batch, [coils,] *N)``.
        """
        return self._nufft_adjoint(self.compensate(kspace) if compensate else kspace)

    def _nufft(self, images):
        """The per-coil transform ``F_nu``: complex64 ``(batch, [coils,] *N)`` -> ``(batch, [coils,] M)``."""
        return self.plan.forward(images)

    def _nufft_adjoint(self, kspace):
        """Its adjoint ``F_nu^H``: complex64 ``(batch, [coils,] M)`` -> ``(batch, [coils,] *N)``."""
        return self.plan.adjoint(kspace)


def nc_forward_op(image, trajectory, smaps=None, eps=DEFAULT_EPS):
    """Apply the non-Cartesian ``A = F_nu S`` (building the NUFFT plan on the fly).

    Args:
        image: complex64 ``(batch, *N)``, ``N`` static, 2D or 3D.
        trajectory: float32 ``(batch, ndim, M)`` or ``(ndim, M)``, radians.
        smaps: complex64 ``(batch, coils, *N)`` or None (single-coil).
        eps: NUFFT accuracy.

    Returns:
        complex64 ``(batch, M)`` or ``(batch, coils, M)``.
    """
    image = tf.convert_to_tensor(image)
    ndim = tf.convert_to_tensor(trajectory).shape[-2]
    if image.shape.rank != (ndim or 0) + 1:
        raise DataError(f"image must have shape (batch, *N) with {ndim} spatial axes, got {tuple(image.shape)}")
    return NonCartesianEncoding(trajectory, image.shape[1:], smaps=smaps, eps=eps).forward(image)


def nc_adjoint_op(kspace, trajectory, image_shape=None, density=None, smaps=None, eps=DEFAULT_EPS):
    """Apply the non-Cartesian ``A^H D = S^H F_nu^H D`` (building the NUFFT plan on the fly).

    With ``density=None`` it is the exact adjoint ``A^H`` of `nc_forward_op`.

    Args:
        kspace: complex64 ``(batch, M)`` (single-coil) or ``(batch, coils, M)`` (multi-coil).
        trajectory: float32 ``(batch, ndim, M)`` or ``(ndim, M)``, radians.
        image_shape: spatial shape ``N`` of the output; optional with ``smaps`` (their shape).
        density: float32 ``(batch, M)`` or ``(M,)``, or None (``D = I``).
        smaps: complex64 ``(batch, coils, *N)`` or None (single-coil).
        eps: NUFFT accuracy.

    Returns:
        complex64 image ``(batch, *N)``.
    """
    return NonCartesianEncoding(trajectory, image_shape, density, smaps, eps).adjoint(kspace)


class _NonCartesianLayer(keras.layers.Layer):
    """A weightless layer of the non-Cartesian operator; keeps complex64 whatever the policy."""

    def __init__(self, eps=DEFAULT_EPS, **kwargs):
        kwargs.setdefault("dtype", "float32")  # no autocasting of the trajectory / density
        super().__init__(**kwargs)
        self.eps = eps
        self.built = True

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NonCartesianForwardOperator(_NonCartesianLayer):
    """Keras layer applying the non-Cartesian ``A = F_nu S`` (`nc_forward_op`).

    Args:
        eps: NUFFT accuracy.

    Call args:
        x: image, complex64 ``(batch, *N)``.
        trajectory: float32 ``(batch, ndim, M)``.
        smaps: complex64 ``(batch, coils, *N)``, or None (single-coil).

    Returns:
        samples, complex64 ``(batch, M)`` or ``(batch, coils, M)``.
    """

    def call(self, x, trajectory, smaps=None):
        return nc_forward_op(x, trajectory, smaps, self.eps)


@keras.saving.register_keras_serializable(package="fastmri_recon")
class NonCartesianAdjointOperator(_NonCartesianLayer):
    """Keras layer applying the non-Cartesian ``A^H D`` (`nc_adjoint_op`).

    Args:
        image_shape: spatial shape ``N`` of the output (needed for single-coil samples), or None
            to take it from the maps.
        eps: NUFFT accuracy.

    Call args:
        x: samples, complex64 ``(batch, M)`` or ``(batch, coils, M)``.
        trajectory: float32 ``(batch, ndim, M)``.
        density: float32 ``(batch, M)``, or None (no compensation).
        smaps: complex64 ``(batch, coils, *N)``, or None (single-coil).

    Returns:
        image, complex64 ``(batch, *N)``.
    """

    def __init__(self, image_shape=None, eps=DEFAULT_EPS, **kwargs):
        super().__init__(eps=eps, **kwargs)
        self.image_shape = None if image_shape is None else tuple(int(n) for n in image_shape)

    def call(self, x, trajectory, density=None, smaps=None):
        return nc_adjoint_op(x, trajectory, self.image_shape, density, smaps, self.eps)

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape}

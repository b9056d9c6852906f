"""Cartesian undersampling masks with the semantics of fastMRI's ``subsample.py``.

A mask is a float32 vector of shape ``(N,)`` with values 0.0 / 1.0 over the N columns of k-space,
the phase-encoding axis, which is the last axis (docs/architecture.md). Every mask type keeps
``n_low = round(N * center_fraction)`` center lines starting at column
``pad = (N - n_low + 1) // 2`` and adds lines away from the center:

- ``random``: each column with probability ``p = (N / acc - n_low) / (N - n_low)``, so that
  ``N / acc`` lines are kept on average (fastMRI's ``RandomMaskFunc``).
- ``equispaced``: every ``acc``-th column from an offset drawn in ``[0, acc)``; the center lines
  come on top, so the achieved acceleration is below ``acc`` (``EquiSpacedMaskFunc``).
- ``equispaced_fraction``: equispaced lines at an adjusted, fractional spacing so that the total
  fraction of lines is about ``1 / acc``, as in the public fastMRI brain and multi-coil data
  (``EquispacedMaskFractionFunc``; the rounded positions are not exactly equispaced).
- ``magic``: Defazio's offset sampling (arXiv:1912.01101): equispaced lines whose offsets differ on
  the two sides of k-space, so that the mirror image ``-k`` of a sampled line ``k`` is not sampled
  and conjugate symmetry fills it in (``MagicMaskFunc``).
- ``magic_fraction``: offset sampling whose spacing ``round(N / (round(N / acc) - n_low))`` aims at
  ``round(N / acc)`` lines, with ``n_low`` clipped to ``[1, round(N / acc)]`` (``MagicMaskFractionFunc``);
  the offset lines that fall in the center are not counted twice, so fewer lines are kept: 85-86 of
  92 at N = 368 and x4, 43-45 of 46 at x8, 74-76 of 80 at N = 320 and x4.

Randomness. The NumPy functions draw from a ``numpy.random.Generator``. :class:`MaskSampler` draws
one ``(center_fraction, acceleration)`` pair per example, then the mask; seeding it with the file
name gives every slice of a volume the same mask. :meth:`MaskSampler.tf_sample` does the same inside
``tf.data`` / ``tf.function`` from a stateless shape-``[2]`` integer seed: the ``random`` and
``equispaced`` mask types run in pure TensorFlow, the others through ``tf.numpy_function``. The NumPy and
the TensorFlow draws for the same seed differ, but each is deterministic.

Registry. Each mask type is a `MaskType` in `MASK_TYPES`, added by one `register_mask_type` call after
the TensorFlow mask functions: its NumPy function, its pure-TensorFlow function if any, whether it needs
integer accelerations and whether the center must stay below the line budget. `MaskSampler`, the
CLI's choices (`mask_type_names`) and the weights manifest's ``mask_type`` read the registry.
"""

import dataclasses
import hashlib
import math
import numbers
from collections.abc import Callable

import numpy as np
import tensorflow as tf

DEFAULT_CENTER_FRACTIONS = {4: 0.08, 8: 0.04}
"""fastMRI's center fraction for each standard acceleration."""


def default_center_fraction(acceleration):
    """The center fraction fastMRI uses with a standard acceleration.

    Args:
        acceleration: 4 or 8.

    Returns:
        float: 0.08 for 4, 0.04 for 8.

    Raises:
        ValueError: for any other acceleration.
    """
    if acceleration not in DEFAULT_CENTER_FRACTIONS:
        raise ValueError(
            f"acceleration: no default center fraction for {acceleration!r}; "
            f"known accelerations are {sorted(DEFAULT_CENTER_FRACTIONS)}"
        )
    return DEFAULT_CENTER_FRACTIONS[acceleration]


def _check_num_cols(num_cols):
    if isinstance(num_cols, bool) or not isinstance(num_cols, numbers.Integral) or num_cols < 1:
        raise ValueError(f"num_cols must be a positive integer, got {num_cols!r}")


def _check_fraction_and_acceleration(center_fraction, acceleration):
    if not isinstance(center_fraction, numbers.Real) or not 0 < center_fraction < 1:
        raise ValueError(f"center_fraction must be a number in (0, 1), got {center_fraction!r}")
    if not isinstance(acceleration, numbers.Real) or not 1 <= acceleration < math.inf:
        raise ValueError(f"acceleration must be a finite number >= 1, got {acceleration!r}")


def _integer_acceleration(acceleration, mask_type):
    if float(acceleration) != int(acceleration):
        raise ValueError(
            f"acceleration must be an integer for {mask_type!r} masks, got {acceleration!r}"
        )
    return int(acceleration)


def _num_low_frequencies(num_cols, center_fraction):
    return round(num_cols * center_fraction)


def _check_center_within_budget(num_cols, num_low, acceleration, mask_type):
    if num_low * acceleration >= num_cols:
        raise ValueError(
            f"center_fraction too large for acceleration={acceleration} in a {mask_type!r} mask: its "
            f"{num_low} center lines reach num_cols / acceleration = {num_cols / acceleration:.2f}"
        )


def center_mask(num_cols, num_low_frequencies):
    """The fully sampled center band.

    Args:
        num_cols: N, the number of columns.
        num_low_frequencies: n_low, the number of center lines.

    Returns:
        float32 array of shape ``(N,)``, 1.0 on columns ``[pad, pad + n_low)`` with
        ``pad = (N - n_low + 1) // 2``, 0.0 elsewhere.
    """
    mask = np.zeros(num_cols, dtype=np.float32)
    pad = (num_cols - num_low_frequencies + 1) // 2
    mask[pad : pad + num_low_frequencies] = 1.0
    return mask


def _with_center(accel_lines, num_cols, num_low):
    return np.maximum(center_mask(num_cols, num_low), np.asarray(accel_lines, dtype=np.float32))


def random_mask(num_cols, center_fraction, acceleration, rng):
    """Random columns with ``N / acceleration`` lines on average (fastMRI's ``RandomMaskFunc``).

    Args:
        num_cols: N, the number of columns (last axis of k-space).
        center_fraction: fraction of center lines kept, in (0, 1).
        acceleration: target acceleration, >= 1.
        rng: ``numpy.random.Generator``.

    Returns:
        float32 array of shape ``(N,)`` with values 0.0 / 1.0.

    Raises:
        ValueError: on a bad argument, or when the center lines alone reach ``N / acceleration``.
    """
    _check_num_cols(num_cols)
    _check_fraction_and_acceleration(center_fraction, acceleration)
    num_low = _num_low_frequencies(num_cols, center_fraction)
    _check_center_within_budget(num_cols, num_low, acceleration, "random")
    prob = (num_cols / acceleration - num_low) / (num_cols - num_low)
    return _with_center(rng.uniform(size=num_cols) < prob, num_cols, num_low)


def equispaced_mask(num_cols, center_fraction, acceleration, rng):
    """Every ``acceleration``-th column from a random offset, plus the center.

    fastMRI's ``EquiSpacedMaskFunc``.

    Args:
        num_cols: N, the number of columns (last axis of k-space).
        center_fraction: fraction of center lines kept, in (0, 1).
        acceleration: integer spacing of the lines, >= 1; the achieved acceleration is lower.
        rng: ``numpy.random.Generator``; the offset is drawn uniformly in ``[0, acceleration)``.

    Returns:
        float32 array of shape ``(N,)`` with values 0.0 / 1.0.

    Raises:
        ValueError: on a bad argument (including a non-integer acceleration).
    """
    _check_num_cols(num_cols)
    _check_fraction_and_acceleration(center_fraction, acceleration)
    step = _integer_acceleration(acceleration, "equispaced")
    lines = np.zeros(num_cols, dtype=np.float32)
    lines[rng.integers(0, step) :: step] = 1.0
    return _with_center(lines, num_cols, _num_low_frequencies(num_cols, center_fraction))


def equispaced_fraction_mask(num_cols, center_fraction, acceleration, rng):
    """Equispaced lines whose total fraction is about ``1 / acceleration``.

    fastMRI's ``EquispacedMaskFractionFunc``. The spacing is ``acc * (N - n_low) / (N - n_low * acc)``, fractional in general; the line
    positions ``offset + j * spacing`` (below ``N - 1``) are rounded to the nearest column, with the
    offset drawn uniformly in ``[0, round(spacing))``. This reproduces the public fastMRI data.

    Args:
        num_cols: N, the number of columns (last axis of k-space).
        center_fraction: fraction of center lines kept, in (0, 1).
        acceleration: target acceleration, >= 1.
        rng: ``numpy.random.Generator``.

    Returns:
        float32 array of shape ``(N,)`` with values 0.0 / 1.0.

    Raises:
        ValueError: on a bad argument, or when the center lines alone reach ``N / acceleration``.
    """
    _check_num_cols(num_cols)
    _check_fraction_and_acceleration(center_fraction, acceleration)
    num_low = _num_low_frequencies(num_cols, center_fraction)
    _check_center_within_budget(num_cols, num_low, acceleration, "equispaced_fraction")
    spacing = acceleration * (num_cols - num_low) / (num_cols - num_low * acceleration)
    offset = rng.integers(0, round(spacing))
    lines = np.zeros(num_cols, dtype=np.float32)
    lines[np.around(np.arange(offset, num_cols - 1, spacing)).astype(np.int64)] = 1.0
    return _with_center(lines, num_cols, num_low)


def _offset_lines(num_cols, step, rng):
    """Defazio's offset sampling of the non-center lines, before the center is added."""
    offset = rng.integers(0, step)
    if offset % 2 == 0:
        start_pos, start_neg = offset + 1, offset + 2
    else:
        start_pos, start_neg = offset + 2, offset - 1
    positive = np.zeros((num_cols + 1) // 2, dtype=np.float32)  # frequencies 0, 1, ...
    negative = np.zeros(num_cols // 2, dtype=np.float32)  # frequencies -1, -2, ...
    positive[start_pos::step] = 1.0
    negative[start_neg::step] = 1.0
    return np.fft.fftshift(np.concatenate([positive, negative[::-1]]))


def magic_mask(num_cols, center_fraction, acceleration, rng):
    """Defazio's offset sampling (fastMRI's ``MagicMaskFunc``), plus the center.

    On each side of the center, lines are ``acceleration`` apart, with offsets chosen so that the
    mirror ``-k`` of a sampled frequency ``k`` is not sampled (for even N), which conjugate k-space
    symmetry exploits. The achieved acceleration is below ``acceleration``.

    Args:
        num_cols: N, the number of columns (last axis of k-space).
        center_fraction: fraction of center lines kept, in (0, 1).
        acceleration: integer spacing of the lines on each side, >= 1.
        rng: ``numpy.random.Generator``; the offset is drawn uniformly in ``[0, acceleration)``.

    Returns:
        float32 array of shape ``(N,)`` with values 0.0 / 1.0.

    Raises:
        ValueError: on a bad argument (including a non-integer acceleration).
    """
    _check_num_cols(num_cols)
    _check_fraction_and_acceleration(center_fraction, acceleration)
    step = _integer_acceleration(acceleration, "magic")
    lines = _offset_lines(num_cols, step, rng)
    return _with_center(lines, num_cols, _num_low_frequencies(num_cols, center_fraction))


def magic_fraction_mask(num_cols, center_fraction, acceleration, rng):
    """Offset sampling aiming at ``round(N / acceleration)`` lines (``MagicMaskFractionFunc``).

    With ``target = round(N / acceleration)``, the center keeps ``n_low`` clipped to
    ``[1, target]`` lines and the offset sampling uses the spacing ``round(N / (target - n_low))``;
    when the center already holds ``target`` lines, the mask is the center alone. Offset lines
    inside the center overlap it, so the mask keeps fewer than ``target`` lines (about 93 % of
    them at N = 368 and acceleration 4, see the module docstring).

    Args:
        num_cols: N, the number of columns (last axis of k-space).
        center_fraction: fraction of center lines kept, in (0, 1).
        acceleration: target acceleration, >= 1.
        rng: ``numpy.random.Generator``.

    Returns:
        float32 array of shape ``(N,)`` with values 0.0 / 1.0.

    Raises:
        ValueError: on a bad argument.
    """
    _check_num_cols(num_cols)
    _check_fraction_and_acceleration(center_fraction, acceleration)
    target = round(num_cols / acceleration)
    num_low = max(min(_num_low_frequencies(num_cols, center_fraction), target), 1)
    if target == num_low:
        return center_mask(num_cols, num_low)
    lines = _offset_lines(num_cols, round(num_cols / (target - num_low)), rng)
    return _with_center(lines, num_cols, num_low)


def stable_seed(seed):
    """A non-negative integer seed, stable across processes and machines.

    Args:
        seed: a non-negative int, or a string such as a file name (hashed with SHA-256, never with
            Python's salted ``hash``), so that every slice of a volume gets the same mask.

    Returns:
        int in ``[0, 2**64)``.

    Raises:
        ValueError: for a negative int or a value that is neither an int nor a string.
    """
    if isinstance(seed, str):
        return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "little")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a string, got {seed!r}")
    return int(seed)


def _as_number_list(values, name):
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1 or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {values!r}")
    return list(values)


class MaskSampler:
    """Draws one ``(center_fraction, acceleration)`` pair per example, then a mask of one type.

    Args:
        mask_type: a name of `MASK_TYPES`: ``"random"``, ``"equispaced"``, ``"equispaced_fraction"``,
            ``"magic"``, ``"magic_fraction"``.
        center_fractions: list of center fractions, each in (0, 1).
        accelerations: list of accelerations (>= 1) of the same length; pair ``i`` is
            ``(center_fractions[i], accelerations[i])``, drawn uniformly.
        seed: optional int or string seeding the sampler's own generator, used by calls without
            a seed.

    Raises:
        ValueError: naming the bad argument: unknown mask type, lists empty or of different lengths,
            a center fraction outside (0, 1), an acceleration below 1, a non-integer acceleration
            for a mask type with ``integer_acceleration`` (equispaced, magic), or, for a mask type with
            ``center_in_budget`` (random, equispaced_fraction), a pair whose center alone reaches
            the line budget (``center_fraction * acceleration >= 1``).

    Example:
        >>> sampler = MaskSampler("random", [0.08, 0.04], [4, 8])
        >>> mask, acceleration = sampler(368, seed="file1000001.h5")
    """

    def __init__(self, mask_type, center_fractions, accelerations, seed=None):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {sorted(MASK_TYPES)}, got {mask_type!r}")
        center_fractions = _as_number_list(center_fractions, "center_fractions")
        accelerations = _as_number_list(accelerations, "accelerations")
        if len(center_fractions) != len(accelerations):
            raise ValueError(
                "center_fractions and accelerations must have the same length, got "
                f"{len(center_fractions)} and {len(accelerations)}"
            )
        for center_fraction, acceleration in zip(center_fractions, accelerations):
            self._check_pair(mask_type, center_fraction, acceleration)
        self.mask_type = mask_type
        self.center_fractions = center_fractions
        self.accelerations = accelerations
        self._rng = np.random.default_rng(None if seed is None else stable_seed(seed))

    @staticmethod
    def _check_pair(mask_type, center_fraction, acceleration):
        _check_fraction_and_acceleration(center_fraction, acceleration)
        if MASK_TYPES[mask_type].integer_acceleration:
            _integer_acceleration(acceleration, mask_type)
        if MASK_TYPES[mask_type].center_in_budget and center_fraction * acceleration >= 1:
            raise ValueError(
                f"center_fractions: {center_fraction} with acceleration {acceleration} keeps "
                f"at least 1/{acceleration} of the lines in the center alone ({mask_type!r} masks)"
            )

    def __repr__(self):
        return (
            f"MaskSampler({self.mask_type!r}, center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations})"
        )

    def _draw(self, num_cols, rng):
        index = rng.integers(len(self.accelerations))
        acceleration = self.accelerations[index]
        mask = MASK_TYPES[self.mask_type].function(num_cols, self.center_fractions[index], acceleration, rng)
        return mask, acceleration

    def __call__(self, num_cols, seed=None):
        """Draw a mask.

        Args:
            num_cols: N, the number of columns (last axis of k-space).
            seed: None (use the sampler's own generator), a non-negative int, or a string such as
                the file name, which gives the same mask for every slice of a volume.

        Returns:
            ``(mask, acceleration)``: float32 array of shape ``(N,)`` with values 0.0 / 1.0, and
            the acceleration drawn, as given in ``accelerations``.
        """
        rng = self._rng if seed is None else np.random.default_rng(stable_seed(seed))
        return self._draw(num_cols, rng)

    def tf_sample(self, num_cols, seed):
        """Draw a mask in TensorFlow, deterministically from a stateless seed.

        Usable eagerly, inside ``tf.function`` and in ``tf.data.Dataset.map``. Kinds with a
        ``tf_function`` (``random``, ``equispaced``) are pure TensorFlow; the others run their NumPy
        function through ``tf.numpy_function``. The masks differ from the NumPy ones drawn for the
        same seed.

        Args:
            num_cols: N, a Python int or an int32 scalar tensor (e.g. ``tf.shape(kspace)[-1]``).
            seed: int tensor of shape ``[2]``, e.g. ``tf.stack([base_seed, example_index])`` or
                :func:`tf_seed_from_string` of the file name.

        Returns:
            ``(mask, acceleration)``: float32 tensor of shape ``(N,)`` with values 0.0 / 1.0, and
            the float32 scalar acceleration drawn.
        """
        choice_seed, mask_seed = tf.unstack(tf.random.split(tf.cast(seed, tf.int64), 2))
        index = tf.random.stateless_uniform(
            [], choice_seed, minval=0, maxval=len(self.accelerations), dtype=tf.int32
        )
        center_fraction = tf.gather(tf.constant(self.center_fractions, tf.float64), index)
        acceleration = tf.gather(tf.constant(self.accelerations, tf.float64), index)
        tf_mask = MASK_TYPES[self.mask_type].tf_function or self._tf_numpy_mask
        mask = tf_mask(num_cols, center_fraction, acceleration, mask_seed)
        return mask, tf.cast(acceleration, tf.float32)

    def _tf_numpy_mask(self, num_cols, center_fraction, acceleration, seed):
        def draw(n, fraction, accel, seed_array):
            rng = np.random.default_rng(seed_array.astype(np.uint64))
            return MASK_TYPES[self.mask_type].function(int(n), float(fraction), float(accel), rng)

        mask = tf.numpy_function(
            draw, [num_cols, center_fraction, acceleration, seed], tf.float32, stateful=False
        )
        mask.set_shape([num_cols if isinstance(num_cols, int) else None])
        return mask


def tf_seed_from_string(name):
    """A stateless seed from a string tensor, such as a file name (FarmHash fingerprint, stable).

    Args:
        name: scalar string tensor.

    Returns:
        int64 tensor of shape ``[2]``, for :meth:`MaskSampler.tf_sample` and the ``tf_*_mask``
        functions.
    """
    fingerprint = tf.strings.to_hash_bucket_fast(name, 2**63 - 1)
    return tf.stack([tf.zeros_like(fingerprint), fingerprint])


def tf_center_lines(num_cols, num_low):
    """Boolean ``(N,)`` center band; ``num_low`` is an int32 scalar tensor."""
    pad = (num_cols - num_low + 1) // 2
    cols = tf.range(num_cols)
    return (cols >= pad) & (cols < pad + num_low)


def tf_num_low(num_cols, center_fraction):
    """int32 scalar tensor: the center band's width ``round(N * center_fraction)`` (float64 and
    round-half-to-even, as Python's round in the NumPy path)."""
    product = tf.cast(num_cols, tf.float64) * tf.cast(center_fraction, tf.float64)
    return tf.cast(tf.round(product), tf.int32)


def tf_random_mask(num_cols, center_fraction, acceleration, seed):
    """TensorFlow twin of :func:`random_mask` (stateless; arguments are not validated here).

    Args:
        num_cols: N, a Python int or an int32 scalar tensor.
        center_fraction: float scalar (tensor), in (0, 1).
        acceleration: float scalar (tensor), >= 1.
        seed: int tensor of shape ``[2]``.

    Returns:
        float32 tensor of shape ``(N,)`` with values 0.0 / 1.0.
    """
    acceleration = tf.cast(acceleration, tf.float64)
    num_low = tf_num_low(num_cols, center_fraction)
    n, n_low = tf.cast(num_cols, tf.float64), tf.cast(num_low, tf.float64)
    prob = (n / acceleration - n_low) / (n - n_low)
    lines = tf.random.stateless_uniform([num_cols], seed, dtype=tf.float64) < prob
    return tf.cast(lines | tf_center_lines(num_cols, num_low), tf.float32)


def tf_equispaced_mask(num_cols, center_fraction, acceleration, seed):
    """TensorFlow twin of :func:`equispaced_mask` (stateless; arguments are not validated here).

    Args:
        num_cols: N, a Python int or an int32 scalar tensor.
        center_fraction: float scalar (tensor), in (0, 1).
        acceleration: integer-valued scalar (tensor), >= 1.
        seed: int tensor of shape ``[2]``.

    Returns:
        float32 tensor of shape ``(N,)`` with values 0.0 / 1.0.
    """
    step = tf.cast(tf.round(tf.cast(acceleration, tf.float64)), tf.int32)
    offset = tf.random.stateless_uniform([], seed, minval=0, maxval=step, dtype=tf.int32)
    cols = tf.range(num_cols)
    lines = (cols >= offset) & ((cols - offset) % step == 0)
    num_low = tf_num_low(num_cols, center_fraction)
    return tf.cast(lines | tf_center_lines(num_cols, num_low), tf.float32)


@dataclasses.dataclass(frozen=True)
class MaskType:
    """One Cartesian mask type of the registry `MASK_TYPES` (see `register_mask_type`).

    Attributes:
        name: the mask type's name, as ``MaskSampler(mask_type=...)``, ``--mask-type`` and the manifest's
            ``mask_type`` spell it.
        function: the NumPy mask function ``(num_cols, center_fraction, acceleration, rng)`` ->
            float32 ``(N,)`` of 0.0 / 1.0, ``rng`` a ``numpy.random.Generator``.
        description: one line for tables and help texts.
        tf_function: None, or a pure-TensorFlow function ``(num_cols, center_fraction,
            acceleration, seed)`` -> float32 ``(N,)`` tensor, ``seed`` an int tensor of shape ``[2]``,
            used by `MaskSampler.tf_sample` (None: ``function`` through ``tf.numpy_function``).
        integer_acceleration: whether the accelerations must be integers (a line spacing).
        center_in_budget: whether the center lines must stay below the line budget,
            ``center_fraction * acceleration < 1``.
    """

    name: str
    function: Callable
    description: str
    tf_function: Callable = None
    integer_acceleration: bool = False
    center_in_budget: bool = False


MASK_TYPES = {}
"""The registered mask types, name -> `MaskType`, in registration order."""


def register_mask_type(name, function, description, tf_function=None, integer_acceleration=False,
                       center_in_budget=False):
    """Add a mask type to `MASK_TYPES`; `MaskSampler`, `mask_type_names` and the manifest then know it.

    Args:
        name: the new mask type's name (not yet registered).
        function, description, tf_function, integer_acceleration, center_in_budget: the
            `MaskType` fields.

    Returns:
        The registered `MaskType`.

    Raises:
        ValueError: for a name already registered or an empty one, or a ``function`` (or a
            ``tf_function`` other than None) that is not callable.
    """
    if not isinstance(name, str) or not name or name in MASK_TYPES:
        raise ValueError(f"name must be a new mask type name, got {name!r} (registered: {', '.join(MASK_TYPES)})")
    if not callable(function) or not (tf_function is None or callable(tf_function)):
        raise ValueError(f"mask type {name!r}: function and tf_function must be callable (tf_function may be None)")
    MASK_TYPES[name] = MaskType(name, function, description, tf_function, integer_acceleration, center_in_budget)
    return MASK_TYPES[name]


def mask_type_names():
    """The names of the registered mask types, in registration order (the CLI's ``--mask-type`` choices).

    Returns:
        tuple of str.
    """
    return tuple(MASK_TYPES)


register_mask_type("random", random_mask, "random columns, N / acceleration on average (RandomMaskFunc)",
                   tf_function=tf_random_mask, center_in_budget=True)
register_mask_type("equispaced", equispaced_mask, "every acceleration-th column, random offset (EquiSpacedMaskFunc)",
                   tf_function=tf_equispaced_mask, integer_acceleration=True)
register_mask_type("equispaced_fraction", equispaced_fraction_mask,
                   "equispaced lines at a fractional spacing, 1 / acceleration of them (EquispacedMaskFractionFunc)",
                   center_in_budget=True)
register_mask_type("magic", magic_mask, "Defazio's offset sampling, k and -k never both (MagicMaskFunc)",
                   integer_acceleration=True)
register_mask_type("magic_fraction", magic_fraction_mask,
                   "offset sampling aiming at round(N / acceleration) lines (MagicMaskFractionFunc)")


def apply_padding(mask, padding_left, padding_right):
    """Zero the mask columns outside ``[padding_left, padding_right)`` (fastMRI's header padding).

    ``padding_left = encoded_y // 2 - kspace_encoding_step_1.center`` and
    ``padding_right = padding_left + kspace_encoding_step_1.maximum + 1`` come from the ISMRMRD
    header: columns outside them were not acquired.

    Args:
        mask: float array of shape ``(..., N)``.
        padding_left: first acquired column, ``0 <= padding_left <= padding_right``.
        padding_right: one past the last acquired column, ``<= N``.

    Returns:
        float32 array of shape ``(..., N)``, a copy.

    Raises:
        ValueError: when the padding is not ``0 <= padding_left <= padding_right <= N``.
    """
    mask = np.array(mask, dtype=np.float32)
    num_cols = mask.shape[-1]
    if not 0 <= padding_left <= padding_right <= num_cols:
        raise ValueError(
            f"padding_left={padding_left}, padding_right={padding_right}: expected "
            f"0 <= padding_left <= padding_right <= num_cols={num_cols}"
        )
    mask[..., :padding_left] = 0.0
    mask[..., padding_right:] = 0.0
    return mask


def acs_bounds(mask):
    """The auto-calibration (ACS) band of a mask: the contiguous sampled run around column ``N // 2``.

    Args:
        mask: NumPy ``(N,)`` mask (values 0 / 1).

    Returns:
        ``(start, stop)`` column range; empty (``start == stop == N // 2``) when the centre column
        is not sampled.
    """
    sampled = np.asarray(mask) > 0.5
    centre = sampled.shape[-1] // 2
    if not sampled[centre]:
        return centre, centre
    start, stop = centre, centre + 1
    while start > 0 and sampled[start - 1]:
        start -= 1
    while stop < sampled.shape[-1] and sampled[stop]:
        stop += 1
    return start, stop


def seeded_volume_mask(sampler, file_name, num_cols, padding):
    """The fixed mask of one volume, as validation and evaluation use it (fastMRI's protocol).

    Drawn with ``sampler`` seeded by the file name, so every slice of the volume, every epoch and
    every method sees the same mask; columns outside the acquired range are zeroed.

    Args:
        sampler: a `MaskSampler`.
        file_name: the volume's file name (the seed).
        num_cols: N, the number of columns.
        padding: ``(padding_left, padding_right)`` from the header.

    Returns:
        float32 ``(N,)``.
    """
    mask, _ = sampler(num_cols, seed=file_name)
    return apply_padding(mask, *padding)


def apply_mask(kspace, mask):
    """Undersample k-space: ``kspace * mask + 0.0``, so that no negative zero is left.

    Args:
        kspace: complex array of shape ``(..., H, N)``.
        mask: float array of shape ``(N,)`` or broadcastable to ``kspace`` along the last axis.

    Returns:
        complex64 array of the shape of ``kspace``.

    Raises:
        ValueError: when the mask's last axis is not N.
    """
    kspace = np.asarray(kspace, dtype=np.complex64)
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape[-1:] != kspace.shape[-1:]:
        raise ValueError(
            f"mask: last axis {mask.shape[-1:]} does not match the k-space columns "
            f"{kspace.shape[-1:]}"
        )
    return kspace * mask + np.float32(0.0)

"""Tests of the Cartesian undersampling masks (fastMRI ``subsample.py`` semantics)."""

import numpy as np
import pytest
import tensorflow as tf

from fastmri_recon.data.masks import (
    MASK_TYPES,
    MaskSampler,
    apply_mask,
    apply_padding,
    center_mask,
    default_center_fraction,
    equispaced_fraction_mask,
    equispaced_mask,
    magic_fraction_mask,
    magic_mask,
    mask_type_names,
    random_mask,
    register_mask_type,
    stable_seed,
    tf_seed_from_string,
)
from fastmri_recon.hub.manifest import manifest_schema

# (N, center_fraction, n_low = round(N * cf), pad = (N - n_low + 1) // 2), worked out by hand
CENTER_CASES = [
    (368, 0.08, 29, 170),  # round(29.44)
    (368, 0.04, 15, 177),  # round(14.72)
    (320, 0.08, 26, 147),  # round(25.6)
    (320, 0.04, 13, 154),  # round(12.8)
    (372, 0.04, 15, 179),  # round(14.88)
    (25, 0.1, 2, 12),  # round(2.5) = 2, half to even as Python's round
]
ACCELERATION = {0.08: 4, 0.1: 4, 0.04: 8}
STANDARD_CASES = [(368, 0.08, 4), (320, 0.04, 8)]  # (N, center_fraction, acceleration)


class FixedOffset:
    """A stand-in generator whose ``integers`` returns a chosen offset."""

    def __init__(self, offset):
        self.offset = offset

    def integers(self, low, high):
        assert low <= self.offset < high
        return self.offset


def center_run(mask, pad, num_low):
    return mask[pad : pad + num_low]


@pytest.mark.parametrize("num_cols, center_fraction, num_low, pad", CENTER_CASES)
def test_center_mask_count_and_position(num_cols, center_fraction, num_low, pad):
    mask = center_mask(num_cols, round(num_cols * center_fraction))
    assert mask.dtype == np.float32 and mask.shape == (num_cols,)
    assert mask.sum() == num_low
    assert np.all(center_run(mask, pad, num_low) == 1.0)
    assert pad <= num_cols // 2 < pad + num_low  # the DC column (N // 2) is sampled


@pytest.mark.parametrize("kind", ["random", "equispaced", "equispaced_fraction", "magic"])
@pytest.mark.parametrize("num_cols, center_fraction, num_low, pad", CENTER_CASES)
def test_every_kind_keeps_the_center(kind, num_cols, center_fraction, num_low, pad):
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = MASK_TYPES[kind].function(num_cols, center_fraction, ACCELERATION[center_fraction], rng)
        assert mask.dtype == np.float32 and mask.shape == (num_cols,)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert np.all(center_run(mask, pad, num_low) == 1.0)


@pytest.mark.parametrize("num_cols, center_fraction, acceleration", STANDARD_CASES)
def test_random_mask_reaches_the_acceleration_on_average(num_cols, center_fraction, acceleration):
    rng = np.random.default_rng(1)
    counts = [random_mask(num_cols, center_fraction, acceleration, rng).sum() for _ in range(1000)]
    assert np.mean(counts) == pytest.approx(num_cols / acceleration, rel=0.01)
    assert np.std(counts) > 0  # the masks do vary


def test_equispaced_lines_are_every_acceleration_th_column():
    num_cols, acceleration, num_low, pad = 368, 4, 29, 170
    rng = np.random.default_rng(2)
    outside = np.ones(num_cols, bool)
    outside[pad : pad + num_low] = False
    for _ in range(20):
        mask = equispaced_mask(num_cols, 0.08, acceleration, rng)
        offset = int(np.argmax(mask))
        assert offset < acceleration
        expected = (np.arange(num_cols) - offset) % acceleration == 0
        np.testing.assert_array_equal(mask[outside] == 1.0, expected[outside])
        assert mask.sum() == np.sum(expected | ~outside)


@pytest.mark.parametrize(
    "num_cols, center_fraction, acceleration", [(368, 0.08, 4), (320, 0.04, 8), (640, 0.08, 4)]
)
def test_equispaced_fraction_keeps_one_over_acceleration(num_cols, center_fraction, acceleration):
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = equispaced_fraction_mask(num_cols, center_fraction, acceleration, rng)
        assert abs(mask.sum() - num_cols / acceleration) <= 3


def test_magic_mask_by_hand():
    # N = 16, acc = 4, offset 0: positive side starts at 1, negative side at 2 (Defazio / fastMRI);
    # frequencies +1, +5 (columns 9, 13), -3, -7 (columns 5, 1), plus the center column 8.
    mask = magic_mask(16, 1 / 16, 4, FixedOffset(0))
    np.testing.assert_array_equal(np.flatnonzero(mask), [1, 5, 8, 9, 13])
    # odd offset 1: positive side starts at 3 (frequencies 3, 7, columns 11, 15), negative side at
    # index 0 (frequencies -1, -5, columns 7, 3)
    mask = magic_mask(16, 1 / 16, 4, FixedOffset(1))
    np.testing.assert_array_equal(np.flatnonzero(mask), [3, 7, 8, 11, 15])


@pytest.mark.parametrize("num_cols, acceleration", [(368, 4), (320, 8), (16, 4), (372, 6)])
def test_magic_mask_never_samples_both_k_and_minus_k(num_cols, acceleration):
    center_fraction = 0.04
    num_low = round(num_cols * center_fraction)
    pad = (num_cols - num_low + 1) // 2
    for offset in range(acceleration):
        mask = magic_mask(num_cols, center_fraction, acceleration, FixedOffset(offset))
        lines = mask.copy()
        lines[pad : pad + num_low] = 0.0
        mirrored = np.zeros_like(lines)
        mirrored[1:] = lines[1:][::-1]  # column c holds frequency c - N // 2; -k is column N - c
        assert np.all(lines * mirrored == 0.0)
        assert np.all(center_run(mask, pad, num_low) == 1.0)


@pytest.mark.parametrize("num_cols, center_fraction, acceleration", STANDARD_CASES)
def test_magic_fraction_keeps_about_one_over_acceleration(num_cols, center_fraction, acceleration):
    rng = np.random.default_rng(4)
    for _ in range(10):
        mask = magic_fraction_mask(num_cols, center_fraction, acceleration, rng)
        assert abs(mask.sum() - num_cols / acceleration) <= 0.1 * num_cols / acceleration


def test_magic_fraction_center_alone_when_it_fills_the_budget():
    # target = round(32 / 8) = 4 lines; the center would hold round(32 * 0.2) = 6, clipped to 4
    mask = magic_fraction_mask(32, 0.2, 8, np.random.default_rng(0))
    np.testing.assert_array_equal(mask, center_mask(32, 4))


def test_default_center_fractions():
    assert default_center_fraction(4) == 0.08
    assert default_center_fraction(8) == 0.04
    with pytest.raises(ValueError, match="acceleration"):
        default_center_fraction(6)


def test_sampler_is_reproducible_for_a_seed_and_a_file_name():
    sampler = MaskSampler("random", [0.08, 0.04], [4, 8])
    for seed in (7, "file1000001.h5"):
        mask_a, acc_a = sampler(368, seed=seed)
        mask_b, acc_b = sampler(368, seed=seed)
        np.testing.assert_array_equal(mask_a, mask_b)
        assert acc_a == acc_b
    # a fresh sampler gives the same mask for the same file name: every slice of a volume agrees
    other, _ = MaskSampler("random", [0.08, 0.04], [4, 8])(368, seed="file1000001.h5")
    np.testing.assert_array_equal(other, sampler(368, seed="file1000001.h5")[0])


def test_different_file_names_give_different_masks():
    sampler = MaskSampler("random", [0.08], [4])
    mask_a, _ = sampler(368, seed="file1000001.h5")
    mask_b, _ = sampler(368, seed="file1000002.h5")
    assert not np.array_equal(mask_a, mask_b)


def test_stable_seed_is_a_fixed_hash():
    assert stable_seed("file1000001.h5") == stable_seed("file1000001.h5")
    assert stable_seed("a") != stable_seed("b")
    assert stable_seed(12) == 12


def test_sampler_without_seed_uses_its_own_seeded_generator():
    first = MaskSampler("random", [0.08], [4], seed=3)
    second = MaskSampler("random", [0.08], [4], seed=3)
    draws_first = [first(368)[0] for _ in range(3)]
    draws_second = [second(368)[0] for _ in range(3)]
    for a, b in zip(draws_first, draws_second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(draws_first[0], draws_first[1])


@pytest.mark.parametrize("kind", sorted(MASK_TYPES))
def test_sampler_draws_pairs_from_the_lists(kind):
    num_cols = 320
    sampler = MaskSampler(kind, [0.08, 0.04], [4, 8], seed=0)
    drawn = set()
    for _ in range(40):
        mask, acceleration = sampler(num_cols)
        drawn.add(acceleration)
        num_low = round(num_cols * default_center_fraction(acceleration))
        if kind != "magic_fraction":  # magic_fraction clips n_low to round(N / acc)
            assert np.all(center_run(mask, (num_cols - num_low + 1) // 2, num_low) == 1.0)
    assert drawn == {4, 8}


def test_apply_padding_zeroes_outside_columns():
    mask = np.ones((2, 368), np.float32)
    padded = apply_padding(mask, 12, 358)
    assert padded.dtype == np.float32 and padded.shape == mask.shape
    assert np.all(padded[:, :12] == 0.0) and np.all(padded[:, 358:] == 0.0)
    assert np.all(padded[:, 12:358] == 1.0)
    assert np.all(mask == 1.0)  # input untouched
    np.testing.assert_array_equal(apply_padding(mask[0], 0, 368), mask[0])


@pytest.mark.parametrize("left, right", [(-1, 10), (20, 10), (0, 369)])
def test_apply_padding_rejects_bad_padding(left, right):
    with pytest.raises(ValueError, match="padding_left"):
        apply_padding(np.ones(368, np.float32), left, right)


def test_apply_mask_leaves_no_negative_zeros():
    rng = np.random.default_rng(5)
    shape = (2, 3, 8, 16)  # (slices, coils, H, W)
    kspace = (-1.0 - rng.random(shape)) + 1j * (-1.0 - rng.random(shape))  # all entries negative
    mask = np.zeros(16, np.float32)
    mask[::3] = 1.0
    masked = apply_mask(kspace, mask)
    assert masked.dtype == np.complex64 and masked.shape == shape
    dropped = masked[..., mask == 0.0]
    assert np.all(dropped == 0)
    assert not np.any(np.signbit(dropped.real)) and not np.any(np.signbit(dropped.imag))
    kept = mask == 1.0
    np.testing.assert_array_equal(masked[..., kept], kspace[..., kept].astype(np.complex64))
    with pytest.raises(ValueError, match="mask"):
        apply_mask(kspace, np.ones(15, np.float32))


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaskSampler("spiral", [0.08], [4]),
        lambda: MaskSampler("random", [0.08, 0.04], [4]),
        lambda: MaskSampler("random", [], []),
        lambda: MaskSampler("random", 0.08, [4]),
        lambda: MaskSampler("random", [0.0], [4]),
        lambda: MaskSampler("random", [1.5], [4]),
        lambda: MaskSampler("random", [0.08], [0.5]),
        lambda: MaskSampler("random", [0.08], [float("inf")]),
        lambda: MaskSampler("equispaced", [0.08], [4.5]),
        lambda: MaskSampler("magic", [0.08], [2.5]),
        lambda: MaskSampler("random", [0.5], [4]),
        lambda: MaskSampler("equispaced_fraction", [0.25], [4]),
    ],
)
def test_sampler_rejects_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="mask_type"):
        MaskSampler("spiral", [0.08], [4])
    with pytest.raises(ValueError, match="same length"):
        MaskSampler("random", [0.08, 0.04], [4])
    with pytest.raises(ValueError, match="center_fraction"):
        MaskSampler("random", [1.5], [4])
    with pytest.raises(ValueError, match="acceleration"):
        MaskSampler("equispaced", [0.08], [4.5])
    with pytest.raises(ValueError, match="num_cols"):
        random_mask(0, 0.08, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="center_fraction too large"):
        random_mask(10, 0.3, 4, np.random.default_rng(0))  # 3 center lines, N / acc = 2.5
    with pytest.raises(ValueError, match="seed"):
        MaskSampler("random", [0.08], [4])(368, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        MaskSampler("random", [0.08], [4])(368, seed=1.5)


def tf_masks(sampler, num_cols, count, base_seed=11):
    dataset = tf.data.Dataset.range(count).map(
        lambda i: sampler.tf_sample(num_cols, tf.stack([tf.constant(base_seed, tf.int64), i]))
    )
    pairs = list(dataset.batch(count).as_numpy_iterator())[0]
    return pairs[0], pairs[1]


@pytest.mark.slow
def test_tf_random_masks_in_dataset_map_are_deterministic():
    num_cols, num_low, pad = 368, 29, 170
    sampler = MaskSampler("random", [0.08], [4])
    masks_a, accelerations = tf_masks(sampler, num_cols, 256)
    masks_b, _ = tf_masks(sampler, num_cols, 256)
    assert masks_a.dtype == np.float32 and masks_a.shape == (256, num_cols)
    np.testing.assert_array_equal(masks_a, masks_b)
    assert not np.array_equal(masks_a[0], masks_a[1])
    assert np.all(masks_a[:, pad : pad + num_low] == 1.0)
    assert np.all(accelerations == 4.0)
    assert masks_a.sum(axis=1).mean() == pytest.approx(num_cols / 4, rel=0.02)


def test_tf_equispaced_masks_in_dataset_map():
    num_cols, num_low, pad = 320, 13, 154
    sampler = MaskSampler("equispaced", [0.04], [8])
    masks_tf, _ = tf_masks(sampler, num_cols, 16)
    outside = np.ones(num_cols, bool)
    outside[pad : pad + num_low] = False
    for mask in masks_tf:
        assert np.all(mask[pad : pad + num_low] == 1.0)
        offset = int(np.argmax(mask))
        expected = (np.arange(num_cols) - offset) % 8 == 0
        np.testing.assert_array_equal(mask[outside] == 1.0, expected[outside])
    np.testing.assert_array_equal(masks_tf, tf_masks(sampler, num_cols, 16)[0])


@pytest.mark.slow
def test_tf_sampler_draws_from_the_lists_and_numpy_kinds_work():
    num_cols = 320
    for kind in ("random", "equispaced_fraction", "magic"):
        sampler = MaskSampler(kind, [0.08, 0.04], [4, 8])
        masks_tf, accelerations = tf_masks(sampler, num_cols, 32)
        np.testing.assert_array_equal(masks_tf, tf_masks(sampler, num_cols, 32)[0])
        assert set(accelerations.tolist()) == {4.0, 8.0}
        for mask, acceleration in zip(masks_tf, accelerations):
            num_low = round(num_cols * default_center_fraction(int(acceleration)))
            pad = (num_cols - num_low + 1) // 2
            assert np.all(mask[pad : pad + num_low] == 1.0)


def test_tf_seed_from_file_name_inside_tf_function():
    sampler = MaskSampler("random", [0.08], [4])

    @tf.function
    def draw(name, num_cols):
        return sampler.tf_sample(num_cols, tf_seed_from_string(name))[0]

    num_cols = tf.constant(368)  # a dynamic number of columns, as tf.shape(kspace)[-1]
    mask_a = draw(tf.constant("file1000001.h5"), num_cols).numpy()
    np.testing.assert_array_equal(mask_a, draw(tf.constant("file1000001.h5"), num_cols).numpy())
    assert not np.array_equal(mask_a, draw(tf.constant("file1000002.h5"), num_cols).numpy())
    assert mask_a.shape == (368,) and np.all(mask_a[170:199] == 1.0)


# --- the registry ------------------------------------------------------------------------------------


def every_other_mask(num_cols, center_fraction, acceleration, rng):
    """A test-local mask type: every second column from an offset of 0 or 1, plus the center (``acceleration`` unused)."""
    lines = np.zeros(num_cols, np.float32)
    lines[rng.integers(0, 2) :: 2] = 1.0
    return np.maximum(center_mask(num_cols, round(num_cols * center_fraction)), lines)


def tf_first_half_mask(num_cols, center_fraction, acceleration, seed):
    """A test-local pure-TF mask type: the first half of the columns."""
    return tf.cast(tf.range(num_cols) < num_cols // 2, tf.float32)


@pytest.fixture()
def every_other():
    """The test-local mask type ``every_other``, registered by one line and removed afterwards."""
    kind = register_mask_type("every_other", every_other_mask, "every second column", integer_acceleration=True)
    yield kind
    del MASK_TYPES[kind.name]


@pytest.fixture()
def first_half():
    """The test-local mask type ``first_half``, with a pure-TF function and the line-budget check."""
    kind = register_mask_type("first_half", every_other_mask, "test kind", tf_function=tf_first_half_mask, center_in_budget=True)
    yield kind
    del MASK_TYPES[kind.name]


def test_the_package_kinds_are_registered_in_order():
    assert mask_type_names() == ("random", "equispaced", "equispaced_fraction", "magic", "magic_fraction")
    assert {name for name, kind in MASK_TYPES.items() if kind.tf_function is not None} == {"random", "equispaced"}
    assert {name for name, kind in MASK_TYPES.items() if kind.integer_acceleration} == {"equispaced", "magic"}
    assert {name for name, kind in MASK_TYPES.items() if kind.center_in_budget} == {"random", "equispaced_fraction"}
    assert all(kind.name == name and kind.description for name, kind in MASK_TYPES.items())


def test_a_kind_registered_by_one_line_is_sampled_in_numpy_and_tensorflow(every_other):
    assert mask_type_names()[-1] == "every_other"
    sampler = MaskSampler("every_other", [0.08, 0.04], [4, 8])
    mask, acceleration = sampler(320, seed="file1000001.h5")
    rng = np.random.default_rng(stable_seed("file1000001.h5"))
    index = rng.integers(2)
    assert acceleration == [4, 8][index]
    np.testing.assert_array_equal(mask, every_other_mask(320, [0.08, 0.04][index], acceleration, rng))
    masks_tf, accelerations = tf_masks(sampler, 320, 8)  # through tf.numpy_function: no tf_function
    np.testing.assert_array_equal(masks_tf, tf_masks(sampler, 320, 8)[0])
    assert set(accelerations.tolist()) <= {4.0, 8.0}
    assert all(mask[::2].all() or mask[1::2].all() for mask in masks_tf)
    with pytest.raises(ValueError, match="integer for 'every_other'"):  # its integer_acceleration flag
        MaskSampler("every_other", [0.08], [4.5])


def test_a_registered_tf_function_drives_tf_sample(first_half):
    assert mask_type_names()[-1] == "first_half"
    masks_tf, _ = tf_masks(MaskSampler("first_half", [0.08], [4]), 16, 2)
    np.testing.assert_array_equal(masks_tf, np.repeat([[1.0] * 8 + [0.0] * 8], 2, axis=0))
    with pytest.raises(ValueError, match="'first_half' masks"):  # its center_in_budget flag
        MaskSampler("first_half", [0.5], [4])


def test_registered_kinds_reach_the_manifest_schema(every_other):
    properties = manifest_schema()["$defs"]["entry"]["properties"]
    assert properties["acquisition"]["properties"]["mask_type"]["enum"] == list(mask_type_names())
    assert properties["metrics"]["items"]["properties"]["mask_type"]["enum"] == list(mask_type_names())
    assert "every_other" in properties["acquisition"]["properties"]["mask_type"]["enum"]


def test_registration_refuses_a_taken_name_or_a_bad_function():
    with pytest.raises(ValueError, match="name must be a new mask type name, got 'random'"):
        register_mask_type("random", random_mask, "again")
    with pytest.raises(ValueError, match="callable"):
        register_mask_type("broken", None, "no function")
    assert "broken" not in MASK_TYPES

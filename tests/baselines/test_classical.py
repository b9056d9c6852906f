import keras
import numpy as np
import pytest

from fastmri_recon.baselines.cs_wavelet import CSWavelet, WaveletPrior, fista
from fastmri_recon.baselines.grappa import Grappa, calibrate, source_offsets
from fastmri_recon.data.masks import acs_bounds
from fastmri_recon.baselines.operators import CartesianOperator
from fastmri_recon.baselines.sense import Sense, conjugate_gradient
from fastmri_recon.baselines.zero_filled import ZeroFilled
from fastmri_recon.data.demo import DemoConfig, birdcage_maps, load_template, simulate_subject
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.evaluate.metrics import evaluate_volume
from fastmri_recon.models.registry import build
from fastmri_recon.ops.fourier import np_fftc, np_ifftc

SIZE = 64


@pytest.fixture(scope="module")
def subject():
    config = DemoConfig(slices=2, image_size=SIZE, coils=8)
    return simulate_subject(load_template(), config, subject=0)


def batch(subject, coil, kind="random", acceleration=4, center_fraction=0.16):
    mask, _ = MaskSampler(kind, [center_fraction], [acceleration])(SIZE, seed="subject0.h5")
    masks = np.broadcast_to(mask, (2, SIZE))
    smaps = np.broadcast_to(birdcage_maps(8, (2 * SIZE, SIZE)), (2, 8, 2 * SIZE, SIZE))
    kspace = subject[coil]
    target = subject["rss" if coil == "multicoil" else "esc"]
    return kspace, masks, smaps, target


def psnr_of(model, inputs, target):
    return evaluate_volume(target, np.asarray(model(inputs)))["PSNR"]


@pytest.mark.parametrize("model", [CSWavelet(iterations=20, crop_size=(SIZE, SIZE)), Sense(crop_size=(SIZE, SIZE))])
def test_multicoil_with_sensitivities_beat_zero_filled(subject, model):
    kspace, masks, smaps, target = batch(subject, "multicoil")
    zero_filled = psnr_of(ZeroFilled((SIZE, SIZE)), (kspace, masks), target)
    assert psnr_of(model, (kspace, masks, smaps), target) > zero_filled + 0.5


def test_grappa_beats_zero_filled_with_equispaced_mask(subject):
    kspace, masks, _, target = batch(subject, "multicoil", kind="equispaced", acceleration=2)
    zero_filled = psnr_of(ZeroFilled((SIZE, SIZE)), (kspace, masks), target)
    assert psnr_of(Grappa(crop_size=(SIZE, SIZE)), (kspace, masks), target) > zero_filled + 1.0


def test_cs_single_coil_beats_zero_filled(subject):
    kspace, masks, _, target = batch(subject, "singlecoil")
    zero_filled = psnr_of(ZeroFilled((SIZE, SIZE)), (kspace, masks), target)
    assert psnr_of(CSWavelet(lam=0.02, crop_size=(SIZE, SIZE)), (kspace, masks), target) > zero_filled


def test_grappa_recovers_noiseless_kspace():
    yy, xx = np.mgrid[-1:1:64j, -1:1:32j]
    image = np.exp(-(xx**2 + yy**2) * 3) * np.exp(1j * xx) + 0.3 * (np.abs(xx) < 0.4) * (np.abs(yy) < 0.2)
    kspace = np_fftc(birdcage_maps(8, (64, 32)) * image[None])
    mask = np.zeros(32)
    mask[::2] = 1
    mask[12:20] = 1
    filled = Grappa(sources=4, tikhonov=1e-5, min_calibration=1).interpolate(kspace * mask, mask)
    assert np.linalg.norm(filled - kspace) / np.linalg.norm(kspace) < 0.05


def test_grappa_helpers():
    mask = np.array([1, 0, 0, 1, 1, 1, 1, 0, 1, 0], float)
    assert acs_bounds(mask) == (3, 7)
    assert acs_bounds(np.array([1, 0, 0, 0, 0, 0, 1, 0], float)) == (4, 4)
    assert source_offsets(2, np.flatnonzero(mask), max_span=4, sources=4) == (-2, 1)
    assert source_offsets(2, np.flatnonzero(mask), max_span=6, sources=4) == (-2, 1, 2, 3)
    assert source_offsets(2, np.flatnonzero(mask), max_span=6, sources=4, max_distance=2) == (-2, 1, 2)
    assert source_offsets(7, np.flatnonzero(mask), max_span=6, sources=4, max_distance=0) == ()


def direct_grappa_weights(acs, offsets, readout, tikhonov):
    """Reference: the least-squares weights from explicitly built (circular read-out) source rows."""
    r = readout // 2
    lo, hi = -min(min(offsets), 0), acs.shape[2] - max(max(offsets), 0)
    rows, targets = [], []
    for t in range(lo, hi):
        for h in range(acs.shape[1]):
            rows.append([acs[c, (h + s) % acs.shape[1], t + o] for o in offsets for s in range(-r, r + 1) for c in range(acs.shape[0])])
            targets.append(acs[:, h, t])
    sources, targets = np.array(rows), np.array(targets)
    gram = sources.conj().T @ sources
    gram += tikhonov * np.trace(gram).real / len(gram) * np.eye(len(gram))
    return np.linalg.solve(gram, sources.conj().T @ targets)


@pytest.mark.parametrize("offsets, readout", [((-2, 1), 3), ((-1,), 1), ((1, 3), 5), ((-3, -1, 2), 3)])
def test_grappa_calibration_matches_direct_least_squares(offsets, readout):
    rng = np.random.default_rng(5)
    acs = rng.standard_normal((3, 12, 9)) + 1j * rng.standard_normal((3, 12, 9))
    np.testing.assert_allclose(calibrate(acs, offsets, readout, 0.01), direct_grappa_weights(acs, offsets, readout, 0.01), rtol=1e-9, atol=1e-12)


def test_grappa_recovers_exactly_consistent_kspace():
    """k-space obeying k[:, :, ky + 1] = M k[:, :, ky] exactly (coil images: one line per coil-subspace
    direction) is predicted to round-off by any source pattern, random masks included."""
    rng = np.random.default_rng(6)
    coils, height, width = 6, 24, 48
    mixing = rng.standard_normal((coils, coils)) + 1j * rng.standard_normal((coils, coils))
    phases = np.exp(2j * np.pi * rng.choice(width, coils, replace=False) / width)
    profiles = rng.standard_normal((coils, height)) + 1j * rng.standard_normal((coils, height))
    kspace = np.einsum("cj,jh,jw->chw", mixing, profiles, phases[:, None] ** np.arange(width)[None])
    for kind in ("random", "equispaced"):
        mask, _ = MaskSampler(kind, [0.25], [2])(width, seed=kind)
        grappa = Grappa(tikhonov=1e-12, min_calibration=1)
        filled = grappa.interpolate(kspace * mask, mask)
        columns = np.concatenate(list(grappa.patterns(mask).values()))
        assert len(columns) > 0.5 * np.sum(mask == 0)
        error = np.linalg.norm(filled[:, :, columns] - kspace[:, :, columns]) / np.linalg.norm(kspace[:, :, columns])
        assert error < 1e-6, (kind, error)


def test_grappa_missing_lines_error_within_pygrappas():
    """On the demo's 8-coil simulation (64 x 64 image, noise), the error on the missing lines of our
    default GRAPPA is at most 1.1 times pygrappa's (its defaults: 5 x 5 kernel, lamda 0.01)."""
    pygrappa = pytest.importorskip("pygrappa")
    subject = simulate_subject(load_template(), DemoConfig(slices=1, image_size=SIZE, coils=8), subject=0)
    kspace = subject["multicoil"][0]
    for kind, acceleration in (("equispaced", 3), ("random", 4)):
        mask, _ = MaskSampler(kind, [0.16], [acceleration])(SIZE, seed="subject0.h5")
        undersampled = kspace * mask
        start, stop = acs_bounds(mask)
        reference = pygrappa.grappa(undersampled, undersampled[:, :, start:stop], coil_axis=0)
        missing = mask == 0

        def error(filled):
            return np.linalg.norm(filled[:, :, missing] - kspace[:, :, missing]) / np.linalg.norm(kspace[:, :, missing])

        assert error(Grappa().interpolate(undersampled, mask)) <= 1.1 * error(reference), kind


def test_grappa_loads_configs_without_the_new_keys():
    old = {"name": "grappa", "trainable": True, "dtype": "float32", "sources": 2, "kernel_readout": 5, "tikhonov": 0.01, "min_calibration": 5, "crop_size": None}
    model = Grappa.from_config(old)
    assert (model.sources, model.tikhonov, model.max_distance) == (2, 0.01, 2)
    with pytest.raises(ValueError, match="kernel_readout"):
        Grappa(kernel_readout=4)


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6)) + 1j * rng.standard_normal((6, 6))
    spd = a.conj().T @ a + np.eye(6)
    rhs = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    np.testing.assert_allclose(conjugate_gradient(lambda x: spd @ x, rhs, 50), np.linalg.solve(spd, rhs), atol=1e-8)


def test_wavelet_prox_zero_threshold_is_identity_and_shrinks():
    image = np_ifftc(np.random.default_rng(1).standard_normal((32, 16)) + 0j)
    prior = WaveletPrior("haar", 2)
    np.testing.assert_allclose(prior.prox(image, 0.0), image, atol=1e-10)
    assert np.linalg.norm(prior.prox(image, 0.1)) < np.linalg.norm(image)
    with pytest.raises(ValueError, match="orthogonal"):
        WaveletPrior("bior2.2")


def test_fista_decreases_objective():
    rng = np.random.default_rng(2)
    image = rng.standard_normal((32, 16)) + 1j * rng.standard_normal((32, 16))
    mask = (rng.random(16) < 0.5).astype(float)
    operator = CartesianOperator(mask)
    kspace = operator.forward(image)
    prior = WaveletPrior("haar", 2)

    def objective(x):
        return 0.5 * np.linalg.norm(operator.forward(x) - kspace) ** 2

    x0 = operator.adjoint(kspace)
    x = fista(operator, kspace, prior.prox, 0.0, 10)
    assert objective(x) <= objective(x0) + 1e-12


@pytest.mark.parametrize("shape", [(16, 8), (15, 9)])
def test_operator_normal_is_adjoint_of_forward(shape):
    rng = np.random.default_rng(7)
    smaps = rng.standard_normal((3, *shape)) + 1j * rng.standard_normal((3, *shape))
    smaps[:, :4] = 0  # background rows, skipped by the normal operator
    mask = (rng.random(shape[1]) > 0.5).astype(float)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    expected = np.sum(np.conj(smaps) * np_ifftc(np_fftc(smaps * x[None]) * mask), axis=0)
    np.testing.assert_allclose(CartesianOperator(mask, smaps).normal(x), expected, atol=1e-12)
    np.testing.assert_allclose(CartesianOperator(mask).normal(x), np_ifftc(np_fftc(x) * mask), atol=1e-12)


def wavelet_objective(operator, kspace, x, wavelet, levels, threshold):
    """``1/2 ||A x - y||^2 + threshold * sum |detail coefficients|`` computed with PyWavelets directly."""
    import pywt

    def details(part):
        return np.concatenate([np.ravel(d) for level in pywt.wavedec2(part, wavelet, mode="periodization", level=levels)[1:] for d in level])

    return 0.5 * np.linalg.norm(operator.forward(x) - kspace) ** 2 + threshold * np.abs(details(x.real) + 1j * details(x.imag)).sum()


@pytest.mark.slow
def test_fista_reaches_the_objective_of_a_slow_reference():
    """FISTA (the fast normal operator) and 1000 plain ISTA steps (the 2D-FFT forward and adjoint) agree."""
    rng = np.random.default_rng(8)
    smaps = birdcage_maps(4, (16, 16))
    mask = (rng.random(16) < 0.4).astype(float)
    mask[6:10] = 1
    operator = CartesianOperator(mask, smaps / np.maximum(np.sqrt(np.sum(np.abs(smaps) ** 2, axis=0)), 1.0))
    image = np_ifftc(rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16)))
    kspace = operator.forward(image) + 0.01 * mask * rng.standard_normal((4, 16, 16))
    prior = WaveletPrior("haar", 2)
    threshold = 0.02 * np.abs(operator.adjoint(kspace)).max()
    x = operator.adjoint(kspace)
    for _ in range(1000):
        x = prior.prox(x - operator.adjoint(operator.forward(x) - kspace), threshold)
    reference = wavelet_objective(operator, kspace, x, "haar", 2, threshold)
    fast = wavelet_objective(operator, kspace, fista(operator, kspace, prior.prox, threshold, 300), "haar", 2, threshold)
    start = wavelet_objective(operator, kspace, operator.adjoint(kspace), "haar", 2, threshold)
    assert start > 1.3 * reference
    assert fast == pytest.approx(reference, rel=1e-8)


def test_operator_adjoint():
    rng = np.random.default_rng(3)
    smaps = birdcage_maps(4, (16, 8))
    operator = CartesianOperator((rng.random(8) > 0.5).astype(float), smaps)
    x = rng.standard_normal((16, 8)) + 1j * rng.standard_normal((16, 8))
    y = rng.standard_normal((4, 16, 8)) + 1j * rng.standard_normal((4, 16, 8))
    np.testing.assert_allclose(np.vdot(operator.forward(x), y), np.vdot(x, operator.adjoint(y)), rtol=1e-5)


@pytest.mark.parametrize("model", [CSWavelet(lam=0.05, iterations=3, crop_size=(8, 8)), Sense(mu=0.01, iterations=4), Grappa(sources=2)])
def test_save_load_round_trip(tmp_path, model):
    rng = np.random.default_rng(4)
    kspace = (rng.standard_normal((1, 4, 16, 16)) + 1j * rng.standard_normal((1, 4, 16, 16))).astype(np.complex64)
    mask = np.zeros((1, 16), np.float32)
    mask[:, ::2] = 1
    mask[:, 6:10] = 1
    inputs = (kspace, mask, birdcage_maps(4, (16, 16))[None])
    expected = np.asarray(model(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(loaded(inputs)), expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["sense", "grappa"])
def test_nearly_collinear_coils_are_warned_once(subject, name, capfd, monkeypatch):
    from fastmri_recon.baselines import operators

    monkeypatch.setattr(operators, "_warned", set())
    kspace, masks, smaps, _ = batch(subject, "multicoil", kind="equispaced", acceleration=2)
    model = build(name)
    model((kspace, masks, smaps))
    assert "nearly collinear" not in capfd.readouterr().err  # the demo's 8 birdcage coils are fine
    similar = np.concatenate([kspace[:, :1], kspace[:, :1] * 1.001], axis=1)  # two coils seeing the same
    similar_maps = np.concatenate([smaps[:, :1], smaps[:, :1]], axis=1)
    model((similar, masks, similar_maps))
    model((similar, masks, similar_maps))
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {name}: coils 0 and 1 are nearly collinear")

import keras
import numpy as np
import pytest

from fastmri_recon.baselines.cs_wavelet import CSWavelet, WaveletPrior, fista
from fastmri_recon.baselines.grappa import Grappa, source_offsets
from fastmri_recon.data.masks import acs_bounds
from fastmri_recon.baselines.operators import CartesianOperator
from fastmri_recon.baselines.sense import Sense, conjugate_gradient
from fastmri_recon.baselines.zero_filled import ZeroFilled
from fastmri_recon.data.demo import DemoConfig, birdcage_maps, load_template, simulate_subject
from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.evaluate.evaluate import evaluate_directory
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


def test_choose_lambda_on_the_validation_split(demo_dir):
    from fastmri_recon.baselines.tuning import choose_parameter

    sampler = MaskSampler("random", [0.08], [4])
    best, scores = choose_parameter("cs-wavelet", "lam", [0.0, 0.02, 5.0], demo_dir / "singlecoil_val", sampler, iterations=5)
    assert set(scores) == {0.0, 0.02, 5.0} and scores[best] == max(scores.values())
    assert scores[5.0] < scores[best]  # thresholding everything is worse than the best weight
    one, one_scores = choose_parameter("cs-wavelet", "lam", [0.0, 0.02], demo_dir / "singlecoil_train", sampler, iterations=5, max_volumes=1)
    first = evaluate_directory(build("cs-wavelet", lam=one, iterations=5), "cs", demo_dir / "singlecoil_train", sampler, progress=False, max_volumes=1)
    assert len(first.summary) == 1 and first.summary.means()["PSNR"] == pytest.approx(one_scores[one])


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

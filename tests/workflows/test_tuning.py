"""`workflows.tuning`: a baseline's weight chosen by PSNR on a split of the demo data."""

import pytest

from fastmri_recon.data.masks import MaskSampler
from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.models.registry import build
from fastmri_recon.workflows.tuning import choose_parameter


def test_choose_lambda_on_the_validation_split(demo_dir):
    sampler = MaskSampler("random", [0.08], [4])
    best, scores = choose_parameter("cs-wavelet", "lam", [0.0, 0.02, 5.0], demo_dir / "singlecoil_val", sampler, iterations=5)
    assert set(scores) == {0.0, 0.02, 5.0} and scores[best] == max(scores.values())
    assert scores[5.0] < scores[best]  # thresholding everything is worse than the best weight
    one, one_scores = choose_parameter("cs-wavelet", "lam", [0.0, 0.02], demo_dir / "singlecoil_train", sampler, iterations=5, max_volumes=1)
    first = evaluate_directory(build("cs-wavelet", lam=one, iterations=5), "cs", demo_dir / "singlecoil_train", sampler, progress=False, max_volumes=1)
    assert len(first.summary) == 1 and first.summary.means()["PSNR"] == pytest.approx(one_scores[one])

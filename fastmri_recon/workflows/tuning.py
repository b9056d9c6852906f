"""Choosing a baseline's regularisation weight on a validation split (by PSNR, as the papers do)."""

from fastmri_recon.evaluate.evaluate import evaluate_directory
from fastmri_recon.models.registry import build


def choose_parameter(name, parameter, values, directory, sampler, metric="PSNR", progress=False, max_volumes=None, **config):
    """Evaluate a registered baseline for each value of one constructor argument; keep the best.

    Args:
        name: registry name, e.g. ``"cs-wavelet"``.
        parameter: the constructor argument to tune, e.g. ``"lam"``.
        values: candidate values.
        directory: validation directory (fastMRI files with targets).
        sampler: the `MaskSampler` of the undersampling.
        metric: ``PSNR`` or ``SSIM`` (higher is better) or ``NMSE`` (lower is better).
        progress: progress bars.
        max_volumes: tune on the first volumes of ``directory`` only (None: all).
        **config: other constructor arguments, fixed.

    Returns:
        ``(best value, {value: mean metric over volumes})``.
    """
    scores = {}
    for value in values:
        model = build(name, **{**config, parameter: value})
        result = evaluate_directory(
            model, f"{name} {parameter}={value}", directory, sampler, progress=progress, max_volumes=max_volumes
        )
        scores[value] = result.summary.means()[metric]
    pick = min if metric == "NMSE" else max
    return pick(scores, key=scores.get), scores

"""The model card (``README.md``) of a published folder: what the model is, how it was trained, how well it does."""

import json

from fastmri_recon import __version__
from fastmri_recon.models.registry import get_entry

FIGURE_FILE = "reconstruction.png"


def _number(value):
    """``1e6`` rather than ``1e+06`` (a Python literal users can paste)."""
    return f"{value:g}".replace("e+0", "e").replace("e+", "e")


def _metrics_table(entry, baselines):
    cartesian = entry["acquisition"]["trajectory"] == "cartesian"
    sampling = "mask" if cartesian else "trajectory"
    rows = [f"| model | data | {sampling} | PSNR | SSIM | NMSE |", "|---|---|---|---|---|---|"]
    for name, metrics in [(entry["name"], entry["metrics"]), *baselines.items()]:
        for m in metrics:
            kind = m.get("mask_type", "") if cartesian else entry["acquisition"]["trajectory"]
            mask = f"{kind} x{m['acceleration']:g}" + (f" (cf {m['center_fraction']:g})" if "center_fraction" in m else "")
            rows.append(f"| {name} | {m['data']} | {mask} | {m['PSNR']:.2f} | {m['SSIM']:.4f} | {m['NMSE']:.4f} |")
    return "\n".join(rows)


def _usage(cartesian, repo_id, file, scale):
    """The card's ``(python call, reconstruct section, evaluation sampling)`` texts for the model's acquisition."""
    if cartesian:
        usage = f"image = model((kspace * {scale}, mask)) / {scale}  # kspace complex64 (batch, [coils,] H, W)"
        command = (
            f"```bash\nfastmri-recon reconstruct --model hf://{repo_id}/{file} test_dir/ reconstructions/\n```\n\n"
            "`reconstruct` writes one fastMRI submission file (`reconstruction`, float32 (slices, h, w)) per input file.\n"
            f"The model expects k-space multiplied by {scale}, as the package's data pipelines\n"
            "do, and returns magnitude images in that scale."
        )
        return usage, command, "each volume undersampled with a mask seeded by its file name"
    usage = (
        f"image = model((kspace * {scale}, trajectory, density)) / {scale}\n"
        "# kspace complex64 (batch, [coils,] M) samples, trajectory float32 (batch, ndim, M) radians in [-pi, pi),\n"
        "# density float32 (batch, M) (Pipe-Menon; ones for the plain adjoint)"
    )
    command = (
        f"The model expects samples multiplied by {scale}, as the package's data pipelines do, and returns magnitude\n"
        "images in that scale; its grid (`image_shape` in the configuration below) is fixed by its training."
    )
    return usage, command, "each volume sampled on the run's trajectory (simulated from its images with the NUFFT)"


def model_card(entry, repo_id, parameters, baselines=None):
    """The text of a published model's ``README.md``.

    Args:
        entry: the manifest entry (without ``hub`` or with it).
        repo_id: the Hub repository it is published to.
        parameters: number of weights of the model.
        baselines: dict baseline name -> metrics list (as ``entry["metrics"]``), shown for comparison.

    Returns:
        str (Markdown with the Hub's YAML metadata header).
    """
    name, file = entry["name"], entry["file"]
    acquisition = entry["acquisition"]
    accelerations = ", ".join(f"x{a:g}" for a in entry["accelerations"])
    training = json.dumps(entry.get("training", {}), indent=2)
    cartesian = acquisition["trajectory"] == "cartesian"
    sampling = f"{acquisition.get('mask_type', 'any')} masks" if cartesian else "samples simulated from the files' images (NUFFT)"
    summary = (
        f"Trained for {acquisition['coils']} {acquisition['trajectory']} {acquisition['dimensions']}D acquisitions, "
        f"{sampling}, accelerations {accelerations}."
    )
    scale = _number(entry.get("scale_factor", 1e6))
    usage, command, evaluation = _usage(cartesian, repo_id, file, scale)
    tags = "\n".join(f"  - {t}" for t in ("fastmri-recon", "mri-reconstruction", "fastmri", "keras", "tensorflow"))
    return f"""---
library_name: keras
license: mit
tags:
{tags}
---

# {name}

{summary}

Registry architecture `{entry['architecture']}` of the `fastmri-recon` package with the configuration below
({parameters:,} weights); at its default configuration: {get_entry(entry['architecture']).summary}.

## Usage

```python
from fastmri_recon import from_pretrained

model = from_pretrained("hf://{repo_id}/{file}")  # or "{name}" with the package's weights manifest
{usage}
```

{command}

## Training

Data: {entry['training_data']}. Configuration (`fastmri-recon train` options, package version
{entry['package_version']}):

```json
{training}
```

Model configuration (constructor arguments):

```json
{json.dumps(entry['config'], indent=2)}
```

## Evaluation

fastMRI's metrics (per volume, mean over volumes), {evaluation}:

{_metrics_table(entry, baselines or {})}

![target, reconstructions and error maps]({FIGURE_FILE})

## Files

| file | sha256 | bytes |
|---|---|---|
| `{file}` | `{entry['sha256']}` | {entry['size_bytes']:,} |

Weights only (`.weights.h5`, HDF5 arrays): the model is rebuilt from `config.json` by the package's registry;
no pickle, no code is loaded. Published with fastmri-recon {__version__}.
"""

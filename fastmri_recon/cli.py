"""The ``fastmri-recon`` command line: thin click wrappers over the library.

Bad input (a `FastMRIReconError` or a click usage error) prints one line on stderr and exits
with status 2, never a traceback. TensorFlow is imported inside the commands that need it, so
``--help`` answers at once.
"""

import os
import sys
from pathlib import Path

import click

from fastmri_recon import __version__
from fastmri_recon.errors import FastMRIReconError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Import TensorFlow and list its devices with stderr silenced.

    TensorFlow's C++ start-up banner and its "no CUDA driver" message ignore TF_CPP_MIN_LOG_LEVEL;
    a command's stderr is kept for its own messages (bad input: one line).
    """
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _float_list(text):
    return [float(v) for v in text.split(",") if v.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fastmri-recon")
def cli():
    """Deep-learning MRI reconstruction on fastMRI data (and its built-in demo data)."""


@cli.command("demo-data")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train-subjects", default=6, show_default=True, help="Volumes in the train splits.")
@click.option("--val-subjects", default=2, show_default=True, help="Volumes in the val splits.")
@click.option("--test-subjects", default=2, show_default=True, help="Volumes in the test splits.")
@click.option("--slices", default=8, show_default=True, help="Axial slices per volume.")
@click.option("--image-size", default=128, show_default=True, help="Target size in pixels (k-space: 2N x N).")
@click.option("--coils", default=8, show_default=True, help="Receive coils of the multi-coil data.")
@click.option("--snr", default=40.0, show_default=True, help="Mean brain magnitude / noise std.")
@click.option("--seed", default=0, show_default=True, help="Seed: same seed, same bytes.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo_data(out_dir, quiet, **options):
    """Build the demo data set in OUT_DIR (fastMRI HDF5 files simulated from the MNI brain template).

    Writes singlecoil_{train,val,test}/ and multicoil_{train,val,test}/; test files carry their
    undersampling mask and no target, as fastMRI's do. An identical existing build is kept.
    """
    _import_tensorflow_quietly()
    from fastmri_recon.data.demo import DemoConfig, build_demo_dataset

    info = build_demo_dataset(out_dir, DemoConfig(**options), progress=not quiet)
    count = sum(len(files) for files in info["files"].values())
    state = "built" if info["built"] else "already up to date"
    click.echo(f"demo data {state}: {count} files in {out_dir}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--model", "model_name", default="zero-filled", show_default=True, help="Registered model or baseline.")
@click.option(
    "--mask-type",
    type=click.Choice(["random", "equispaced", "equispaced_fraction", "magic", "magic_fraction"]),
    default="random",
    show_default=True,
    help="Undersampling mask kind (fastMRI semantics).",
)
@click.option("--acceleration", "accelerations", default="4", show_default=True, help="Comma-separated accelerations.")
@click.option(
    "--center-fraction",
    "center_fractions",
    default=None,
    help="Comma-separated center fractions, one per acceleration [default: 0.08 for 4, 0.04 for 8].",
)
@click.option("--batch-size", default=8, show_default=True, help="Slices per model call.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Write results.{json,csv,md} here.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(directory, model_name, mask_type, accelerations, center_fractions, batch_size, output_dir, quiet):
    """Evaluate a model or baseline on DIRECTORY (fastMRI files with targets), print PSNR / SSIM / NMSE.

    Every volume is undersampled with a mask seeded by its file name, so all methods see the same
    masks; metrics are fastMRI's, per volume, reported as mean (std) over volumes.
    """
    _import_tensorflow_quietly()
    from fastmri_recon.data.masks import MaskSampler, default_center_fraction
    from fastmri_recon.evaluate.evaluate import evaluate_directory
    from fastmri_recon.evaluate.tables import markdown_table, write_results
    from fastmri_recon.models.registry import build

    try:
        accs = _float_list(accelerations)
        cfs = _float_list(center_fractions) if center_fractions else [default_center_fraction(a) for a in accs]
        sampler = MaskSampler(mask_type, cfs, accs)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    model = build(model_name)
    result = evaluate_directory(model, model_name, directory, sampler, batch_size, not quiet)
    click.echo(markdown_table([result]))
    if output_dir is not None:
        written = write_results(output_dir, [result])
        click.echo(f"results written to {', '.join(str(p) for p in written)}")


@cli.command("models")
@click.option("--size", default=32, show_default=True, help="In-plane size of the dummy input each model is built on.")
def models_command(size):
    """List the registered models and baselines with their parameter counts (Markdown table).

    Each is built at its default configuration and called once on a dummy input: single-coil
    (1, SIZE, SIZE) k-space, or multi-coil (1, 2, SIZE, SIZE) for multi-coil-only models.
    """
    _import_tensorflow_quietly()
    from fastmri_recon.evaluate.tables import markdown_rows
    from fastmri_recon.models.registry import ENTRIES, count_parameters

    rows = [
        {"name": e.name, "kind": e.kind, "parameters": f"{count_parameters(e.name, size):,}", "summary": e.summary}
        for e in ENTRIES.values()
    ]
    click.echo(markdown_rows(rows))


def main(argv=None):
    """Console-script entry point: run the group, turning bad input into one line and status 2."""
    try:
        cli.main(args=argv, prog_name="fastmri-recon", standalone_mode=False)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except FastMRIReconError as err:
        click.echo(f"error: {' '.join(str(err).splitlines())}", err=True)
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

"""The ``fastmri-recon`` command line: thin click wrappers over the library.

Bad input (a `FastMRIReconError` or a click usage error) prints one line on stderr and exits
with status 2, never a traceback. TensorFlow is imported inside the commands that need it, so
``--help`` answers at once.
"""

import dataclasses
import os
import sys
from pathlib import Path

import click

from fastmri_recon import __version__
from fastmri_recon.data.trajectories import KINDS, trajectory_kind_names
from fastmri_recon.errors import FastMRIReconError, quote

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


MANIFEST_OPTION = click.option(
    "--manifest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights manifest [default: $FASTMRI_RECON_MANIFEST or the source tree's weights_manifest.json].",
)
DATA_SCALE_OPTION = click.option(
    "--data-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Multiply the files' k-space by this before the model's own scale factor, for data in other units than "
    "the model's training data (fastMRI's: see README); outputs are divided by it, so they stay in the files' units.",
)


def compression_options(command):
    """``--virtual-coils`` / ``--coil-compression`` of the commands that read multi-coil files."""
    command = click.option(
        "--coil-compression", type=click.Choice(["svd", "geometric"]), default="svd", show_default=True, help="With --virtual-coils."
    )(command)
    return click.option(
        "--virtual-coils",
        type=click.IntRange(min=1),
        help="Compress each slice of multi-coil files to this many virtual coils (methods without a recorded "
        "compression; a training run applies its own).",
    )(command)


def _compression(virtual_coils, method):
    """The `SliceCompression` of the options, or None."""
    from fastmri_recon.data.coil_compression import slice_compression

    return slice_compression(virtual_coils, method)


def _trained_compression(training):
    """The coil compression a training configuration (``TrainConfig.to_json()``, or None) records, or None."""
    training = training or {}
    return _compression(training.get("virtual_coils"), training.get("coil_compression") or "svd")


def import_tensorflow_quietly():
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
        tensorflow.get_logger().setLevel("ERROR")  # retracing notices and other warnings are not the user's
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
    import_tensorflow_quietly()
    from fastmri_recon.data.demo import DemoConfig, build_demo_dataset

    info = build_demo_dataset(out_dir, DemoConfig(**options), progress=not quiet)
    count = sum(len(files) for files in info["files"].values())
    state = "built" if info["built"] else "already up to date"
    click.echo(f"demo data {state}: {count} files in {out_dir}")


@cli.command("cache-tfrecords")
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shard-size", default=32, show_default=True, type=click.IntRange(min=1), help="Slices (records) per shard file.")
@click.option("--skip-bad-files", is_flag=True, help="Skip corrupt or non-conforming files with a warning (recorded in the index).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def cache_tfrecords(input_dir, output_dir, shard_size, skip_bad_files, quiet):
    """Write a TFRecord cache of the fastMRI files of INPUT_DIR (single- or multi-coil, with targets) to OUTPUT_DIR.

    `train --cache-dir` (and the pipelines' ``cache_dir``) then read the slices from it: the same
    batches as from the HDF5 files. A cache of the directory's current files with the same shard size
    is left as it is; another cache in OUTPUT_DIR is replaced once the new one is complete.
    """
    import_tensorflow_quietly()
    from fastmri_recon.data.datasets.tfrecord import build_cache

    info = build_cache(input_dir, output_dir, shard_size, skip_bad_files, progress=not quiet)
    state = "built" if info["built"] else "already up to date"
    skipped = f", {info['skipped']} bad files skipped" if info["skipped"] else ""
    click.echo(
        f"cache {state}: {info['slices']} slices of {info['volumes']} volumes in {info['shards']} shards "
        f"in {output_dir}{skipped}"
    )


def _sampler(mask_type, accelerations, center_fractions):
    from fastmri_recon.data.masks import MaskSampler, default_center_fraction

    try:
        accs = _float_list(accelerations)
        cfs = _float_list(center_fractions) if center_fractions else [default_center_fraction(a) for a in accs]
        return MaskSampler(mask_type, cfs, accs)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


class _MaskTypeChoice(click.Choice):
    """``click.Choice`` over the mask types registered in `data.masks`, read when first needed: that
    module imports TensorFlow, which the commands import late and quietly (`import_tensorflow_quietly`)."""

    def __init__(self):  # no super().__init__: it would read the choices now
        self.case_sensitive = True

    @property
    def choices(self):
        import_tensorflow_quietly()
        from fastmri_recon.data.masks import mask_type_names

        return tuple(mask_type_names())


@dataclasses.dataclass(frozen=True)
class _Method:
    """One method to evaluate: its label, the model (None: a registry entry, built for the data), the
    training run's `TrainConfig` (run directories), the k-space scale it expects (None: a registry
    entry, the pipeline's default), its acquisition and the coil compression it was trained with."""

    label: str
    model: object
    run_config: object
    scale_factor: float
    acquisition: str
    compression: object = None


@dataclasses.dataclass(frozen=True)
class _Named:
    """What a ``--model`` names, for evaluate and reconstruct alike (`_named_model`): exactly one of a
    registry ``entry`` (a baseline or an architecture without weights, which the command builds for
    the data), a training ``run`` (`RunDirectory`) and the ``source`` of published weights
    (`hub.locate.Source`: manifest name, ``hf://`` URL, published folder, ``.weights.h5``)."""

    label: str
    acquisition: str
    scale_factor: float
    compression: object
    origin: str
    entry: object = None
    run: object = None
    source: object = None
    which: str = "best"

    def model(self, crop_size=None):
        """The run's or the published weights' model with the output size ``crop_size`` (None: the
        run's own); None for a registry entry."""
        if self.run is not None:
            return self.run.model(self.which, crop_size=crop_size)
        if self.source is not None:
            from fastmri_recon.hub.load import load_source

            return load_source(self.source, crop_size=crop_size).model
        return None


def _named_model(spec, which, manifest):
    """Resolve one ``--model``: a registry name, a training run directory, or weights `hub.locate.resolve` finds.

    Raises:
        ConfigError: for a name that is none of these (with close matches); DataError: a bad file.
    """
    from fastmri_recon.models.registry import ENTRIES, get_entry
    from fastmri_recon.training.rundir import RunDirectory

    if spec in ENTRIES:
        entry = ENTRIES[spec]
        return _Named(spec, entry.acquisition, None, None, f"registry {entry.kind}", entry=entry)
    if RunDirectory.holds_run(spec):
        run = RunDirectory.read(spec)
        # a run that learned its trajectory too is "noncartesian" here
        return _Named(run.name, run.config.acquisition, run.scale_factor, run.compression(), f"{run.name}, training run {run.path}", run=run, which=which)
    source = _resolve_model(spec, which, manifest)
    acquisition = get_entry(source.architecture).acquisition
    return _Named(source.name, acquisition, source.scale_factor, _trained_compression(source.training), f"{source.name}, {source.origin}", source=source)


def _methods(names, weights, manifest, directory):
    """The `_Method` of each ``--model`` (`_named_model`).

    Registry entries are built later, for the data; training runs keep their own output size;
    published Cartesian models are built with the data's reconstruction size as output size (their
    weights do not depend on it).
    """
    from fastmri_recon.data.h5 import target_shape

    methods = []
    for name in names:
        named = _named_model(name, weights, manifest)
        if named.entry is not None:
            methods.append(_Method(named.label, None, None, None, named.acquisition))
        elif named.run is not None:
            methods.append(_Method(named.label, named.model(), named.run.config, named.scale_factor, named.acquisition, named.compression))
        else:
            model = named.model(target_shape(directory) if named.acquisition == "cartesian" else None)
            methods.append(_Method(named.label, model, None, named.scale_factor, model.acquisition, named.compression))
    return methods


def _resolve_model(name, weights, manifest):
    """`hub.locate.resolve`, with an unknown name's close matches among registry and manifest names."""
    import difflib

    from fastmri_recon.errors import ConfigError
    from fastmri_recon.hub.locate import resolve
    from fastmri_recon.hub.manifest import load_manifest
    from fastmri_recon.models.registry import ENTRIES

    try:
        return resolve(name, weights, manifest)
    except ConfigError as err:
        if not str(err).startswith("unknown pretrained model"):
            raise
        known = [*ENTRIES, *load_manifest(manifest).names]
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see 'fastmri-recon models' and 'fastmri-recon weights list'"
        raise ConfigError(
            f"unknown model '{name}': not a registered model, a manifest name, a local path or an hf:// URL ({hint})"
        ) from None


def _demo_data_if_absent(directory, quiet):
    """Build the demo data in ``demo_data/`` (the default data folder) when ``directory`` is that
    folder or one of its splits and does not exist yet (as the README's commands name them)."""
    from fastmri_recon.data.demo import SPLITS, build_demo_dataset
    from fastmri_recon.training.config import DEFAULT_DATA_DIR

    demo, directory = Path(DEFAULT_DATA_DIR), Path(directory)
    splits = {f"{coils}_{split}" for coils in ("singlecoil", "multicoil") for split in SPLITS}
    if directory.exists() or not (directory == demo or (directory.parent == demo and directory.name in splits)):
        return
    click.echo(f"{directory} does not exist: building the demo data in {demo}/ first", err=True)
    build_demo_dataset(demo, progress=not quiet)


def _check_coils(methods, directory):
    """Refuse, before any work, multi-coil-only methods (SENSE, GRAPPA, E2E-VarNet) on single-coil files."""
    from fastmri_recon.data.h5 import FastMRIFile, list_volumes
    from fastmri_recon.models.registry import get_entry

    with FastMRIFile(list_volumes(directory)[0]) as first:
        if first.is_multicoil:
            return
    for method in methods:
        multicoil_only = (method.model or get_entry(method.label).load_class()).multicoil_only
        if method.acquisition == "cartesian" and multicoil_only:
            raise click.BadParameter(f"'{method.label}' needs multi-coil data; the files of {directory} are single-coil", param_hint="--model")


def _noncartesian_acquisition(trajectory, accelerations, methods, directory):
    """The acquisition every non-Cartesian method is evaluated on, and the grid of the baselines.

    The first non-Cartesian run's acquisition (its trajectory, acceleration, options) unless
    ``--trajectory`` is given; ``--acceleration`` overrides the run's.
    """
    from fastmri_recon.data.datasets import NonCartesianConfig, Volume3DConfig
    from fastmri_recon.data.datasets.nc_config import TRAJECTORIES_3D
    from fastmri_recon.data.acquisition import NonCartesianAcquisition
    from fastmri_recon.data.h5 import target_shape
    from fastmri_recon.training.rundir import acquisition

    values = _float_list(accelerations) if accelerations else []
    if len(values) > 1:
        raise click.BadParameter(f"'{accelerations}': a non-Cartesian acquisition has one acceleration", param_hint="--acceleration")
    runs = [m.run_config for m in methods if m.run_config is not None and m.acquisition == "noncartesian"]
    built = [m.model for m in methods if m.model is not None and m.acquisition == "noncartesian"]
    if trajectory is None and not runs:
        raise click.BadParameter(f"needed for non-Cartesian baselines and published models ({', '.join(KINDS)})", param_hint="--trajectory")
    if trajectory is None:  # a run that learned its trajectory: the others get the kind it started from
        base = dataclasses.replace(acquisition(runs[0], runs[0].seed), learned=False)
        if values:
            base = dataclasses.replace(base, pipeline=dataclasses.replace(base.pipeline, acceleration=values[0]))
    else:
        pipeline = Volume3DConfig if trajectory in TRAJECTORIES_3D else NonCartesianConfig
        base = NonCartesianAcquisition(pipeline(trajectory=trajectory, acceleration=values[0] if values else 4))
    if built:
        grid = built[0].image_shape
    else:
        grid = base.pipeline.volume_shape if base.volumetric else target_shape(directory)
    if not base.volumetric:
        _check_grids(methods, target_shape(directory), directory)
    return base, grid


def _check_grids(methods, targets, directory):
    """Refuse, before any work, a 2D non-Cartesian network whose grid (fixed by its weights' run) is smaller than the targets."""
    for method in methods:
        grid = getattr(method.model, "image_shape", None)
        if method.acquisition == "noncartesian" and grid is not None and len(grid) == 2 and (targets[0] > grid[0] or targets[1] > grid[1]):
            raise click.BadParameter(
                f"'{method.label}' works on a {grid[0]} x {grid[1]} grid; the targets of {directory} are {targets[0]} x {targets[1]}: "
                "evaluate it on data of at most its grid, or train it on this data's size",
                param_hint="--model",
            )


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "model_names",
    multiple=True,
    default=["zero-filled"],
    show_default=True,
    help="Registered model or baseline, training run directory, manifest name, hf:// URL, published folder or "
    ".weights.h5 file; repeat to compare several.",
)
@click.option("--weights", type=click.Choice(["best", "final"]), default="best", show_default=True, help="Weights of run directories.")
@click.option("--mask-type", type=_MaskTypeChoice(), help="Cartesian models: undersampling mask type (fastMRI semantics) [default: random].")
@click.option("--acceleration", "accelerations", help="Comma-separated accelerations [default: 4, or a non-Cartesian run's].")
@click.option(
    "--center-fraction",
    "center_fractions",
    default=None,
    help="Comma-separated center fractions, one per acceleration [default: 0.08 for 4, 0.04 for 8].",
)
@click.option(
    "--trajectory",
    type=click.Choice(KINDS),
    help="Non-Cartesian models: the simulated trajectory [default: the first non-Cartesian run's].",
)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Slices per model call.")
@DATA_SCALE_OPTION
@compression_options
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Write results.{json,csv,md} and a figure here.")
@MANIFEST_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(
    directory, model_names, weights, mask_type, accelerations, center_fractions, trajectory, batch_size, data_scale, virtual_coils,
    coil_compression, output_dir, manifest, quiet,
):
    """Evaluate models / baselines on DIRECTORY (fastMRI files with targets), print PSNR / SSIM / NMSE.

    Cartesian methods: every volume is undersampled with a mask seeded by its file name, so all
    methods see the same masks. Non-Cartesian methods (ncpdnet, nc-unet, nc-adjoint, their runs):
    the samples on --trajectory (or the first non-Cartesian run's trajectory) are simulated by the
    NUFFT from the files, one trajectory for all volumes, the same for every method; 3D ones read
    a DIRECTORY of NIfTI volumes, or 'demo-volumes' (the demo validation volumes). Metrics are
    fastMRI's, per volume, reported as mean (std) over volumes. A DIRECTORY demo_data/SPLIT that
    does not exist yet is built first (the demo data, as 'fastmri-recon benchmark' builds it).
    """
    import_tensorflow_quietly()
    from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR
    from fastmri_recon.evaluate.evaluate import evaluate_directory
    from fastmri_recon.evaluate.tables import markdown_table, write_results
    from fastmri_recon.models.registry import build
    from fastmri_recon.training.config import DEMO_VOLUMES
    from fastmri_recon.training.rundir import acquisition, demo_split

    from fastmri_recon.files import make_directory

    if output_dir is not None:
        make_directory(output_dir)  # a bad --output-dir fails before the work
    _demo_data_if_absent(directory, quiet)
    methods = _methods(model_names, weights, manifest, directory)
    kinds = {method.acquisition for method in methods}
    if "cartesian" not in kinds and (mask_type or center_fractions):
        raise click.BadParameter("a Cartesian option, but no --model is Cartesian", param_hint="--mask-type / --center-fraction")
    if "noncartesian" not in kinds and trajectory:
        raise click.BadParameter("a non-Cartesian option, but no --model is non-Cartesian", param_hint="--trajectory")
    if "cartesian" not in kinds and virtual_coils:
        raise click.BadParameter("coil compression applies to Cartesian multi-coil files, but no --model is Cartesian", param_hint="--virtual-coils")
    given = _compression(virtual_coils, coil_compression)
    if "cartesian" in kinds:
        sampler = _sampler(mask_type or "random", accelerations or "4", center_fractions)
        _check_coils(methods, directory)
    if "noncartesian" in kinds:
        nc_acquisition, grid = _noncartesian_acquisition(trajectory, accelerations, methods, directory)
    results = []
    for method in methods:
        config = method.run_config
        compression = None
        if method.acquisition == "cartesian":
            model, source, data = method.model or build(method.label), directory, sampler
            scale = (method.scale_factor or DEFAULT_SCALE_FACTOR) * data_scale
            compression = method.compression or given
        else:
            model = method.model or build(method.label, image_shape=grid)
            scale = (method.scale_factor or nc_acquisition.scale_factor) * data_scale
            # a run that learned its trajectory samples the images itself; the others share one acquisition
            shared = acquisition(config, config.seed) if model.acquisition == "learned" else nc_acquisition
            pipeline = dataclasses.replace(shared.pipeline, scale_factor=scale)
            data = dataclasses.replace(shared, pipeline=pipeline, density_compensation=config is None or config.density_compensation)
            volumes = data.volumetric and str(directory) == DEMO_VOLUMES
            source = demo_split("val", model.image_shape) if volumes else directory
        results.append(evaluate_directory(model, method.label, source, data, batch_size, not quiet, scale, compression=compression))
    click.echo(markdown_table(results))
    if output_dir is not None:
        written = write_results(output_dir, results)
        click.echo(f"results written to {', '.join(str(p) for p in written)}")


def _int_list(text, option):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {quote(text)}", param_hint=option) from None


def _key_values(pairs, option):
    """``KEY=VALUE`` strings -> dict, values read by `training.config.parse_value` (``n_iter=5``, ``filters=[8,16]``)."""
    from fastmri_recon.training.config import parse_value

    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {quote(pair)}", param_hint=option)
        values[key.strip()] = parse_value(value)
    return values


SIGTERM_STATUS = 143
"""Exit status of a training run stopped by SIGTERM (128 + 15, as a shell reports a process the signal killed)."""


@cli.command()
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML / JSON file whose keys are these options.")
@click.option("--model", help="Registered model name [default: unet].")
@click.option("--model-config", multiple=True, metavar="KEY=VALUE", help="Model constructor argument (repeatable), e.g. n_iter=5.")
@click.option(
    "--data-dir",
    help="Folder with {coils}_train/ and {coils}_val/ [default: demo_data]; 3D models: with volumes_train/ and "
    "volumes_val/ (NIfTI), or 'demo-volumes' (the default: demo volumes).",
)
@click.option("--cache-dir", help="Cartesian models: folder of TFRecord caches {coils}_train/ and {coils}_val/ (fastmri-recon cache-tfrecords) read instead of the HDF5 files.")
@click.option("--coils", type=click.Choice(["singlecoil", "multicoil"]), help="[default: singlecoil]")
@click.option("--mask-type", type=_MaskTypeChoice(), help="Cartesian models: [default: random]")
@click.option("--acceleration", "accelerations", help="Comma-separated accelerations, one drawn per example (non-Cartesian: one) [default: 4].")
@click.option("--center-fraction", "center_fractions", help="Comma-separated center fractions [default: 0.08 for 4, 0.04 for 8].")
@click.option(
    "--trajectory",
    type=click.Choice(trajectory_kind_names()),
    help="Non-Cartesian models: simulated trajectory [default: radial (2D), stack_of_spirals (3D)]; learned-radial / "
    "learned-spiral: trained with the network within the gradient limits (saved in the run directory).",
)
@click.option("--trajectory-option", "trajectory_options", multiple=True, metavar="KEY=VALUE", help="Trajectory argument (repeatable), e.g. n_shots=8.")
@click.option("--image-shape", help="2D non-Cartesian models: image grid H,W [default: the targets' size].")
@click.option("--volume-shape", help="3D models: volume grid D,H,W [default: 32,32,32].")
@click.option("--density-compensation/--no-density-compensation", default=None, help="Non-Cartesian models: Pipe-Menon density or unit density [default: on].")
@click.option(
    "--scale-factor",
    type=float,
    help="Factor applied to k-space and targets, recorded with the run and applied by every command that uses it "
    "[default: 1e6 (fastMRI's units); 3D volumes: 1].",
)
@click.option("--virtual-coils", type=int, help="Cartesian multi-coil models: compress each slice to this many virtual coils (recorded with the run).")
@click.option("--coil-compression", type=click.Choice(["svd", "geometric"]), help="With --virtual-coils [default: svd].")
@click.option("--contrast", "contrasts", multiple=True, help="Keep files with this acquisition attribute (repeatable).")
@click.option("--slice-selection", type=click.Choice(["all", "random"]), help="[default: all]")
@click.option("--phase-augmentation", is_flag=True, default=None, help="Random global phase per training example.")
@click.option("--loss", type=click.Choice(["mae", "mse", "ssim", "msssim_l1"]), help="[default: mae]")
@click.option("--optimizer", type=click.Choice(["radam", "adam"]), help="[default: radam]")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, help="[default: 1e-3]")
@click.option("--epochs", type=int, help="[default: 10]")
@click.option("--steps-per-epoch", type=int, help="[default: one pass over the training slices]")
@click.option("--batch-size", type=int, help="Global batch size [default: 1].")
@click.option("--validation-steps", type=int, help="[default: all validation slices]")
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints [default: 100].")
@click.option("--mixed-precision", is_flag=True, default=None, help="Train under mixed_float16.")
@click.option("--deterministic", is_flag=True, default=None, help="Deterministic TensorFlow ops (exact resumption).")
@click.option("--seed", type=int, help="[default: 0]")
@click.option("--strategy", type=click.Choice(["auto", "one-device", "mirrored", "multi-worker"]), help="[default: auto]")
@click.option("--output-dir", help="Parent of the run directory [default: runs].")
@click.option("--run-name", help="Run directory name [default: MODEL_COILS_MASK_xACC]; the same name resumes.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Set one key of a configuration section (repeatable): model, acquisition, data, loop, runtime, e.g. "
    "data.edge_slices=2, loop.learning_rate=3e-4, model.config.n_iter=5.",
)
@click.option("--dry-run", is_flag=True, help="Print the resolved strategy, devices and configuration; do not train.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(config_file, overrides, dry_run, quiet, **options):
    """Train a model (or resume its run) on fastMRI-format data; the demo data by default (built in
    demo_data/ first when absent).

    Options given on the command line (--set included) override the --config file, which overrides
    the defaults; the file's keys are these options' names, flat or grouped in the sections model
    (name, config), acquisition, data, loop and runtime, which --set addresses.
    Non-Cartesian models (ncpdnet, nc-unet, ncpdnet-3d) train on radial / spiral samples simulated
    from the files (3D: stack-of-spirals / stack-of-radial / kooshball samples of volumes). The run
    directory holds config.json, checkpoints, best / final weights, metrics.csv and TensorBoard
    logs; starting the same run again resumes it from its last checkpoint. A run stopped by SIGTERM
    (a scheduler's time limit) checkpoints and exits with status 143, not 0.
    """
    import json

    import_tensorflow_quietly()
    from fastmri_recon.training.config import flatten_sections, from_dict, load_config, set_override
    from fastmri_recon.training.run import run_training

    values = flatten_sections(load_config(config_file), str(config_file)) if config_file is not None else {}
    overridden = {set_override(values, assignment) for assignment in overrides}
    given = {key: value for key, value in options.items() if value not in (None, ())}
    twice = sorted(overridden & set(given) - {"model_config", "trajectory_options"})
    if twice:
        raise click.BadParameter(f"{', '.join(twice)} given by --set and by its own option", param_hint="--set")
    for key, option in (("model_config", "--model-config"), ("trajectory_options", "--trajectory-option")):
        if key in given:
            given[key] = {**(values.get(key) or {}), **_key_values(given[key], option)}
    for key in ("accelerations", "center_fractions"):
        if key in given:
            try:
                given[key] = _float_list(given[key])
            except ValueError as err:
                raise click.BadParameter(str(err), param_hint=f"--{key[:-1].replace('_', '-')}") from None
    for key in ("image_shape", "volume_shape"):
        if key in given:
            given[key] = _int_list(given[key], f"--{key.replace('_', '-')}")
    config = from_dict({**values, **given}, str(config_file) if config_file else "options")
    _demo_data_if_absent(config.data_dir, quiet)
    result = run_training(config, dry_run=dry_run, progress=not quiet)
    if dry_run:
        click.echo(json.dumps(result, indent=2))
        return
    summary = result["summary"]
    state = "stopped by SIGTERM (run again to resume)" if summary["stopped"] else "done"
    best = ", ".join(f"val {k} {v:.4g}" for k, v in (summary["best"] or {}).items()) or "no validation"
    click.echo(
        f"training {state}: {summary['epochs_done']} epochs, {summary['seconds_per_step']:.3f} s/step, best {best}; "
        f"run directory {result['run_dir']}"
    )
    if summary["stopped"]:
        sys.exit(SIGTERM_STATUS)


@cli.command()
@click.option("--budget", type=click.Choice(["tiny", "default", "paper"]), default="default", show_default=True, help="Training budget and network sizes.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_data"), show_default=True, help="fastMRI data (its singlecoil_/multicoil_ train and val folders) or the demo data folder (built if absent).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("benchmark"), show_default=True, help="Tables, figures and training runs.")
@click.option("--table", "tables", multiple=True, type=click.Choice(["a", "b", "c", "d"]), help="Only this table (repeatable; default: a and b, the main job); c and d are written to OUTPUT_DIR/table_c and OUTPUT_DIR/table_d.")
@click.option(
    "--weights",
    type=click.Choice(["trained", "published"]),
    default="trained",
    show_default=True,
    help="trained: train the networks (--budget); published: evaluate the papers' own weights (no training).",
)
@MANIFEST_OPTION
@click.option("--quiet", is_flag=True, help="No progress bars.")
def benchmark(budget, data_dir, output_dir, tables, weights, manifest, quiet):
    """The main job: train the papers' networks briefly on the demo data, evaluate them with the baselines.

    Writes table (a) single-coil (U-net, KIKI-net, Cascade-net, PD-net vs zero-filled and CS) and
    table (b) multi-coil (XPDNet, E2E-VarNet vs zero-filled, GRAPPA, SENSE and CS) as Markdown, JSON
    and CSV, with figures of reconstructions and error maps. Running it again resumes / reuses the runs.

    On request (--table c, --table d), the two other papers' tables: (c) NC-PDNet against the
    density-compensated adjoint on radial and spiral data, 2D single- and multi-coil and 3D (its own
    demo data, or the 2D fastMRI data of --data-dir); (d) DEQ-XPDNet with the SHINE, Jacobian-free
    and implicit backward passes against the unrolled XPDNet, multi-coil.

    With --weights published, the papers' own networks (downloaded from the Hub once, converted from
    their Keras-2 files) are evaluated with zero-filled as the papers did, beside the published PSNR:
    table (a) on singlecoil_val at x4, table (b) the challenge XPDNet on multicoil_val at x4.
    """
    tables = tables or ("a", "b")
    main_tables = tuple(table for table in tables if table in ("a", "b"))
    if weights == "published" and len(main_tables) < len(tables):
        raise click.BadParameter("the published weights are those of tables a and b", param_hint="--table")
    import_tensorflow_quietly()
    if weights == "published":
        from fastmri_recon.workflows.published import run_published_benchmark

        run_published_benchmark(output_dir, data_dir, tables, progress=not quiet, log=click.echo, manifest=manifest)
        click.echo(f"tables and figures written to {output_dir}")
        return
    from fastmri_recon.workflows.benchmark import holds_fastmri_data, run_benchmark
    from fastmri_recon.workflows.table_c import run_table_c
    from fastmri_recon.workflows.table_d import run_table_d

    if main_tables:
        run_benchmark(output_dir, data_dir, budget, progress=not quiet, log=click.echo, tables=main_tables)
        click.echo(f"tables and figures written to {output_dir}")
    if "c" in tables:  # its own demo data (64 x 64 images) unless the folder holds fastMRI data
        planar_data = data_dir if holds_fastmri_data(data_dir) else None
        run_table_c(output_dir / "table_c", budget, progress=not quiet, log=click.echo, data_dir=planar_data)
        click.echo(f"table (c) written to {output_dir / 'table_c'}")
    if "d" in tables:
        run_table_d(output_dir / "table_d", data_dir, budget, progress=not quiet, log=click.echo)
        click.echo(f"table (d) written to {output_dir / 'table_d'}")


@cli.command("models")
@click.option("--size", default=32, show_default=True, help="In-plane size of the dummy input each model is built on.")
def models_command(size):
    """List the registered models and baselines with their parameter counts (Markdown table).

    Each is built at its default configuration and called once on a dummy input: single-coil
    (1, SIZE, SIZE) k-space, or multi-coil (1, 2, SIZE, SIZE) for multi-coil-only models.
    """
    import_tensorflow_quietly()
    from fastmri_recon.evaluate.tables import markdown_rows
    from fastmri_recon.models.registry import ENTRIES, count_parameters

    rows = [
        {"name": e.name, "kind": e.kind, "parameters": f"{count_parameters(e.name, size):,}", "summary": e.summary}
        for e in ENTRIES.values()
    ]
    click.echo(markdown_rows(rows))


@cli.group()
def weights():
    """Published weights: list the manifest, fetch (download and verify) or publish a training run."""


def _where(entry):
    hub = entry["hub"]
    if not hub.get("uploaded", True):
        return f"not uploaded (weights/{entry['name']}/; intended {hub['repo_id']})"
    return f"hf://{hub['repo_id']}@{hub['revision'][:10]}"


def _figures(metrics):
    """``x4 32.15 / 0.729`` (SSIM left out where none was published; the contrast named if any)."""
    ssim = f" / {metrics['SSIM']:.3f}" if "SSIM" in metrics else ""
    contrast = f" {metrics['contrast']}" if "contrast" in metrics else ""
    return f"x{metrics['acceleration']:g}{contrast} {metrics['PSNR']:.2f}{ssim}"


@weights.command("list")
@MANIFEST_OPTION
def weights_list(manifest):
    """List the manifest's models (validated first) with their metrics and where they live."""
    import_tensorflow_quietly()  # evaluate.tables (the Markdown table) imports TensorFlow
    from fastmri_recon.evaluate.tables import markdown_rows
    from fastmri_recon.hub.manifest import load_manifest

    book = load_manifest(manifest)
    if not book.entries:
        click.echo(f"{book.path}: no models")
        return
    rows = [
        {
            "name": e["name"],
            "architecture": e["architecture"],
            "acquisition": f"{e['acquisition']['coils']} {e['acquisition'].get('mask_type') or e['acquisition']['trajectory']} "
            + ",".join(f"x{a:g}" for a in e["accelerations"]),
            "PSNR / SSIM": "; ".join(_figures(m) for m in e["metrics"]),
            "where": _where(e),
        }
        for e in book.entries
    ]
    click.echo(markdown_rows(rows))


@weights.command("fetch")
@click.argument("name")
@MANIFEST_OPTION
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Hugging Face cache [default: $HF_HUB_CACHE].")
def weights_fetch(name, manifest, cache_dir):
    """Find or download the weights NAME, verify their sha256 and load them into their model.

    NAME is a manifest name, an hf://OWNER/REPO[@REVISION][/FILE] URL or a local path. Downloads go
    to the Hugging Face cache (resumed if interrupted); with HF_HUB_OFFLINE=1 only the cache is used.
    The papers' Keras-2 files are converted once (see the README's "The papers' weights").
    """
    import_tensorflow_quietly()
    from fastmri_recon.hub.load import load_pretrained

    from fastmri_recon.hub.manifest import UNKNOWN_SHA256, is_keras2
    from fastmri_recon.hub.original import conversion_for

    pretrained = load_pretrained(name, manifest=manifest, cache_dir=cache_dir)
    source = pretrained.source
    check = "verified" if source.sha256 else "computed (no recorded checksum)"
    original = ""
    if source.entry is not None and is_keras2(source.entry):
        record = conversion_for(source.entry).read_record()
        how = "trusted on first use" if source.entry["sha256"] == UNKNOWN_SHA256 else "verified"
        original = f"; converted from the Keras-2 file of sha256 {record['original_sha256']} ({how}, {record['first_used']})"
    click.echo(
        f"{source.name}: {source.architecture}, {pretrained.model.count_params():,} weights, sha256 {pretrained.sha256} "
        f"{check}; file {source.weights} ({source.origin}){original}"
    )


@weights.command("publish")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--repo-id", required=True, help="Hub model repository OWNER/NAME.")
@click.option("--name", help="Manifest name [default: the run directory's name].")
@click.option("--weights", "which", type=click.Choice(["best", "final"]), default="best", show_default=True, help="Weights of the run.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Hub-ready folder [default: RUN_DIR/hub/NAME].")
@click.option("--eval-dir", type=click.Path(file_okay=False, path_type=Path), help="Data of the metrics [default: the run's val split].")
@MANIFEST_OPTION
@click.option("--dry-run", is_flag=True, help="Write the folder and print the manifest diff; upload nothing, change no manifest.")
@click.option("--no-upload", is_flag=True, help="Write the folder and the manifest entry marked 'uploaded: false'; upload nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def weights_publish(run_dir, repo_id, name, which, output_dir, eval_dir, manifest, dry_run, no_upload, quiet):
    """Publish the training run RUN_DIR: Hub-ready folder, upload, manifest entry.

    The folder holds the weights, config.json (the manifest entry without 'hub'), a model card
    README.md and reconstruction.png; metrics are measured on the run's validation split. The
    upload uses HF_TOKEN (never printed); the manifest entry then records the sha256 and the
    commit hash of the upload as revision.
    """
    if dry_run and no_upload:
        raise click.BadParameter("--dry-run and --no-upload exclude each other", param_hint="--dry-run")
    import_tensorflow_quietly()
    from fastmri_recon.hub.publish import publish

    mode = "dry-run" if dry_run else ("no-upload" if no_upload else "upload")
    result = publish(run_dir, repo_id, name, which, output_dir, eval_dir, manifest, mode, progress=not quiet)
    click.echo(f"folder written: {result.folder} ({', '.join(sorted(p.name for p in result.folder.iterdir()))})")
    click.echo(result.diff or "manifest unchanged", nl=not result.diff)
    if result.revision:
        click.echo(f"uploaded to https://huggingface.co/{repo_id} at revision {result.revision}")
    state = "manifest updated" if result.manifest_written else "dry run: nothing uploaded, manifest unchanged"
    click.echo(state if mode != "no-upload" else f"{state} (entry marked not uploaded)")


@cli.command()
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "model_spec", required=True, help="Manifest name, hf:// URL, published folder, run directory, .weights.h5 file or a registered baseline.")
@click.option("--weights", "which", type=click.Choice(["best", "final"]), default="best", show_default=True, help="Weights of run directories.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Slices per model call.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["hdf5", "nifti", "dicom"]),
    default="hdf5",
    show_default=True,
    help="hdf5: fastMRI submission files; nifti: NAME.nii.gz with the header's geometry; dicom: a series folder NAME/ per volume.",
)
@DATA_SCALE_OPTION
@compression_options
@MANIFEST_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def reconstruct(input_dir, output_dir, model_spec, which, batch_size, output_format, data_scale, virtual_coils, coil_compression, manifest, quiet):
    """Reconstruct the test files of INPUT_DIR into fastMRI submission files in OUTPUT_DIR.

    Input files carry their undersampled k-space and mask (fastMRI test / challenge files, the demo
    data's *_test splits, files written by 'fastmri-recon convert'). Each output file has the
    input's name and one dataset, 'reconstruction': float32 (slices, h, w), in the data's units
    (k-space scaling undone), at the header's reconstruction size (the model's output size is taken
    from the data, whatever its weights' training size). --format nifti / dicom write images with
    the scan's geometry instead (DICOM: an anonymous patient; needs the 'raw' extra). A 2D
    non-Cartesian training run (NC-PDNet, ...) reconstructs its own acquisition simulated from the
    files' images, as evaluate does: the files then need their targets (train / val files).
    """
    import_tensorflow_quietly()
    from fastmri_recon.data.datasets.config import DEFAULT_SCALE_FACTOR
    from fastmri_recon.models.registry import build
    from fastmri_recon.data.h5 import target_shape
    from fastmri_recon.reconstruct import reconstruct_directory

    size = target_shape(input_dir)  # the output size comes from the data (the weights do not depend on it)
    compression, acquisition = _compression(virtual_coils, coil_compression), None
    named = _named_model(model_spec, which, manifest)
    if named.entry is not None:
        if named.entry.kind != "baseline":
            raise click.BadParameter(
                f"'{model_spec}' is an architecture without trained weights: give a training run directory, a manifest name "
                "('fastmri-recon weights list'), an hf:// URL or a weights file",
                param_hint="--model",
            )
        if named.acquisition != "cartesian":
            raise click.BadParameter(f"'{model_spec}' is a non-Cartesian baseline: reconstruct it with a run's acquisition (evaluate)", param_hint="--model")
        model, scale = build(model_spec, crop_size=size), DEFAULT_SCALE_FACTOR
    elif named.run is not None:  # the run's own acquisition (a learned trajectory included)
        if named.acquisition != "cartesian":
            acquisition = named.run.acquisition()
            if virtual_coils:
                raise click.BadParameter("coil compression applies to Cartesian multi-coil runs", param_hint="--virtual-coils")
        model, scale = named.model(size), named.scale_factor
        compression = named.compression or compression
    else:
        if named.acquisition != "cartesian":
            raise click.BadParameter(
                f"'{model_spec}' is a non-Cartesian model without its training run: reconstruct needs the run directory (its acquisition)",
                param_hint="--model",
            )
        model, scale = named.model(size), named.scale_factor
        compression = named.compression or compression
    written = reconstruct_directory(
        model, input_dir, output_dir, scale * data_scale, batch_size, not quiet, output_format, named.label, compression=compression,
        acquisition=acquisition,
    )
    click.echo(f"{len(written)} reconstructions written to {output_dir} ({named.origin})")


@cli.command()
@click.argument("input_file", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--coils", type=click.IntRange(min=1), help="Compress to this many virtual coils [default: keep the coils].")
@click.option("--compression", type=click.Choice(["svd", "geometric"]), default="svd", show_default=True, help="Coil compression method.")
def convert(input_file, output_dir, coils, compression):
    """Convert raw scanner data (ISMRMRD .h5 / .mrd, Siemens twix .dat) into fastMRI files in OUTPUT_DIR.

    K-space is ordered (slices, coils, read-out, phase encoding) with the read-out oversampling kept,
    the ISMRMRD header carried over without personal fields, the sampling mask recovered from the
    line counters (ACS lines included), noise pre-scans used for pre-whitening, averages summed and
    one file per repetition / contrast. A fully sampled scan gets fastMRI's target (for 'evaluate'),
    an undersampled one its mask (for 'reconstruct'). Needs the 'raw' extra (pip install
    "fastmri-recon[raw]").
    """
    import_tensorflow_quietly()  # the data modules import it
    from fastmri_recon.data.raw import convert as convert_raw

    written = convert_raw(input_file, output_dir, coils, compression)
    click.echo(f"{len(written)} file(s) written: {', '.join(str(p) for p in written)}")


MAX_MESSAGE = 2000
"""Longest error line printed; the values a message quotes are capped already (`errors.quote`)."""


def run_command(command, argv, prog_name):
    """Run a click command, turning bad input into one line on stderr (at most `MAX_MESSAGE` characters) and exit status 2.

    Args:
        command: a click command or group.
        argv: its arguments (None: ``sys.argv[1:]``).
        prog_name: the program name in messages.
    """
    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except FastMRIReconError as err:
        message = " ".join(str(err).splitlines())
        click.echo(f"error: {message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + '...'}", err=True)
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)


def main(argv=None):
    """Console-script entry point: run the group, turning bad input into one line and status 2."""
    run_command(cli, argv, "fastmri-recon")


if __name__ == "__main__":
    main()

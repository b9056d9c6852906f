"""Convert a directory of fastMRI train / validation files into a TFRecord cache.

    python data_scripts/cache_tfrecords.py demo_data/multicoil_train cache/multicoil_train --shard-size 32

The pipelines read the cache instead of the HDF5 files when their configuration's ``cache_dir``
names it, and yield the same batches (see ``fastmri_recon/data/datasets/tfrecord.py``). A cache of
the directory's current files with the same shard size is left as it is; another cache in
OUTPUT_DIR is replaced once the new one is complete. Bad input (a missing directory, a corrupt or
non-conforming file, an output directory that holds something else) prints one line on stderr and
exits with status 2.
"""

from pathlib import Path

import click

from fastmri_recon.cli import import_tensorflow_quietly, run_command


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shard-size", default=32, show_default=True, type=click.IntRange(min=1), help="Slices (records) per shard file.")
@click.option("--skip-bad-files", is_flag=True, help="Skip corrupt or non-conforming files with a warning (recorded in the index).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def cache_tfrecords(input_dir, output_dir, shard_size, skip_bad_files, quiet):
    """Write a TFRecord cache of the fastMRI files of INPUT_DIR (single- or multi-coil, with targets) to OUTPUT_DIR."""
    import_tensorflow_quietly()
    from fastmri_recon.data.datasets.tfrecord import build_cache

    info = build_cache(input_dir, output_dir, shard_size, skip_bad_files, progress=not quiet)
    state = "built" if info["built"] else "already up to date"
    skipped = f", {info['skipped']} bad files skipped" if info["skipped"] else ""
    click.echo(
        f"cache {state}: {info['slices']} slices of {info['volumes']} volumes in {info['shards']} shards "
        f"in {output_dir}{skipped}"
    )


def main(argv=None):
    """Run the command; bad input gives one line on stderr and exit status 2 (as ``fastmri-recon``)."""
    run_command(cache_tfrecords, argv, "cache_tfrecords.py")


if __name__ == "__main__":
    main()

"""Table (c) of the NC-PDNet paper on the demo data: NC-PDNet against the density-compensated adjoint.

The command that makes the table; the training, evaluation and tabulation are
`fastmri_recon.workflows.table_c.run_table_c` (settings, budgets and outputs described there).

    python experiments/table_c_noncartesian/run.py [--budget tiny|default|paper] [--output-dir DIR] [--data-dir DIR] [--quiet]
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click

from fastmri_recon.cli import run_command
from fastmri_recon.workflows.benchmark import BUDGETS
from fastmri_recon.workflows.table_c import run_table_c

HERE = Path(__file__).resolve().parent


@click.command()
@click.option("--budget", type=click.Choice(BUDGETS), default="default", show_default=True, help="Data sizes and training budget.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=HERE / "output", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="fastMRI data for the 2D settings (default: demo data under OUTPUT_DIR/data).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def table_c(budget, output_dir, data_dir, quiet):
    """Train NC-PDNet (and nc-unet) briefly on the demo data and write table (c) with the adjoint baseline."""
    run_table_c(output_dir, budget, progress=not quiet, log=click.echo, data_dir=data_dir)
    click.echo(f"table written to {output_dir / 'table_c_noncartesian.md'}")


def main(argv=None):
    """Run the command; bad input gives one line on stderr and exit status 2 (as ``fastmri-recon``)."""
    run_command(table_c, argv, "run.py")


if __name__ == "__main__":
    main()

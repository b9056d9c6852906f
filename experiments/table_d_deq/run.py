"""Table (d) of SHINE (Ramzi et al., ICLR 2022), its MRI experiment: DEQ-XPDNet with SHINE against the unrolled XPDNet.

The command that makes the table; the training, evaluation and tabulation are
`fastmri_recon.workflows.table_d.run_table_d` (methods, budgets and outputs described there).

    python experiments/table_d_deq/run.py [--budget tiny|default|paper] [--data-dir DIR] [--output-dir DIR] [--quiet]
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click

from fastmri_recon.cli import run_command
from fastmri_recon.training.config import DEFAULT_DATA_DIR
from fastmri_recon.workflows.benchmark import BUDGETS
from fastmri_recon.workflows.table_d import TABLE_NAME, run_table_d


@click.command()
@click.option("--budget", type=click.Choice(BUDGETS), default="default", show_default=True, help="Network sizes and training steps.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="fastMRI data (multicoil_train/, multicoil_val/) or the demo data's folder (built if needed).",
)
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results/table_d"), show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def table_d(budget, data_dir, output_dir, quiet):
    """Train XPDNet and DEQ-XPDNet (SHINE, Jacobian-free, implicit backward) and write table (d) with zero-filled."""
    run_table_d(output_dir, data_dir, budget, progress=not quiet, log=click.echo)
    click.echo(f"table written to {output_dir / (TABLE_NAME + '.md')}")


def main(argv=None):
    """Run the command; bad input gives one line on stderr and exit status 2 (as ``fastmri-recon``)."""
    run_command(table_d, argv, "run.py")


if __name__ == "__main__":
    main()

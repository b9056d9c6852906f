"""Result tables: Markdown for people, JSON and CSV for machines."""

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

from fastmri_recon.errors import DataError
from fastmri_recon.files import make_directory
from fastmri_recon.evaluate.figures import comparison_figure
from fastmri_recon.evaluate.metrics import METRIC_NAMES

_DIGITS = {"PSNR": 2, "SSIM": 4, "NMSE": 4}


def _mean_std(mean, std, digits):
    spread = "n/a" if math.isnan(std) else f"{std:.{digits}f}"
    return f"{mean:.{digits}f} ({spread})"


def table_rows(results):
    """One row per `EvaluationResult`: dict column -> formatted cell, in display order."""
    rows = []
    for result in results:
        means, stds = result.summary.means(), result.summary.stds()
        row = {"model": result.model, "acquisition": result.acquisition, "volumes": str(len(result.summary))}
        row.update({name: _mean_std(means[name], stds[name], _DIGITS[name]) for name in METRIC_NAMES})
        row["s / slice"] = f"{result.seconds_per_slice:.4f}"
        row["parameters"] = f"{result.num_params:,}"
        rows.append(row)
    return rows


def markdown_table(results):
    """A Markdown table of metrics, mean (std) over volumes, one row per result."""
    return markdown_rows(table_rows(results))


def markdown_rows(rows):
    """A Markdown table of ``rows`` (dicts column -> cell text, the first one giving the columns)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def with_published_column(table_text, labels, published, header):
    """Add a last column of published figures to a Markdown table (`markdown_table`).

    Args:
        table_text: the table.
        labels: the row labels, in row order.
        published: dict label -> published PSNR (or None: ``-``).
        header: the column's header.
    """
    lines = table_text.splitlines()
    lines[0] += f" {header} |"
    lines[1] += "---|"
    for index, label in enumerate(labels, start=2):
        value = published.get(label)
        lines[index] += f" {value:.2f} |" if value is not None else " - |"
    return "\n".join(lines)


def write_results(out_dir, results):
    """Write ``results.json`` (everything, per volume included), ``results.csv``, ``results.md``
    and ``reconstructions.png`` (the example slice of every method, with error maps).

    All four are written into a temporary folder inside ``out_dir`` first and renamed into place
    together, so a failure (a full disk while drawing the figure) leaves none of them.

    Returns:
        list of the written paths.

    Raises:
        DataError: ``out_dir`` cannot be created or written (naming it).
    """
    out_dir = Path(out_dir)
    make_directory(out_dir)
    buffer = io.StringIO()
    rows = table_rows(results)
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    contents = {
        "results.json": json.dumps([r.to_json() for r in results], indent=2) + "\n",
        "results.csv": buffer.getvalue(),
        "results.md": markdown_table(results) + "\n",
    }
    volume, index, target, _ = results[0].example
    recons = {result.model: result.example[3] for result in results}
    try:
        with tempfile.TemporaryDirectory(prefix=".results.", dir=out_dir) as staging:
            staging = Path(staging)
            for name, text in contents.items():
                (staging / name).write_text(text)
            comparison_figure(staging / "reconstructions.png", target, recons, f"{volume}, slice {index}")
            names = [*contents, "reconstructions.png"]
            for name in names:
                os.replace(staging / name, out_dir / name)
    except (OSError, DataError) as err:  # DataError: a figure's own atomic write failed
        reason = err.strerror if isinstance(err, OSError) else str(err).rpartition("(")[2].rstrip(")")
        raise DataError(f"{out_dir}: cannot write the results ({reason or err}); none was written") from None
    return [out_dir / name for name in names]

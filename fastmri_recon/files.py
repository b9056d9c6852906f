"""Atomic file writing: an interrupted run leaves no half-written file, a failed write one line.

Writers create a temporary file beside the destination (``.NAME.*.tmp``; Keras weights:
``.STEM.tmp.weights.h5``) and rename it; `remove_temporaries` clears those a killed process left.
A directory that cannot be created or a write that fails (read-only or full disk) is a `DataError`
naming the path.
"""

import os
import tempfile
from pathlib import Path

from fastmri_recon.errors import DataError

TEMPORARY_PATTERNS = (".*.tmp", ".*.tmp.weights.h5")
"""Names of the temporary files of `atomic_path` and `save_weights`."""


def _write_error(path, err):
    return DataError(f"{path}: cannot write ({err.strerror or err})")


def make_directory(path):
    """Create the directory ``path`` and its parents if needed.

    Raises:
        DataError: naming ``path`` when it cannot be created (a regular file on the way, no permission).
    """
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{path}: cannot create this directory ({err.strerror or err})") from None


class atomic_path:
    """Context manager giving a temporary path beside ``path``, renamed to ``path`` on success.

    An exception inside the block removes the temporary file, so no half-written file is left; an
    `OSError` (a full or read-only disk) becomes a `DataError` naming ``path``.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        make_directory(self.path.parent)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as err:
            raise _write_error(self.path, err) from None
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                os.replace(self.tmp, self.path)
                return
            except OSError as err:
                exc = err
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(self.path, exc) from None


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (parent folders created)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_weights(model, path):
    """Save a Keras model's weights to ``path`` (a ``.weights.h5`` name) atomically.

    Keras needs the ``.weights.h5`` suffix, so the temporary file is ``.NAME.tmp.weights.h5`` beside
    ``path``; it is removed if saving fails.

    Raises:
        DataError: naming ``path`` when it cannot be written.
    """
    path = Path(path)
    make_directory(path.parent)
    tmp = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, err) from None
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(directory):
    """Remove the temporary files (`TEMPORARY_PATTERNS`) an interrupted process left in ``directory``.

    Call it once the directory's files are complete (a successful run): a temporary file of a
    process still writing would go too.
    """
    for pattern in TEMPORARY_PATTERNS:
        for path in Path(directory).glob(pattern):
            path.unlink(missing_ok=True)

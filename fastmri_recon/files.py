"""Atomic file writing: an interrupted run leaves no half-written file."""

import os
import tempfile
from pathlib import Path


class atomic_path:
    """Context manager giving a temporary path beside ``path``, renamed to ``path`` on success.

    An exception inside the block removes the temporary file, so no half-written file is left.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (parent folders created)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_weights(model, path):
    """Save a Keras model's weights to ``path`` (a ``.weights.h5`` name) atomically.

    Keras needs the ``.weights.h5`` suffix, so the temporary file is ``.NAME.tmp.weights.h5`` beside
    ``path``; it is removed if saving fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[: -len('.weights.h5')]}.tmp.weights.h5")
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

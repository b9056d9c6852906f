"""sha256 checksums of weights files: computed at publication, verified before every load."""

import hashlib
from pathlib import Path

from fastmri_recon.errors import ChecksumError

_CHUNK = 1 << 20


def sha256_file(path):
    """The hex sha256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path, expected, origin):
    """Check that ``path`` has the sha256 ``expected``; do nothing else with the file.

    Args:
        path: the weights file.
        expected: the recorded hex digest.
        origin: who recorded it (e.g. ``"manifest entry 'unet-demo'"``), for the message.

    Returns:
        the digest.

    Raises:
        ChecksumError: on a mismatch (the file is then not loaded).
    """
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{Path(path)}: sha256 {actual[:16]}... does not match {expected[:16]}... recorded by {origin}; "
            "not loaded (a tampered, corrupt or incomplete file: delete it and fetch it again)"
        )
    return actual

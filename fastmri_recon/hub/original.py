"""The papers' own weights: Keras-2 files of the benchmark code, checked on first use and converted once.

Manifest entries with ``"format": "keras2"`` name a Keras-2 HDF5 file of the original benchmark code
(``model_weights.h5`` of the ``zaccharieramzi/*`` Hub repositories) and the package architecture and
configuration that reproduce its network. On first use the file is found (a local copy or the
Hugging Face cache / Hub), its sha256 is checked, its weights are loaded into the package's model
(`models.legacy.load`: paired by position, every shape checked, h5py only) and saved as a Keras 3
``.weights.h5`` in the conversion cache, ``$FASTMRI_RECON_CACHE/converted/NAME/`` (default
``~/.cache/fastmri-recon``). Later uses load the converted file.

Trust on first use. These files have no published checksum, so their entries record ``"sha256":
"unknown"``: the first file seen is hashed, its sha256 printed and stored beside the conversion
(``trust.json``), and a later file with another sha256 is refused (`ChecksumError`) until that
record is deleted. An entry with a sha256 is verified before the file is opened, as the package's own
weights are. The converted file's own sha256 is recorded too and verified before every load, so the
conversion cache works offline without the original.
"""

import dataclasses
import datetime
import json
import os
import sys
from pathlib import Path

from fastmri_recon.errors import ChecksumError, DataError
from fastmri_recon.files import write_text
from fastmri_recon.hub.checksum import sha256_file, verify_sha256
from fastmri_recon.hub.manifest import UNKNOWN_SHA256

CACHE_ENV = "FASTMRI_RECON_CACHE"
TRUST_FILE = "trust.json"


def cache_root():
    """The package's cache folder: ``$FASTMRI_RECON_CACHE`` or ``~/.cache/fastmri-recon``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastmri-recon"


@dataclasses.dataclass(frozen=True)
class Conversion:
    """Where an entry's converted weights and its trust record live.

    Attributes:
        folder: ``CACHE/converted/NAME``.
        weights: the converted ``NAME.weights.h5``.
        record: the trust record ``trust.json``.
    """

    folder: Path

    @property
    def weights(self):
        return self.folder / f"{self.folder.name}.weights.h5"

    @property
    def record(self):
        return self.folder / TRUST_FILE

    def read_record(self):
        """The trust record (dict) or None; a damaged record is an error, not a reason to trust anew."""
        if not self.record.is_file():
            return None
        try:
            record = json.loads(self.record.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("original_sha256"), str):
            raise DataError(f"{self.record}: damaged trust record (delete it to trust the original file anew)")
        return record


def conversion_for(entry):
    """The `Conversion` of a manifest entry."""
    return Conversion(cache_root() / "converted" / entry["name"])


def _notice(message):
    print(message, file=sys.stderr, flush=True)


def check_original(entry, original, conversion, origin):
    """Check the original file's sha256 against the entry, or trust it on first use.

    Args:
        entry: the manifest entry.
        original: the original Keras-2 file.
        conversion: the entry's `Conversion`.
        origin: where the file came from, for messages.

    Returns:
        ``(digest, record)``: the file's sha256 and the trust record (None on first use).

    Raises:
        ChecksumError: the file differs from the entry's sha256 or from the recorded first file.
    """
    if entry["sha256"] != UNKNOWN_SHA256:
        return verify_sha256(original, entry["sha256"], origin), conversion.read_record()
    digest = sha256_file(original)
    record = conversion.read_record()
    if record is not None and record["original_sha256"] != digest:
        raise ChecksumError(
            f"{original}: sha256 {digest[:16]}... differs from the file first used for '{entry['name']}' "
            f"({record['original_sha256'][:16]}..., recorded {record.get('first_used', '?')} in {conversion.record}); "
            "not loaded (delete that record to trust the new file)"
        )
    return digest, record


def _convert(entry, original, conversion):
    """Load the Keras-2 file into the entry's model and save the converted weights."""
    from fastmri_recon.files import save_weights
    from fastmri_recon.hub.load import load_keras2

    multicoil = entry["acquisition"]["coils"] == "multicoil"
    model, legacy = load_keras2(original, entry["architecture"], entry["config"], multicoil)
    save_weights(model, conversion.weights)
    return legacy


def prepare(entry, original, origin):
    """The converted ``.weights.h5`` of a Keras-2 entry, converting (and trusting) on first use.

    Args:
        entry: a manifest entry with ``format: keras2``.
        original: the original file (local copy or Hugging Face cache).
        origin: where it came from, for messages.

    Returns:
        ``(converted_path, converted_sha256)``.

    Raises:
        ChecksumError: the original differs from the recorded sha256 (see `check_original`).
        ConfigError: the file does not fit the entry's architecture (names the layer and shapes).
        DataError: the file is not a Keras-2 weights file.
    """
    conversion = conversion_for(entry)
    digest, record = check_original(entry, original, conversion, origin)
    converted_earlier = record is not None and record["original_sha256"] == digest and conversion.weights.is_file()
    if converted_earlier and sha256_file(conversion.weights) == record.get("converted_sha256"):
        return conversion.weights, record["converted_sha256"]
    legacy = _convert(entry, original, conversion)
    converted = sha256_file(conversion.weights)
    first_use = record is None and entry["sha256"] == UNKNOWN_SHA256
    record = {
        "name": entry["name"],
        "original": str(original),
        "origin": origin,
        "original_sha256": digest,
        "keras_version": legacy.keras_version,
        "full_model_file": legacy.full_model,
        "converted_sha256": converted,
        "architecture": entry["architecture"],
        "config": entry["config"],
        "first_used": (record or {}).get("first_used") or datetime.date.today().isoformat(),
    }
    write_text(conversion.record, json.dumps(record, indent=2) + "\n")
    if first_use:
        _notice(
            f"trust on first use: '{entry['name']}' has no published checksum; sha256 of {original} is {digest} "
            f"(recorded in {conversion.record}: a later file with another sha256 is refused)"
        )
    _notice(f"converted {origin} (Keras {legacy.keras_version}) to {conversion.weights}")
    return conversion.weights, converted


def cached_conversion(entry):
    """The converted weights of an entry and their recorded sha256, if a previous use left them; else None."""
    conversion = conversion_for(entry)
    record = conversion.read_record()
    if record is None or not conversion.weights.is_file() or not record.get("converted_sha256"):
        return None
    if entry["sha256"] not in (UNKNOWN_SHA256, record["original_sha256"]):
        return None
    return conversion.weights, record["converted_sha256"]

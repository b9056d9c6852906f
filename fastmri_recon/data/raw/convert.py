"""Converting raw scanner data to fastMRI files: the reader picked by the file's content.

`detect_format` tells ISMRMRD (HDF5 with an ISMRMRD container) from Siemens twix (its raid or VB
header); `read_raw` reads either into fastMRI `Volume`\\ s (`fastmri_recon.data.raw.scan.scan_volumes`
documents the layout); `convert` writes them, all or none.
"""

import contextlib
import dataclasses
from pathlib import Path

from fastmri_recon.data.h5 import write_volume
from fastmri_recon.data.raw.ismrmrd import ismrmrd_container, read_ismrmrd
from fastmri_recon.data.raw.scan import scan_volumes
from fastmri_recon.data.raw.twix import is_twix, read_twix
from fastmri_recon.errors import DataError
from fastmri_recon.files import atomic_path

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
READERS = {"ismrmrd": read_ismrmrd, "twix": read_twix}


def detect_format(path):
    """The raw format of a file, by content: ``"ismrmrd"`` or ``"twix"``.

    Raises:
        DataError: naming the file when it is missing, empty, a fastMRI file already, or neither format.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, "rb") as handle:
        start = handle.read(len(_HDF5_SIGNATURE))
    if start == _HDF5_SIGNATURE:
        if ismrmrd_container(path) is not None:
            return "ismrmrd"
        raise DataError(f"{path}: an HDF5 file without an ISMRMRD container ('dataset' group with 'xml' and 'data'); "
                        "fastMRI files need no conversion")
    if is_twix(path):
        return "twix"
    raise DataError(
        f"{path}: neither ISMRMRD (HDF5) nor Siemens twix raw data (ISMRMRD streams: write them as HDF5 first)"
    )


def read_raw(path, coils=None, compression="svd"):
    """Read a raw file (ISMRMRD or twix) as fastMRI volumes.

    Args:
        path: the raw file.
        coils: compress to this many virtual coils (None: keep the coils).
        compression: ``"svd"`` or ``"geometric"``.

    Returns:
        dict from file-name suffix (``""``, ``"_rep1"``, ...) to `fastmri_recon.data.h5.Volume` with
        ``path`` None: complex64 k-space ``(slices, coils, H, W)`` (or ``(slices, H, W)`` for one coil),
        a float32 target (fully sampled) or a float32 ``(W,)`` mask (undersampled).

    Raises:
        DataError: naming the file and the field, for unreadable or unsupported data.
        ConfigError: a missing optional package (``pip install "fastmri-recon[raw]"``), a bad ``coils``.
    """
    return scan_volumes(READERS[detect_format(path)](path), coils, compression)


def convert(input, out_dir, coils=None, compression="svd"):
    """Convert a raw file into fastMRI files ``OUT_DIR/STEM[SUFFIX].h5``, all written at the end or none.

    Args:
        input: an ISMRMRD (``.h5`` / ``.mrd``) or Siemens twix (``.dat``) file.
        out_dir: the output directory (created).
        coils: compress to this many virtual coils (None: keep the coils).
        compression: ``"svd"`` or ``"geometric"``.

    Returns:
        list of the written paths: one per contrast / phase / repetition / set of the scan.

    Raises:
        DataError, ConfigError: as `read_raw`; a DataError when ``out_dir`` cannot be written
            (then no file is left).
    """
    input = Path(input)
    volumes = read_raw(input, coils, compression)
    paths = [Path(out_dir) / f"{input.stem}{suffix}.h5" for suffix in volumes]
    with contextlib.ExitStack() as pending:
        for path, volume in zip(paths, volumes.values()):
            write_volume(dataclasses.replace(volume, path=pending.enter_context(atomic_path(path))))
    return paths

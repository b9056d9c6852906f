"""Raw scanner data (ISMRMRD, Siemens twix) to fastMRI files, and fastMRI volumes back to ISMRMRD.

`convert` (`fastmri_recon.data.raw.convert`) reads a raw file with the reader its content calls for
(`ismrmrd.read_ismrmrd`, `twix.read_twix`), assembles fastMRI volumes (`scan.scan_volumes`) and
writes them; `export.write_ismrmrd` writes a fastMRI volume as ISMRMRD. The readers need the
optional ``raw`` extra (``pip install "fastmri-recon[raw]"``); without it they stop with a `ConfigError`.
"""

from fastmri_recon.data.raw.convert import convert, detect_format, read_raw

__all__ = ["convert", "detect_format", "read_raw"]

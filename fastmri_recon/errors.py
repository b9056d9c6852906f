"""Exceptions for bad user input.

Every error a user can cause (a missing or malformed file, a wrong option, an unknown model) is a
`FastMRIReconError`; its message names the file or field and says what was expected. The CLI turns
it into one line on stderr and exit status 2.
"""


class FastMRIReconError(Exception):
    """Base class of the errors caused by bad input."""


class DataError(FastMRIReconError, ValueError):
    """A data file, directory or array does not follow the expected schema."""


class ConfigError(FastMRIReconError, ValueError):
    """An option, configuration value or name (model, baseline) is not valid."""


class ChecksumError(DataError):
    """A downloaded or local weights file does not have the sha256 its manifest entry records."""

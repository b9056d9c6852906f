"""Exceptions for bad user input, and `quote` for the values their messages repeat.

Every error a user can cause (a missing or malformed file, a wrong option, an unknown model) is a
`FastMRIReconError`; its message names the file or field and says what was expected. The CLI turns
it into one line on stderr and exit status 2.
"""

import reprlib

QUOTE_LIMIT = 200
"""Most characters of an offending value that an error message repeats (`quote`)."""

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, QUOTE_LIMIT, QUOTE_LIMIT, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


def quote(value, limit=QUOTE_LIMIT):
    """``repr(value)`` for an error message: at most ``limit`` characters, built without the whole repr of a huge value."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FastMRIReconError(Exception):
    """Base class of the errors caused by bad input."""


class DataError(FastMRIReconError, ValueError):
    """A data file, directory or array does not follow the expected schema."""


class ConfigError(FastMRIReconError, ValueError):
    """An option, configuration value or name (model, baseline) is not valid."""


class ChecksumError(DataError):
    """A downloaded or local weights file does not have the sha256 its manifest entry records."""


class DivergenceError(FastMRIReconError):
    """A training run's loss or weights became NaN or Inf (too high a learning rate, bad data); its last checkpoint is finite."""

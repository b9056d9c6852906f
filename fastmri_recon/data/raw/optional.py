"""Importing the optional packages of the ``raw`` extra (ismrmrd, twixtools, pydicom)."""

import importlib

from fastmri_recon.errors import ConfigError

INSTALL_HINT = 'pip install "fastmri-recon[raw]"'


def require(module, purpose):
    """Import ``module``, or stop with a one-line `ConfigError` naming the ``raw`` extra.

    Args:
        module: the package's import name (``"ismrmrd"``, ``"twixtools"``, ``"pydicom"``).
        purpose: what needs it, for the message (``"reading ISMRMRD files"``).

    Returns:
        the imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{purpose} needs the optional package '{module}': {INSTALL_HINT}") from None

"""Files of Hugging Face Hub repositories: ``hf://`` URLs and downloads through ``huggingface_hub``.

Downloads go through ``huggingface_hub.hf_hub_download``, so they use its cache (``$HF_HUB_CACHE``,
by default ``~/.cache/huggingface/hub``), resume interrupted downloads, and honour
``HF_HUB_OFFLINE``: offline, a file is served from the cache or not at all. A revision that is a
commit hash (as manifest entries pin) is served from the cache without any network request. Hub
failures become a `DataError` (or `ConfigError` for a malformed name) of one line.
"""

import contextlib
import dataclasses
import logging
import os
import re
from pathlib import Path

from fastmri_recon import __version__
from fastmri_recon.errors import ConfigError, DataError

HF_SCHEME = "hf://"
_HF_URL = re.compile(r"^hf://(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?:@(?P<revision>[^/@]+))?(?:/(?P<file>.+))?$")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclasses.dataclass(frozen=True)
class HubFile:
    """A file of a Hub model repository.

    Attributes:
        repo_id: ``owner/name``.
        filename: path of the file in the repository; None: the weights file named by the
            repository's ``config.json``.
        revision: branch, tag or commit hash; None: ``main``.
    """

    repo_id: str
    filename: str = None
    revision: str = None

    @property
    def url(self):
        """The ``hf://`` URL of the file."""
        revision = f"@{self.revision}" if self.revision else ""
        return f"{HF_SCHEME}{self.repo_id}{revision}" + (f"/{self.filename}" if self.filename else "")


def parse_hf_url(url):
    """Parse ``hf://OWNER/REPO[@REVISION][/FILE]``.

    Returns:
        `HubFile`.

    Raises:
        ConfigError: for a malformed URL.
    """
    match = _HF_URL.match(url)
    if not match or (match["file"] and ".." in match["file"].split("/")):
        raise ConfigError(f"'{url}': expected hf://OWNER/REPO[@REVISION][/FILE], e.g. hf://me/unet-demo@main/unet-demo.weights.h5")
    return HubFile(match["repo"], match["file"], match["revision"])


def offline():
    """Whether ``HF_HUB_OFFLINE`` is set (now, or when ``huggingface_hub`` was imported)."""
    from huggingface_hub import constants

    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


@contextlib.contextmanager
def _quiet_hub_logs():
    """Silence huggingface_hub's retry warnings: a failure is reported once, by the caller's error."""
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hub_logger.setLevel(level)


def hub_download(hub_file, cache_dir=None):
    """Download a file of a Hub repository into the Hugging Face cache (or find it there).

    Args:
        hub_file: a `HubFile` with a ``filename``.
        cache_dir: the cache folder (None: huggingface_hub's, ``$HF_HUB_CACHE``).

    Returns:
        Path of the cached file.

    Raises:
        DataError: offline (or the Hub unreachable) without the file in the cache, an unknown
            repository, revision or file, or another Hub error.
        ConfigError: for an invalid repository id.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url, is_offline = hub_file.url, offline()
    try:
        with _quiet_hub_logs():
            path = hf_hub_download(
                hub_file.repo_id,
                hub_file.filename,
                revision=hub_file.revision,
                cache_dir=cache_dir,
                local_files_only=is_offline,
                library_name="fastmri-recon",
                library_version=__version__,
            )
    except LocalEntryNotFoundError:
        cache = cache_dir or constants.HF_HUB_CACHE
        if is_offline:
            why = "HF_HUB_OFFLINE is set: fetch it once with network access ('fastmri-recon weights fetch ...') or use a local copy"
        else:
            why = "the Hub could not be reached (no network?)"
        raise DataError(f"{url}: not in the Hugging Face cache ({cache}) and {why}") from None
    except RepositoryNotFoundError:
        raise DataError(f"{url}: no Hub repository {hub_file.repo_id} (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise DataError(f"{url}: the repository {hub_file.repo_id} has no revision '{hub_file.revision}'") from None
    except EntryNotFoundError:
        raise DataError(f"{url}: the repository {hub_file.repo_id} has no file '{hub_file.filename}'") from None
    except HFValidationError as err:
        raise ConfigError(f"{url}: {' '.join(str(err).split())}") from None
    except (HfHubHTTPError, OSError) as err:
        raise DataError(f"{url}: download failed ({' '.join(str(err).split())[:200]})") from None
    return Path(path)

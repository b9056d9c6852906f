"""Loading pretrained weights: resolve, verify the sha256, build from the registry, load the weights.

The model is always built by the package's registry from the stored architecture name and
constructor configuration (JSON values), and its weights are loaded from a ``.weights.h5`` file
(arrays only): no pickle, no ``keras.models.load_model`` of a file, no code from the download.
The checksum is verified before the file is opened.
"""

import dataclasses
import json

from fastmri_recon.errors import ConfigError
from fastmri_recon.hub.checksum import sha256_file, verify_sha256
from fastmri_recon.hub.locate import resolve

KERAS_KEYS = ("name", "trainable", "dtype")
"""Keys of ``get_config()`` that belong to Keras' ``Layer``, not to a model's constructor."""


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A loaded model with where it came from.

    Attributes:
        model: the ``keras.Model`` with its weights.
        source: the `locate.Source` (name, file, architecture, config, coils, scale factor, origin).
        sha256: the weights file's sha256 (verified against the record when there is one).
    """

    model: object
    source: object
    sha256: str

    @property
    def name(self):
        return self.source.name

    @property
    def scale_factor(self):
        """Multiply k-space by it before the model, divide the images by it after."""
        return self.source.scale_factor


def model_config(model):
    """A model's constructor configuration as JSON values (``get_config()`` without Keras' own keys).

    Raises:
        ConfigError: when the configuration holds values JSON cannot represent.
    """
    config = {k: v for k, v in model.get_config().items() if k not in KERAS_KEYS}
    try:
        return json.loads(json.dumps(config))
    except TypeError as err:
        raise ConfigError(f"{type(model).__name__}: configuration is not JSON-serialisable ({err})") from None


def build_model(architecture, config, origin):
    """Build the registry's ``architecture`` with the constructor ``config`` (no weights yet).

    Raises:
        ConfigError: an unknown architecture (with close matches) or a config the class does not take.
    """
    from fastmri_recon.models.registry import build, get_entry

    try:
        cls = get_entry(architecture).load_class()
    except ConfigError as err:
        raise ConfigError(f"{origin}: architecture: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: config: expected an object of constructor arguments")
    unknown = sorted(set(config) & set(KERAS_KEYS))
    if unknown:
        raise ConfigError(f"{origin}: config: {', '.join(unknown)} are Keras' keys, not constructor arguments")
    try:
        return build(architecture, **config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{origin}: config does not fit architecture '{architecture}' ({cls.__name__}): {err}") from None


def load_source(source):
    """Verify, build and load a `locate.Source`.

    Returns:
        `Pretrained`.

    Raises:
        ChecksumError: the file's sha256 differs from the record (nothing is loaded).
        ConfigError: architecture / config / weights mismatch.
    """
    from fastmri_recon.models.weights import load_checked

    if source.sha256 is not None:
        digest = verify_sha256(source.weights, source.sha256, source.origin)
    else:
        digest = sha256_file(source.weights)
    model = build_model(source.architecture, source.config, source.origin)
    what = f"architecture '{source.architecture}' with config {json.dumps(source.config)} ({source.origin})"
    load_checked(model, source.weights, source.coils == "multicoil", what)
    return Pretrained(model, source, digest)


def load_pretrained(name_or_path, weights="best", manifest=None, cache_dir=None):
    """Load pretrained weights with their description (see `from_pretrained` for the arguments).

    Returns:
        `Pretrained`.
    """
    return load_source(resolve(name_or_path, weights, manifest, cache_dir))


def from_pretrained(name_or_path, weights="best", manifest=None, cache_dir=None):
    """A reconstruction model with pretrained weights.

    Args:
        name_or_path: a name of the weights manifest (``fastmri-recon weights list``), an
            ``hf://OWNER/REPO[@REVISION][/FILE]`` URL, or a local path: a published folder, a
            training run directory, a ``.weights.h5`` file in either, or its ``config.json``.
        weights: ``best`` or ``final``, for training run directories.
        manifest: the manifest file (None: ``$FASTMRI_RECON_MANIFEST`` or the source tree's).
        cache_dir: the Hugging Face cache folder (None: huggingface_hub's default).

    Returns:
        keras.Model, called as ``model((kspace, mask[, smaps]))`` on k-space scaled as in training
        (``load_pretrained(...).scale_factor``, 1e6 for the package's pipelines).

    Raises:
        ConfigError: an unknown name (with close matches), a malformed URL, an architecture or
            config that does not match the weights.
        ChecksumError: the file's sha256 differs from the manifest's (the file is not loaded).
        DataError: a missing file, or weights neither local nor in the cache while offline.
    """
    return load_pretrained(name_or_path, weights, manifest, cache_dir).model

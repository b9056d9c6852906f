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

    The config comes from a file that may not be trusted (a published folder, an ``hf://``
    repository): it must hold plain JSON values (`training.config.check_plain_json`).

    Raises:
        ConfigError: an unknown architecture (with close matches), a config of other values than
            plain JSON (a serialized Keras object) or one the class does not take.
    """
    from fastmri_recon.models.registry import build, get_entry
    from fastmri_recon.training.config import check_plain_json

    try:
        cls = get_entry(architecture).load_class()
    except ConfigError as err:
        raise ConfigError(f"{origin}: architecture: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{origin}: config: expected an object of constructor arguments")
    unknown = sorted(set(config) & set(KERAS_KEYS))
    if unknown:
        raise ConfigError(f"{origin}: config: {', '.join(unknown)} are Keras' keys, not constructor arguments")
    check_plain_json(config, f"{origin}: config")
    try:
        return build(architecture, **config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{origin}: config does not fit architecture '{architecture}' ({cls.__name__}): {err}") from None


def load_keras2(path, architecture, config=None, multicoil=False):
    """Build the registry's ``architecture`` and load a Keras-2 weights file of the benchmark code into it.

    Args:
        path: a Keras-2 weights-only or full-model HDF5 file (`models.legacy.h5`).
        architecture: the registry name whose configuration reproduces the original network
            (``unet-benchmark``, ``pdnet-benchmark``, ``cascade-net``, ``kiki-net-benchmark``,
            ``xpdnet-challenge``, ``ncpdnet-benchmark``).
        config: constructor arguments (JSON values) replacing the preset's, e.g. a smaller
            configuration or ``crop_size``.
        multicoil: whether the model is built for multi-coil inputs.

    Returns:
        ``(model, legacy)``: the model with the file's weights and the `models.legacy.h5.LegacyWeights`
        read.

    Raises:
        DataError: not a Keras-2 weights file.
        ConfigError: an unknown architecture, a config it does not take, or weights that do not fit
            (the message names the file, the layer and both shapes).
    """
    from fastmri_recon.models.legacy.load import load_legacy_weights
    from fastmri_recon.models.weights import input_shapes

    config = dict(config or {})
    model = build_model(architecture, config, str(path))
    model.build(input_shapes(model, multicoil))
    what = f"architecture '{architecture}' with config {json.dumps(config)}"
    return model, load_legacy_weights(model, path, what)


def from_keras2(path, architecture, config=None, multicoil=False):
    """A model with the weights of a Keras-2 file of the benchmark code (see `load_keras2`).

    Returns:
        keras.Model.
    """
    return load_keras2(path, architecture, config, multicoil)[0]


def load_source(source, crop_size=None):
    """Verify, build and load a `locate.Source`.

    Args:
        source: the `locate.Source`.
        crop_size: an output size ``(h, w)`` replacing the stored one (the weights do not depend on
            it; e.g. the data's reconstruction size), or None.

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
    config = source.config if crop_size is None else {**source.config, "crop_size": [int(n) for n in crop_size]}
    model = build_model(source.architecture, config, source.origin)
    what = f"architecture '{source.architecture}' with config {json.dumps(config)} ({source.origin})"
    load_checked(model, source.weights, source.coils == "multicoil", what)
    return Pretrained(model, source, digest)


def load_pretrained(name_or_path, weights="best", manifest=None, cache_dir=None, crop_size=None):
    """Load pretrained weights with their description (see `from_pretrained` for the arguments).

    Returns:
        `Pretrained`.
    """
    return load_source(resolve(name_or_path, weights, manifest, cache_dir), crop_size)


def from_pretrained(name_or_path, weights="best", manifest=None, cache_dir=None, crop_size=None):
    """A reconstruction model with pretrained weights.

    Args:
        name_or_path: a name of the weights manifest (``fastmri-recon weights list``; the
            papers' own networks, such as ``pdnet-fastmri``, are converted from the original Keras-2
            files on first use, `hub.original`), an
            ``hf://OWNER/REPO[@REVISION][/FILE]`` URL, or a local path: a published folder, a
            training run directory, a ``.weights.h5`` file in either, or its ``config.json``.
        weights: ``best`` or ``final``, for training run directories.
        manifest: the manifest file (None: ``$FASTMRI_RECON_MANIFEST`` or the source tree's).
        cache_dir: the Hugging Face cache folder (None: huggingface_hub's default).
        crop_size: an output size ``(h, w)`` replacing the stored one, or None.

    Returns:
        keras.Model, called as ``model((kspace, mask[, smaps]))`` on k-space scaled as in training
        (``load_pretrained(...).scale_factor``, 1e6 for the package's pipelines).

    Raises:
        ConfigError: an unknown name (with close matches), a malformed URL, an architecture or
            config that does not match the weights.
        ChecksumError: the file's sha256 differs from the manifest's (the file is not loaded).
        DataError: a missing file, or weights neither local nor in the cache while offline.
    """
    return load_pretrained(name_or_path, weights, manifest, cache_dir, crop_size).model

"""Reading Keras-2 legacy HDF5 weight files (``save_weights("x.h5")`` and ``model.save("x.h5")``).

The networks the benchmark papers published on the Hugging Face Hub are Keras-2 files that Keras 3
cannot read. Their format, as Keras 2 wrote it:

- **weights-only file**: root attribute ``layer_names`` (every layer of ``model.layers`` in order,
  weightless ones included), one group per layer named after it whose attribute ``weight_names``
  lists its weights (``layer.trainable_weights + layer.non_trainable_weights``), each a dataset at
  ``<layer>/<weight name>``. A nested model is one group whose ``weight_names`` flatten its inner
  weights. Attributes above 64 KB are split into ``layer_names0``, ``layer_names1``, ...
- **full-model file**: the same structure inside a group ``model_weights/``, beside root attributes
  ``model_config`` / ``training_config`` and a group ``optimizer_weights/``, both ignored here.

Only h5py reads the file: arrays and name lists, nothing unpickled, no configuration deserialised,
no code run. HDF5 external links and datasets with external storage are refused, so a file cannot
make the reader open other files of the host.
"""

import dataclasses

import h5py
import numpy as np

from fastmri_recon.errors import DataError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class LegacyLayer:
    """One layer group of a legacy file that holds weights.

    Attributes:
        name: the group (layer) name.
        weight_names: the weight names, in the file's (Keras 2's legacy) order.
        arrays: float arrays, one per weight name, in that order.
    """

    name: str
    weight_names: tuple
    arrays: tuple


@dataclasses.dataclass(frozen=True)
class LegacyWeights:
    """The weighted layers of a legacy file, in file order.

    Attributes:
        path: the file.
        layers: `LegacyLayer` tuple, in the order of the file's ``layer_names``, weightless layers left out.
        full_model: whether it was a full-model file (weights under ``model_weights/``).
        keras_version: the writer's Keras version, as the file records it (or ``"unknown"``).
    """

    path: str
    layers: tuple
    full_model: bool
    keras_version: str

    @property
    def n_values(self):
        """Total number of stored values."""
        return int(sum(array.size for layer in self.layers for array in layer.arrays))


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _names(group, attribute, where):
    """A (possibly split) name-list attribute: ``attribute`` or ``attribute0``, ``attribute1``, ..."""
    if attribute in group.attrs:
        values = list(group.attrs[attribute])
    elif f"{attribute}0" in group.attrs:
        values, chunk = [], 0
        while f"{attribute}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{attribute}{chunk}"])
            chunk += 1
    else:
        raise DataError(f"{where}: no '{attribute}' attribute: not a Keras-2 weights file")
    return [_text(v) for v in values]


def _dataset(group, path, where):
    link = group.get(path, getlink=True)
    if link is None:
        raise DataError(f"{where}: weight '{path}' is listed but absent")
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"{where}: weight '{path}' is an external link to {link.filename}: refused")
    item = group[path]
    if not isinstance(item, h5py.Dataset):
        raise DataError(f"{where}: weight '{path}' is not a dataset")
    if item.external:
        raise DataError(f"{where}: weight '{path}' has external storage: refused")
    if item.dtype.kind not in "fiu":
        raise DataError(f"{where}: weight '{path}' has dtype {item.dtype}, expected numbers")
    return np.asarray(item[()])


def read_legacy_weights(path):
    """Read the weighted layers of a Keras-2 legacy HDF5 weights or full-model file.

    Args:
        path: the file.

    Returns:
        `LegacyWeights`.

    Raises:
        DataError: for a missing file, a file that is not HDF5, a file without Keras-2 weights
            (no ``layer_names``), a listed weight that is absent, not a dataset, external or not
            numeric.
    """
    where = str(path)
    try:
        with open(path, "rb") as handle:
            signature = handle.read(len(_HDF5_SIGNATURE))
    except OSError as err:
        raise DataError(f"{where}: cannot read ({err.strerror or err})") from None
    if signature != _HDF5_SIGNATURE:
        raise DataError(f"{where}: not an HDF5 file (no HDF5 signature)")
    try:
        with h5py.File(path, "r") as handle:
            full_model = "layer_names" not in handle.attrs and "layer_names0" not in handle.attrs
            if full_model:
                if "model_weights" not in handle:
                    raise DataError(f"{where}: neither 'layer_names' nor a 'model_weights' group: not a Keras-2 weights file")
                group = handle["model_weights"]
            else:
                group = handle
            version = _text(group.attrs.get("keras_version", handle.attrs.get("keras_version", "unknown")))
            layers = []
            for name in _names(group, "layer_names", where):
                if name not in group:
                    raise DataError(f"{where}: layer '{name}' is listed in layer_names but has no group")
                weight_names = _names(group[name], "weight_names", f"{where}: layer '{name}'")
                if weight_names:
                    arrays = tuple(_dataset(group[name], w, f"{where}: layer '{name}'") for w in weight_names)
                    layers.append(LegacyLayer(name, tuple(weight_names), arrays))
    except OSError as err:
        raise DataError(f"{where}: not a readable HDF5 file ({' '.join(str(err).split())[:200]})") from None
    return LegacyWeights(where, tuple(layers), full_model, version)

"""Creating a model's weights and loading a ``.weights.h5`` file into it, checked.

``.weights.h5`` files hold arrays only (HDF5 written by Keras): loading one runs no code and
unpickles nothing. The model itself comes from the registry and its configuration, never from the
file. Keras refuses a file lacking weights the model has, but silently ignores arrays the model
does not have (a file of a bigger configuration); `load_checked` refuses both.
"""

import h5py
import numpy as np

from fastmri_recon.errors import ConfigError, DataError

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def input_shapes(model, multicoil):
    """The input shapes a model is built with (structure only: the models' weights depend on their config).

    Args:
        model: a registered model.
        multicoil: whether k-space has a coil axis.

    Returns:
        list of shapes: ``(kspace, mask[, smaps])`` for Cartesian models, ``(kspace, trajectory,
        density[, smaps])`` for non-Cartesian ones; the images' shape (with the maps': a list) for a
        `learned_trajectory.LearnedTrajectoryModel`.
    """
    coils = (None,) if multicoil else ()
    smaps = multicoil and model.needs_smaps
    if getattr(model, "acquisition", "cartesian") == "learned":  # images on the grid ([coil images, smaps])
        image = (None, *coils, *model.image_shape)
        return [image, image] if smaps else image
    if getattr(model, "acquisition", "cartesian") == "noncartesian":
        image = (None, *coils, *(None,) * len(model.image_shape))
        shapes = [(None, *coils, None), (None, len(model.image_shape), None), (None, None)]
        return shapes + ([image] if smaps else [])
    kspace = (None, *coils, None, None)
    return [kspace, (None, None)] + ([kspace] if smaps else [])


def _stored_values(path):
    sizes = []
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda _, item: sizes.append(item.size) if isinstance(item, h5py.Dataset) else None)
    return int(sum(sizes))


def load_checked(model, path, multicoil, what):
    """Build ``model`` and load the weights file ``path`` into it.

    Args:
        model: an unbuilt registered model.
        path: a ``.weights.h5`` file.
        multicoil: whether the model is built for multi-coil inputs.
        what: a description of the model for messages (``"architecture 'unet' with config {...}"``).

    Returns:
        the model.

    Raises:
        DataError: for a file that is not HDF5.
        ConfigError: when the file's weights do not match the model's (missing, extra or
            differently shaped arrays).
    """
    with open(path, "rb") as handle:
        if handle.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
            raise DataError(f"{path}: not a .weights.h5 file (no HDF5 signature)")
    model.build(input_shapes(model, multicoil))
    try:
        model.load_weights(path)
    except ValueError as err:
        first = " ".join(str(err).split("\n\n")[:2][-1].split())
        raise ConfigError(f"{path}: weights do not match {what}: {first}") from None
    expected = int(sum(np.prod(w.shape) for w in model.weights))
    stored = _stored_values(path)
    if stored != expected:
        raise ConfigError(f"{path}: weights do not match {what}: the file holds {stored:,} values, the model has {expected:,}")
    return model

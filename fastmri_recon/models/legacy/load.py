"""Loading a Keras-2 legacy weights file into a package model, checked.

Keras 2's ``load_weights`` (``by_name=False``) took the model's layers that have weights and the
file's layers whose weight list is not empty, paired them by position and assigned each pair's
values in order; names were never compared (they depend on how many layers the training process
had created before). `load_legacy_weights` does the same with the model's `layouts.original_layout`,
and checks what Keras 2 checked and more: the number of weighted layers, the number of weights of
each and every shape (the first layer that does not fit is named). Nothing is assigned unless
everything fits.
"""

import numpy as np

from fastmri_recon.errors import ConfigError
from fastmri_recon.models.legacy.h5 import read_legacy_weights
from fastmri_recon.models.legacy.layouts import original_layout


def _check_layer(path, index, layer, variables, what):
    if len(layer.arrays) != len(variables):
        raise ConfigError(
            f"{path}: weighted layer {index} '{layer.name}' holds {len(layer.arrays)} arrays where {what} "
            f"expects {len(variables)}: the file is not of this architecture"
        )
    for name, array, variable in zip(layer.weight_names, layer.arrays, variables):
        if tuple(array.shape) != tuple(variable.shape):
            raise ConfigError(
                f"{path}: weighted layer {index} '{layer.name}', weight '{name}' has shape {tuple(array.shape)} "
                f"where {what} expects {tuple(variable.shape)}"
            )


def load_legacy_weights(model, path, what=None):
    """Assign the weights of a Keras-2 legacy file to a built model.

    Args:
        model: a built model whose class has a Keras-2 layout (`layouts.LAYOUTS`).
        path: a Keras-2 weights-only or full-model HDF5 file.
        what: a description of the model for messages (default: its class name).

    Returns:
        `h5.LegacyWeights` read from the file (its layers, version, whether it was a full model).

    Raises:
        DataError: for a file that is not a readable Keras-2 weights file.
        ConfigError: when the file's weighted layers do not fit the model (their number, the number
            of weights of a layer, a shape): the message names the file, the layer and both shapes.
    """
    what = what or type(model).__name__
    groups = original_layout(model)
    legacy = read_legacy_weights(path)
    for index, (layer, variables) in enumerate(zip(legacy.layers, groups)):
        _check_layer(path, index, layer, variables, what)
    if len(legacy.layers) != len(groups):
        raise ConfigError(
            f"{path}: {len(legacy.layers)} weighted layers where {what} expects {len(groups)}: "
            "the file is not of this architecture and configuration"
        )
    for layer, variables in zip(legacy.layers, groups):
        for array, variable in zip(layer.arrays, variables):
            variable.assign(np.asarray(array, dtype=variable.dtype))
    return legacy

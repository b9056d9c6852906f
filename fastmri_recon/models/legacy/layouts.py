"""Where each weight of the benchmark code's Keras-2 networks lives in the package's models.

A Keras-2 weights file lists the original network's weighted layers in order, each with its weights
(`h5.LegacyLayer`). For each model class whose configuration can reproduce an original network,
`original_layout` returns the model's variables grouped the same way: one list per weighted layer
of the original, in the file's order, each list in that layer's weight order. `load.load_legacy_weights`
pairs the two by position, as Keras 2's ``load_weights`` did, and checks every shape.

The original orders (fastmri-reproducible-benchmark, as its Keras-2 models created their layers):

- U-net (``old_unet.unet`` / ``unet.unet``): the encoder's convolutions from the finest level, the
  bottom ones, then for each level going up its 2x2 up-convolution and its two convolutions, the
  4-channel 1x1 convolution and the output one.
- Cascade-net: each cascade's convolutions. PD-net: each iteration's 3 dual then 3 primal
  convolutions. NC-PDNet: the map refiner (multi-coil, one layer), then one layer per iteration
  holding its 3 convolutions.
- KIKI-net (``full_kiki_net``, trained block by block): one nested layer with the first K-, I- and
  K-nets' convolutions, then the last I-net's convolutions one by one.
- XPDNet: the map refiner (one layer, a U-net in the order above), then one layer per iteration:
  the MWCNN's full-resolution convolutions (first ones, last hidden one, output one), then for each
  scale its down, up and expanding convolutions.
"""

from fastmri_recon.errors import ConfigError


def _conv_weights(conv):
    """A convolution's weights in Keras' order: kernel, then bias (if any)."""
    return list(conv.weights)


def unet_convolutions(unet):
    """The convolutions of a `layers.unet.UNet` in the benchmark's creation order (see the module docstring)."""
    convs = [conv for block in unet.encoder for conv in block.convs]
    for level in reversed(range(len(unet.decoder))):
        convs.append(unet.upconvs[level])
        convs.extend(unet.decoder[level].convs)
    if unet.penultimate_conv is not None:
        convs.append(unet.penultimate_conv)
    return convs + [unet.output_conv]


def stack_convolutions(stack):
    """The convolutions of a `layers.conv.ComplexConvStack`: the hidden ones, then the output one."""
    return list(stack.hidden.convs) + [stack.output_conv]


def mwcnn_weights(mwcnn):
    """An `layers.mwcnn.MWCNN`'s weights in the benchmark MWCNN's order (see the module docstring)."""
    convs = list(mwcnn.head.convs) + list(mwcnn.tail.convs) + [mwcnn.output_conv]
    for down, up, expand in zip(mwcnn.down, mwcnn.up, mwcnn.expand):
        convs.extend(list(down.convs) + list(up.convs) + list(expand.convs))
    return [weight for conv in convs for weight in _conv_weights(conv)]


def _per_conv(convs):
    return [_conv_weights(conv) for conv in convs]


def _unet_layout(model):
    return _per_conv(unet_convolutions(model.unet))


def _cascade_layout(model):
    return _per_conv([conv for cnn in model.cnns for conv in stack_convolutions(cnn)])


def _pdnet_layout(model):
    convs = []
    for dual_cnn, primal_cnn in zip(model.dual_cnns, model.primal_cnns):
        convs += stack_convolutions(dual_cnn) + stack_convolutions(primal_cnn)
    return _per_conv(convs)


def _kiki_layout(model):
    if model.n_iter != 2:
        raise ConfigError(f"KIKINet: the benchmark's KIKI-net has 2 iterations (K, I, K, I), this one {model.n_iter}")
    nested = [model.knets[0], model.inets[0], model.knets[1]]
    first = [w for cnn in nested for conv in stack_convolutions(cnn) for w in _conv_weights(conv)]
    return [first] + _per_conv(stack_convolutions(model.inets[1]))


def _refiner_group(refiner):
    return [w for conv in unet_convolutions(refiner.denoiser) for w in _conv_weights(conv)]


def _xpdnet_layout(model):
    if model.image_net != "mwcnn" or not model.primal_only:
        raise ConfigError(
            "XPDNet: only the benchmark's primal-only XPDNet with an MWCNN denoiser has a Keras-2 layout "
            f"(image_net={model.image_net!r}, primal_only={model.primal_only})"
        )
    groups = []
    if model.refine_smaps:
        groups.append(_refiner_group(model.smaps_refiner))
    return groups + [mwcnn_weights(net.denoiser) for net in model.image_nets]


def _ncpdnet_layout(model):
    groups = [_refiner_group(model.smaps_refiner)] if model.refine_smaps else []
    return groups + [[w for conv in stack_convolutions(cnn) for w in _conv_weights(conv)] for cnn in model.primal_cnns]


LAYOUTS = {
    "UNetPostProcessing": _unet_layout,
    "CascadeNet": _cascade_layout,
    "PDNet": _pdnet_layout,
    "KIKINet": _kiki_layout,
    "XPDNet": _xpdnet_layout,
    "NCPDNet": _ncpdnet_layout,
}
"""The layout function of each model class that has a Keras-2 original."""


def original_layout(model):
    """The variables of a built ``model`` grouped as the original network's weighted layers.

    Args:
        model: a built model of a class in `LAYOUTS`.

    Returns:
        list of lists of ``keras.Variable``: one list per weighted layer of the original, in the
        original file's order; each in that layer's weight order.

    Raises:
        ConfigError: for a class without a Keras-2 original, or a configuration the original
            network cannot have.
    """
    name = type(model).__name__
    if name not in LAYOUTS:
        raise ConfigError(f"{name}: no Keras-2 original network to load weights from (known: {', '.join(LAYOUTS)})")
    return LAYOUTS[name](model)

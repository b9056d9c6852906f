"""The unrolled cross-domain skeleton of PD-net, XPDNet, NC-PDNet and the DEQ-XPDNet iteration.

One iteration, for an encoding ``A`` (`ops.encoding.CartesianEncoding`, `NonCartesianEncoding` or a
wrapper of either: anything with ``forward`` and ``adjoint``), the measured data ``y``, a primal
buffer ``x`` of images and a dual buffer ``d`` of k-spaces:

    d <- dual_step(d, A x[..., c], y)          (k-space domain)
    x <- primal_step(x, A^H d[..., 0])         (image domain)

``c`` is the evaluated primal channel (PD-net evaluates ``x[..., 1]``, the others ``x[..., 0]``).
PD-net's dual step is a residual k-space CNN of ``[d, A x[..., c], y]``; the primal-only networks
(XPDNet, NC-PDNet, the DEQ) take the measurements residual ``A x - y`` as their dual
(`residual_dual`), which XPDNet may correct with a k-space CNN (`corrected_residual_dual`). The
primal step is each network's image CNN. The networks differ only in these steps and in how they
start the buffers; the skeleton does not know the acquisition.

Shapes: primal buffer complex64 ``(batch, *N, n_primal)`` (``N`` the image grid, 2D or 3D); dual
buffer complex64 ``(batch, [coils,] *K, n_dual)`` (``K`` the k-space grid or the ``M`` samples of a
non-Cartesian trajectory); measured data complex64 ``(batch, [coils,] *K)``.
"""

import tensorflow as tf


def copies(tensor, channels):
    """``channels`` copies of ``tensor`` stacked on a new last axis: ``tensor.shape + (channels,)``."""
    return tf.repeat(tensor[..., None], channels, axis=-1)


def residual_dual(dual, evaluated, measured):
    """The primal-only dual step: ``A x - y`` as a one-channel dual buffer (``dual`` is ignored).

    Args:
        dual: the previous dual buffer, or None.
        evaluated: complex64 ``A x``, the shape of ``measured``.
        measured: complex64 ``y``.

    Returns:
        complex64 ``measured.shape + (1,)``.
    """
    return (evaluated - measured)[..., None]


def corrected_residual_dual(kspace_net):
    """A dual step ``r + K([r, A x, y])`` with ``r = A x - y`` and a k-space network ``K``.

    Args:
        kspace_net: a layer mapping complex64 ``(..., 3)`` to ``(..., 1)`` (XPDNet's
            `layers.conv.ComplexConvStack`, applied to each coil's k-space).

    Returns:
        a dual step (see the module docstring).
    """

    def step(dual, evaluated, measured):
        residual = evaluated - measured
        correction = kspace_net(tf.stack([residual, evaluated, measured], axis=-1))
        return (residual + correction[..., 0])[..., None]

    return step


def cross_domain_step(primal, dual, measured, encoding, primal_step, dual_step, evaluated_channel=0):
    """One iteration of the skeleton (module docstring).

    Args:
        primal: complex64 ``(batch, *N, n_primal)``.
        dual: complex64 ``(batch, [coils,] *K, n_dual)``, or None for a primal-only network.
        measured: complex64 ``(batch, [coils,] *K)``.
        encoding: the batch's encoding operator.
        primal_step: ``(primal, back) -> primal`` with ``back = A^H dual[..., 0]`` complex64 ``(batch, *N)``.
        dual_step: ``(dual, evaluated, measured) -> dual`` with ``evaluated = A primal[..., c]``.
        evaluated_channel: the primal channel ``c`` that the forward operator sees.

    Returns:
        ``(primal, dual)``, the updated buffers.
    """
    evaluated = encoding.forward(primal[..., evaluated_channel])
    dual = dual_step(dual, evaluated, measured)
    back = encoding.adjoint(dual[..., 0])
    return primal_step(primal, back), dual


def unroll(primal, dual, measured, encoding, steps, evaluated_channel=0):
    """Iterate `cross_domain_step` once per ``(primal_step, dual_step)`` pair of ``steps``.

    Args:
        primal, dual, measured, encoding, evaluated_channel: see `cross_domain_step`.
        steps: sequence of ``(primal_step, dual_step)``, one per unrolled iteration.

    Returns:
        ``(primal, dual)`` after the last iteration.
    """
    for primal_step, dual_step in steps:
        primal, dual = cross_domain_step(primal, dual, measured, encoding, primal_step, dual_step, evaluated_channel)
    return primal, dual


def primal_update(net, residual=True):
    """A primal step ``x <- x + net([x, back])`` (``net([x, back])`` with ``residual=False``).

    Args:
        net: a layer mapping complex64 ``(batch, *N, n + 1)`` to ``(batch, *N, n)`` (PD-net's and
            NC-PDNet's CNNs; XPDNet's denoisers, residual themselves, with ``residual=False``).
        residual: whether to add the buffer to the network's output.

    Returns:
        ``(primal, back) -> primal``.
    """

    def step(primal, back):
        update = net(tf.concat([primal, back[..., None]], axis=-1))
        return primal + update if residual else update

    return step

"""Non-uniform FFT (NUFFT) in pure TensorFlow: exponential-of-semicircle gridding, 2D and 3D.

Convention (docs/architecture.md). For an image ``x`` of spatial shape ``N = (N_0, ..., N_{d-1})`` and a
trajectory of ``M`` points ``w_j`` in radians in ``[-pi, pi)^d``, the type-2 NUFFT ("forward", image
-> non-uniform k-space samples) is::

    y_j = (1 / sqrt(prod N)) * sum_n x[n] * exp(-i w_j . (n - N // 2))

and the type-1 NUFFT with the conjugate sign ("adjoint") is its exact conjugate transpose. The
trajectory's first coordinate goes with the first spatial axis of the image (rows in 2D, depth in 3D).
With this scaling and a trajectory that samples ``[-pi, pi)^d`` on the Cartesian grid
``2 pi (k - N // 2) / N``, the NUFFT equals the centered orthonormal FFT of ``ops.fourier``.

Method (classical gridding, as in Beatty et al. 2005 and Barnett et al. 2019):

1. divide the image by the Fourier transform of the interpolation kernel ("deapodisation"; the
   transform is computed once by Gauss-Legendre quadrature) and by ``sqrt(prod N)``;
2. zero-pad it to the oversampled grid ``G = oversampling * N`` (rounded up to an even size) with
   the image centre ``N // 2`` at ``G // 2``, and take its (uncentered) FFT; in 3D the zeros are
   skipped: 2D FFTs of the last two axes of the ``N_0`` non-zero slices first, then 1D FFTs of the
   first axis, which is moved to the end for them and stays there (the 3D grid is stored as
   ``(G_1, G_2, G_0)``);
3. interpolate the grid at every sample with the separable exponential-of-semicircle kernel
   ``phi(u) = exp(beta * (sqrt(1 - (2 u / W)^2) - 1))`` of width ``W`` grid points per axis; the
   checkerboard ``(-1)^k`` that the centred padding puts on the grid is folded into the weights.

Step 3 is a sparse matrix with ``W^d`` non-zeros per sample. The adjoint runs the transposed steps in
reverse order (spread with the same sparse matrix, inverse FFT times the grid size, crop, the same
deapodisation), so it is the exact adjoint by construction: the dot-product test holds to float32
round-off.

Interpolation kernels. The plan stores the flat grid index and the weight of every non-zero (``W^d``
per sample), and for every sample the corner of its ``W^d`` block of neighbours and its ``d`` per-axis
kernels, with the samples of each example sorted by the grid index of their first neighbour, so that
consecutive samples read (forward) and write (adjoint) nearby grid points. The forward reads every
sample's block with XLA's gather of ``(W, ..., W, K)`` slices from the grid extended periodically by
``W - 1`` points per axis and weights it with the outer product of the per-axis kernels
(`_interpolate_blocks`: up to 2x faster than gathering the ``W^d`` rows one by one, see there);
the adjoint is a weighted ``tf.tensor_scatter_nd_add`` of the non-zeros. Both work on float32 views of
the complex data (coils and real / imaginary parts side by side, one pass for all of them) and are
compiled with XLA (``jit_compile``; inlined when the caller is XLA-compiled itself), which fuses the
forward's gather, weights and sum into one loop. XLA compiles each kernel once per shape of its inputs
(a fraction of a second on CPU, at the first call). On a 64^3 volume (BENCHMARKS.md), XLA's row gather
and scatter interpolate and spread 1.3x to 2.3x faster than TensorFlow's COO product
(``SparseTensorDenseMatMul``, which the first version used), and sorting saves another 10% to 35% (the
more, the busier the machine's memory). TensorFlow's CSR product (``SparseMatrixMatMul``) was not
kept: it is fast only through oneDNN, which graphs use only with ``TF_ENABLE_ONEDNN_SPMM=1`` (its Eigen
fallback is 10x slower inside ``tf.function``), and its transposed product (the adjoint) is 9x slower
than the direct one.

Accuracy. The kernel width follows from the requested relative accuracy ``eps`` and the oversampling
``sigma``: ``W = ceil(-ln(eps) / (pi * sqrt(1 - 1 / sigma)))``, with ``beta = 0.97 * pi * (1 - 1 /
(2 sigma)) * W``. With ``sigma = 2`` that is ``W = 6`` for the default ``eps = 1e-5``, ``W = 5`` for
``1e-4`` and ``W = 3`` for ``1e-2``; the measured relative l2 error against an exact NDFT is close to
``eps`` (1.1e-5, 1.2e-4 and 1.0e-2 on random 2D data; see the tests and BENCHMARKS.md). The cost of
the interpolation grows as ``W^d``, and a plan holds 8 bytes per non-zero (an int32 grid index and a
float32 weight) and ``4 (2 + d + d W)`` per sample (its position in the sorted order, its block's corner
and its per-axis kernels): 352 bytes per sample in 2D and 1.8 kB in 3D at ``W = 6``.

Precomputation. :class:`NUFFTPlan` computes the interpolation matrix of a trajectory once (a few
TensorFlow ops, so it can be built eagerly or inside ``tf.function`` from a trajectory tensor) and
applies it as often as needed; :func:`nufft` and :func:`nufft_adjoint` build the plan on the fly. The
build sorts the trajectory by grid cell (an XLA-compiled key, TensorFlow's argsort), computes the
per-axis kernels of the sorted samples in one XLA-compiled loop (1.3x to 1.6x faster than the same ops
unfused, BENCHMARKS.md, 2026-12-03) and writes their outer products in another (`_outer_products`), which
a graph running only forward NUFFTs prunes. XLA's ``exp`` rounds differently from
TensorFlow's, so a plan's weights may differ in the last float32 bit between an eager build and a graph
that constant-folds it.

Shapes. Trajectories are float32 ``(batch, ndim, M)``, one per example, or ``(ndim, M)``, shared by
the whole batch (cheaper: every example and coil then goes through one pass over the non-zeros).
Images are complex64 ``(batch, [coils,] *N)`` and samples complex64 ``(batch, [coils,] M)``; with a
shared trajectory any number of leading axes is accepted. ``N`` must be static; the batch size and the
number of samples may be dynamic.

Gradients. The gradient with respect to the image is the adjoint (and vice versa), registered with
``tf.custom_gradient``; the gradient functions are themselves differentiable. With ``grad_traj=True`` the gradient with
respect to the trajectory is returned too: ``d y_j / d w_{j,a} = NUFFT(-i (n_a - N_a // 2) x)_j``, that
is ``d`` more NUFFTs of the image (or of the upstream gradient, for the adjoint) with the same plan.

Backends. The gridding above is the ``"tensorflow"`` backend (`TensorFlowEngine`), the default and
the reference. ``backend="finufft"`` (argument of `NUFFTPlan`, `nufft`, `nufft_adjoint`, or the
environment variable ``FASTMRI_RECON_NUFFT_BACKEND``) runs finufft on CPU instead, through the same
shape handling and the same gradients (both built from the backend's forward and adjoint); see
`fastmri_recon.ops.nufft_backends` for the registry, the selection rules and what each backend supports.
"""

import functools
import math

import numpy as np
import tensorflow as tf
# XLA's gather of block slices (`_interpolate_blocks`): TensorFlow's own wrappers of XLA operations, not its public
# API (setup.cfg pins TensorFlow 2.21)
from tensorflow.compiler.tf2xla.python import xla
from tensorflow.compiler.xla import xla_data_pb2

from fastmri_recon.errors import ConfigError, DataError
from fastmri_recon.ops import nufft_backends

DEFAULT_EPS = 1e-5
"""Default requested relative accuracy (kernel width 6 at oversampling 2)."""

DEFAULT_OVERSAMPLING = 2.0
"""Default oversampling factor of the FFT grid."""

_MIN_WIDTH, _MAX_WIDTH = 2, 16
_QUADRATURE_NODES = 200


# --------------------------------------------------------------------------------------------------
# Kernel and geometry (NumPy, static)
# --------------------------------------------------------------------------------------------------


def kernel_width(eps=DEFAULT_EPS, oversampling=DEFAULT_OVERSAMPLING):
    """Kernel width (grid points per axis) that reaches the relative accuracy ``eps``.

    Args:
        eps: requested relative accuracy, in ``(0, 1)``.
        oversampling: oversampling factor of the FFT grid, in ``[1.25, 4]``.

    Returns:
        int: ``ceil(-ln(eps) / (pi * sqrt(1 - 1 / oversampling)))`` clipped to ``[2, 16]``.

    Raises:
        ConfigError: if ``eps`` or ``oversampling`` is out of range.
    """
    _check_oversampling(oversampling)
    if not isinstance(eps, (int, float, np.floating)) or not 0 < eps < 1:
        raise ConfigError(f"eps must be a number in (0, 1), got {eps!r}")
    width = math.ceil(-math.log(eps) / (math.pi * math.sqrt(1.0 - 1.0 / oversampling)) - 1e-9)
    return int(min(max(width, _MIN_WIDTH), _MAX_WIDTH))


def kernel_beta(width, oversampling=DEFAULT_OVERSAMPLING):
    """Shape parameter ``beta`` of the exponential-of-semicircle kernel.

    Args:
        width: kernel width in grid points.
        oversampling: oversampling factor of the FFT grid.

    Returns:
        float: ``0.97 * pi * (1 - 1 / (2 * oversampling)) * width``.
    """
    return 0.97 * math.pi * (1.0 - 0.5 / oversampling) * width


def es_kernel(u, width, beta):
    """The exponential-of-semicircle kernel (NumPy).

    Args:
        u: array of distances in grid points.
        width: kernel width ``W``; the kernel vanishes for ``|u| > W / 2``.
        beta: shape parameter.

    Returns:
        float64 array of the shape of ``u``: ``exp(beta * (sqrt(1 - (2 u / W)^2) - 1))``, 0 outside.
    """
    z = 2.0 * np.asarray(u, np.float64) / width
    inside = np.abs(z) <= 1.0
    return np.where(inside, np.exp(beta * (np.sqrt(np.clip(1.0 - z * z, 0.0, None)) - 1.0)), 0.0)


def kernel_fourier(freq, width, beta):
    """Fourier transform of the kernel, ``int phi(u) exp(2 pi i f u) du`` (real: the kernel is even).

    Computed by Gauss-Legendre quadrature on ``[0, W / 2]``.

    Args:
        freq: array of frequencies in cycles per grid point (``m / G`` for image index ``m``).
        width: kernel width.
        beta: shape parameter.

    Returns:
        float64 array of the shape of ``freq``.
    """
    nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
    half = width / 2.0
    u = (nodes + 1.0) * (half / 2.0)
    w = weights * (half / 2.0)
    freq = np.asarray(freq, np.float64)
    phase = np.cos(2.0 * np.pi * freq[..., None] * u)
    return 2.0 * np.sum(phase * (w * es_kernel(u, width, beta)), axis=-1)


def _check_oversampling(oversampling):
    if not isinstance(oversampling, (int, float, np.floating)) or not 1.25 <= oversampling <= 4:
        raise ConfigError(f"oversampling must be a number in [1.25, 4], got {oversampling!r}")


def _grid_size(n, oversampling, width):
    size = max(int(math.ceil(oversampling * n - 1e-9)), n + width // 2 + 1, width + 2)
    return size + size % 2


class _Geometry:
    """Static description of a NUFFT: sizes, kernel and deapodisation (NumPy)."""

    def __init__(self, image_shape, width, oversampling):
        self.image_shape = tuple(int(n) for n in image_shape)
        self.ndim = len(self.image_shape)
        self.width = int(width)
        self.oversampling = float(oversampling)
        self.beta = kernel_beta(self.width, self.oversampling)
        self.grid_shape = tuple(_grid_size(n, self.oversampling, self.width) for n in self.image_shape)
        self.grid_size = int(np.prod(self.grid_shape))
        self.image_size = int(np.prod(self.image_shape))
        self.pads = tuple(
            (g // 2 - n // 2, g - n - (g // 2 - n // 2)) for n, g in zip(self.image_shape, self.grid_shape)
        )
        # storage order of the grid's axes (in 3D the first one last, see _padded_fft), its shape, and
        # the stride of each grid axis in that storage
        self.layout = (1, 2, 0) if self.ndim == 3 else (0, 1)
        self.layout_shape = tuple(self.grid_shape[a] for a in self.layout)
        layout_strides = np.cumprod((1,) + self.layout_shape[:0:-1])[::-1]
        self.strides = tuple(int(layout_strides[self.layout.index(a)]) for a in range(self.ndim))
        scale = np.ones((), np.float64)
        for axis, (n, g) in enumerate(zip(self.image_shape, self.grid_shape)):
            m = np.arange(n) - n // 2
            deapod = 1.0 / kernel_fourier(m / g, self.width, self.beta)
            scale = scale[..., None] * deapod if axis else deapod
        scale = scale / math.sqrt(self.image_size)
        self.forward_scale = scale.astype(np.complex64)
        self.adjoint_scale = (scale * self.grid_size).astype(np.complex64)
        self.kernel_integral = float(kernel_fourier(0.0, self.width, self.beta))


@functools.lru_cache(maxsize=16)
def _geometry(image_shape, width, oversampling):
    return _Geometry(image_shape, width, oversampling)


# --------------------------------------------------------------------------------------------------
# Interpolation matrix (TensorFlow)
# --------------------------------------------------------------------------------------------------


def _in_xla_context():
    """Whether the graph being built is XLA-compiled (where complex data cannot be bitcast)."""
    try:
        from tensorflow.python.ops import control_flow_util  # pylint: disable=import-outside-toplevel

        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except Exception:  # noqa: BLE001 - internal API: assume no XLA when it is unavailable
        return False


def _scaled_positions(traj, geom):
    """Grid coordinates of a trajectory and the index of each sample's first neighbour along each axis.

    float32 ``(B, d, M)`` -> ``(t, k0)``, both float64 ``(B, d, M)``: ``t`` in grid points and ``k0``
    the lowest of the ``W`` neighbours of ``t`` along each axis (an integer value, not wrapped into the grid).
    """
    grid = np.asarray(geom.grid_shape, np.float64).reshape(1, geom.ndim, 1)
    t = tf.cast(traj, tf.float64) * (grid / (2.0 * np.pi))
    k0 = tf.floor(t - geom.width / 2.0) + 1.0
    return t, k0


@tf.function(jit_compile=True, reduce_retracing=True)
def _sort_keys(traj, geom, index_dtype):
    """XLA-compiled: float32 ``(B, d, M)`` -> ``index_dtype`` ``(B, M)``, the flat grid index of each sample's first neighbour."""
    _, k0 = _scaled_positions(traj, geom)
    grid_int = tf.constant(geom.grid_shape, index_dtype)[None, :, None]
    k0 = tf.math.floormod(tf.cast(k0, index_dtype), grid_int)
    return tf.reduce_sum(k0 * np.asarray(geom.strides).reshape(1, geom.ndim, 1).astype(index_dtype.as_numpy_dtype), axis=1)


@tf.function(jit_compile=True, reduce_retracing=True)
def _axis_kernels(traj, geom, index_dtype):
    """XLA-compiled (one fused loop instead of a dozen passes): the kernel along each axis.

    float32 ``(B, d, M)`` -> ``(start, k, phi)``: ``start`` int32 ``(B, M, d)``, the grid index of each
    sample's first neighbour along each axis; ``k`` (``index_dtype``) and ``phi`` (float32), both
    ``(B, M, d, W)``, the grid index of each neighbour along each axis times that axis's stride and its
    kernel weight with the ``(-1)^k`` checkerboard.
    """
    width = geom.width
    t, k0 = _scaled_positions(traj, geom)
    frac = tf.cast(t - k0, tf.float32)  # in (W/2 - 1, W/2]
    offsets = np.arange(width)
    z = (frac[..., None] - offsets.astype(np.float32)) * (2.0 / width)  # (B, d, M, W), |z| <= 1
    # sqrt(1 - z^2) with a finite gradient where it is 0 (|z| = 1 to float32 round-off: the kernel's edge), so that
    # weights differentiated with respect to the trajectory (the density compensation's) have no inf / NaN
    inside = 1.0 - z * z > 0.0
    root = tf.where(inside, tf.sqrt(tf.where(inside, 1.0 - z * z, 1.0)), 0.0)
    phi = tf.exp(geom.beta * root - geom.beta)
    # the (-1)^k checkerboard: (-1)^k0 times alternating signs along the kernel
    k0 = tf.cast(k0, index_dtype)
    parity = tf.cast(tf.bitwise.bitwise_and(k0, 1), tf.float32)[..., None]
    phi = phi * ((1.0 - 2.0 * parity) * (1.0 - 2.0 * (offsets % 2)).astype(np.float32))
    grid_int = tf.constant(geom.grid_shape, index_dtype)[None, :, None, None]
    start = tf.math.floormod(k0, grid_int[..., 0])  # (B, d, M) in [0, G)
    k = start[..., None] + offsets.astype(index_dtype.as_numpy_dtype)
    k = tf.where(k >= grid_int, k - grid_int, k)  # (B, d, M, W) in [0, G)
    strides = np.asarray(geom.strides).reshape(1, geom.ndim, 1, 1)
    k = tf.transpose(k * strides.astype(index_dtype.as_numpy_dtype), [0, 2, 1, 3])  # (B, M, d, W)
    return tf.transpose(tf.cast(start, tf.int32), [0, 2, 1]), k, tf.transpose(phi, [0, 2, 1, 3])


def _interpolation(traj, geom):
    """Interpolation matrix of a canonical trajectory, its samples sorted by grid cell.

    Args:
        traj: float32 ``(B, d, M)``.
        geom: `_Geometry`.

    Returns:
        ``(columns, weights, order, corners, axis_weights)``:

        - ``columns``: int32 (int64 for batches of grids of 2^31 points or more) ``(B, M * W^d)``,
          the flat indices ``b * prod(G) + sum_a k_a * geom.strides[a]`` of the ``W^d`` grid
          neighbours of every sample in the grid's storage order;
        - ``weights``: float32 ``(B, M * W^d)``, their kernel weights, including the ``(-1)^k``
          checkerboard;
        - ``order``: int32 ``(B * M,)``, the flat index ``b * M + j`` of the sample at each position;
        - ``corners``: int32 ``(B * M, 1 + d)``, the example index ``b`` of every sample and the grid
          index of its first neighbour along each axis of the grid's storage order;
        - ``axis_weights``: float32 ``(B * M, d, W)``, its kernel weights along each axis of the
          storage order (``weights`` is their outer product).

        The samples of each example are sorted by the grid index of their first neighbour: the
        trajectory is sorted first (a gather of ``d`` values per sample), then the per-axis kernels
        are computed in that order by one XLA-compiled loop (`_axis_kernels`) and their outer products
        written out by another (`_outer_products`). Only the spread and
        `NUFFTPlan.interpolate` use the outer products; the forward NUFFT uses ``corners`` and
        ``axis_weights`` (`_interpolate_blocks`), so that a graph computing only forward NUFFTs of a
        trajectory never writes them (TensorFlow prunes the unused ops).
    """
    batch = tf.shape(traj)[0]
    n_samples = tf.shape(traj)[2]
    static_batch = traj.shape[0] if traj.shape[0] is not None else 64
    index_dtype = tf.int32 if geom.grid_size * static_batch * 4 < 2**31 else tf.int64
    position = tf.argsort(_sort_keys(traj, geom, index_dtype), axis=-1)  # (B, M)
    start, k, phi = _axis_kernels(tf.gather(traj, position, axis=2, batch_dims=1), geom, index_dtype)
    order = tf.reshape(tf.cast(position, tf.int32) + tf.range(batch)[:, None] * n_samples, [-1])
    columns, weights = _outer_products(k, phi, tf.range(batch, dtype=index_dtype) * geom.grid_size, geom)
    examples = tf.broadcast_to(tf.range(batch)[:, None, None], tf.stack([batch, n_samples, 1]))
    corners = tf.concat([examples, tf.gather(start, geom.layout, axis=2)], axis=2)
    axis_weights = tf.gather(phi, geom.layout, axis=2)
    return (tf.reshape(columns, [batch, -1]), tf.reshape(weights, [batch, -1]), order,
            tf.reshape(corners, [-1, 1 + geom.ndim]), tf.reshape(axis_weights, [-1, geom.ndim, geom.width]))


def _outer(terms, op):
    """Outer sum / product over the kernel offsets, by broadcasting: ``d`` tensors ``(..., W)`` -> ``(..., W, ..., W)``.

    ``op`` (``tf.add`` or ``tf.multiply``) combines the terms in their order, the first one's offset outermost.
    """
    ndim = len(terms)
    out = None
    for axis, term in enumerate(terms):
        trailing = np.asarray([1] * axis + [-1] + [1] * (ndim - 1 - axis), np.int32)
        term = tf.reshape(term, tf.concat([tf.shape(term)[:-1], trailing], 0))
        out = term if out is None else op(out, term)
    return out


@tf.function(jit_compile=True, reduce_retracing=True)
def _outer_products(k, phi, offsets, geom):
    """XLA-compiled: the ``W^d`` non-zeros of every sample from its per-axis grid indices and kernels.

    Args:
        k: ``(B, M, d, W)`` grid indices times strides (`_axis_kernels`).
        phi: float32 ``(B, M, d, W)`` kernels.
        offsets: ``(B,)`` of the dtype of ``k``, added to every index of example ``b`` (``b * prod(G)``).
        geom: `_Geometry`.

    Returns:
        ``(columns, weights)``, ``(B, M, W, ..., W)``: the sums of the indices and the products of the
        kernels over the axes (`_outer`). One broadcast of ``d`` terms per output, left in this shape (its
        flattening is free outside XLA): 1.7x faster than TensorFlow's pairwise broadcasts on a 3D plan of
        103,040 samples at ``W = 5`` (36 against 61 ms), with the same values.
    """
    columns = _outer([k[:, :, 0] + offsets[:, None, None]] + [k[:, :, a] for a in range(1, geom.ndim)], tf.add)
    return columns, _outer([phi[:, :, a] for a in range(geom.ndim)], tf.multiply)


@tf.function(jit_compile=True, reduce_retracing=True)
def _interpolate_blocks(grid, corners, axis_weights, order, geom):
    """Interpolation by blocks, XLA-compiled: float32 ``(B * prod(G), K)`` -> ``(B * M, K)``.

    ``corners``, ``axis_weights`` and ``order`` as returned by `_interpolation`. The grid is extended
    periodically by ``W - 1`` points along each axis, so that every sample's ``W^d`` neighbours form
    one block of it, and XLA's gather reads the ``(W, ..., W, K)`` block of every sample at its corner
    (contiguous runs of ``W K`` values) and weights it with the outer product of the per-axis kernels,
    in one loop. Against `_interpolate_kernel` (one gathered row of ``K`` values per neighbour, its
    index read from the plan), the kernel alone: 1.2x to 2x faster at ``W >= 6`` in 2D and ``W >= 4`` in
    3D, 20% to 40% slower at ``W <= 5`` in 2D with 4 coils and 2x slower at ``W = 3`` in 3D; the whole
    forward NUFFT of the benchmark's 2D (``W = 5`` and 6, 4 coils) and 3D cases was faster in all four
    (BENCHMARKS.md, 2026-12-03); likely because the block kernel reads ``4 (1 + d + d W)`` bytes of the plan
    per sample instead of ``8 W^d``, which a kernel timed alone in a loop keeps in the cache and a NUFFT,
    its FFT in between, does not.
    ``tf2xla``'s gather has no gradient: the forward NUFFT's gradients are registered by hand, and the
    differentiable `NUFFTPlan.interpolate` uses `_interpolate_kernel`.
    """
    width, ndim = geom.width, geom.ndim
    n_cols = tf.shape(grid)[1]
    blocks = tf.reshape(grid, tf.concat([[-1], geom.layout_shape, [n_cols]], 0))
    for axis in range(1, ndim + 1):
        head = blocks[(slice(None),) * axis + (slice(0, width - 1),)]
        blocks = tf.concat([blocks, head], axis)
    dims = xla_data_pb2.GatherDimensionNumbers(
        offset_dims=list(range(1, ndim + 2)), collapsed_slice_dims=[0], start_index_map=list(range(ndim + 1)),
        index_vector_dim=1,
    )
    values = xla.gather(blocks, corners, dims, tf.concat([[1], [width] * ndim, [n_cols]], 0), indices_are_sorted=True)
    weights = _outer([axis_weights[:, a] for a in range(ndim)], tf.multiply)  # (B * M, W, ..., W)
    samples = tf.reduce_sum(values * weights[..., None], axis=list(range(1, ndim + 1)))
    return tf.scatter_nd(order[:, None], samples, tf.shape(samples))


@tf.function(jit_compile=True, reduce_retracing=True)
def _interpolate_kernel(grid, columns, weights, order):
    """Interpolation, XLA-compiled: float32 ``(B * prod(G), K)`` -> ``(B * M, K)``.

    ``columns``, ``weights`` and ``order`` as returned by `_interpolation`.
    """
    n_cols = tf.shape(grid)[1]
    products = tf.gather(grid, tf.reshape(columns, [-1])) * tf.reshape(weights, [-1, 1])
    samples = tf.reduce_sum(tf.reshape(products, [tf.shape(order)[0], -1, n_cols]), axis=1)
    # back to the caller's order by a scatter: XLA would fuse a gather into the sum above, which
    # would then visit the samples in the caller's order and lose the locality of the sorted one
    return tf.scatter_nd(order[:, None], samples, tf.shape(samples))


@tf.function(jit_compile=True, reduce_retracing=True)
def _spread_kernel(samples, columns, weights, order, grid_rows):
    """Spreading (the transposed interpolation), XLA-compiled: float32 ``(B * M, K)`` -> ``(B * prod(G), K)``.

    ``columns``, ``weights`` and ``order`` as returned by `_interpolation`; ``grid_rows``: ``B * prod(G)``,
    a scalar of the dtype of ``columns`` (XLA compiles the kernel for its value).
    """
    n_cols = tf.shape(samples, out_type=grid_rows.dtype)[1]
    products = tf.gather(samples, order)[:, None, :] * tf.reshape(weights, [tf.shape(order)[0], -1, 1])
    grid = tf.zeros(tf.stack([grid_rows, n_cols]))
    return tf.tensor_scatter_nd_add(grid, tf.reshape(columns, [-1, 1]), tf.reshape(products, [-1, n_cols]))


class _Interp:
    """The interpolation matrix of a canonical trajectory (see `_interpolation`) and its sizes."""

    def __init__(self, traj, geom):
        self.geom = geom
        self.batch = tf.shape(traj)[0]
        self.n_samples = tf.shape(traj)[2]
        self.columns, self.weights, self.order, self.corners, self.axis_weights = _interpolation(traj, geom)
        self.grid_rows = tf.cast(self.batch, self.columns.dtype) * geom.grid_size

    def apply(self, dense):
        """Interpolate: float32 ``(B * prod(G), K)`` -> ``(B * M, K)``, as a constant of autodiff (the raw maps')."""
        return _interpolate_blocks(tf.stop_gradient(dense), self.corners, tf.stop_gradient(self.axis_weights),
                                   self.order, self.geom)

    def apply_differentiable(self, dense):
        """Interpolate, differentiable with respect to ``dense`` and the weights: as `apply`."""
        return _interpolate_kernel(dense, self.columns, self.weights, self.order)

    def apply_adjoint(self, dense):
        """Spread: float32 ``(B * M, K)`` -> ``(B * prod(G), K)``."""
        return _spread_kernel(dense, self.columns, self.weights, self.order, self.grid_rows)


# --------------------------------------------------------------------------------------------------
# Raw linear maps on canonical shapes (no gradient registered)
# --------------------------------------------------------------------------------------------------


def _padded_fft(x, geom):
    """FFT of the zero-padded images: complex64 ``(B, C, *N)`` -> ``(B, C, *geom.layout_shape)``.

    In 3D, the last two axes are padded and transformed on the ``N_0`` slices of the image only, then
    the first axis is moved last, padded and transformed: a third less work than the 3D FFT of the
    padded volume, 20% to 40% less time on CPU. In 2D the saving does not pay for the transpose (on
    CPU), and the padded image goes through one 2D FFT.
    """
    if geom.ndim == 2:
        return tf.signal.fft2d(tf.pad(x, [[0, 0], [0, 0], *geom.pads]))
    x = tf.signal.fft2d(tf.pad(x, [[0, 0], [0, 0], [0, 0], *geom.pads[1:]]))
    x = tf.transpose(x, [0, 1, 3, 4, 2])
    return tf.signal.fft(tf.pad(x, [[0, 0]] * 4 + [list(geom.pads[0])]))


def _cropped_ifft(grid, geom):
    """Inverse FFT then crop, the adjoint of `_padded_fft` up to the factor ``prod(G)``.

    complex64 ``(B, C, *geom.layout_shape)`` -> ``(B, C, *N)``. In 3D the first axis (stored last) is
    transformed and cropped first, so that the other two are transformed on ``N_0`` slices only.
    """
    crop = [slice(left, left + n) for (left, _), n in zip(geom.pads, geom.image_shape)]
    if geom.ndim == 2:
        return tf.signal.ifft2d(grid)[(slice(None), slice(None), *crop)]
    x = tf.signal.ifft(grid)[..., crop[0]]
    x = tf.signal.ifft2d(tf.transpose(x, [0, 1, 4, 2, 3]))
    return x[(slice(None), slice(None), slice(None), *crop[1:])]


def _channels_last(x):
    """``(B, C, *S)`` -> ``(B, *S, C)``."""
    if x.shape[1] == 1:
        return tf.reshape(x, tf.concat([tf.shape(x)[:1], tf.shape(x)[2:], [1]], 0))
    rank = len(x.shape)
    return tf.transpose(x, [0, *range(2, rank), 1])


def _channels_first(x):
    """``(B, *S, C)`` -> ``(B, C, *S)``."""
    if x.shape[-1] == 1:
        return tf.reshape(x, tf.concat([tf.shape(x)[:1], [1], tf.shape(x)[1:-1]], 0))
    rank = len(x.shape)
    return tf.transpose(x, [0, rank - 1, *range(1, rank - 1)])


def _complex_to_columns(x):
    """complex64 ``(B, *S, C)`` -> float32 ``(B * prod(S), 2C)``, real and imaginary parts interleaved.

    A free bitcast, except inside an XLA-compiled function (XLA has no bitcast of complex numbers).
    """
    parts = tf.stack([tf.math.real(x), tf.math.imag(x)], axis=-1) if _in_xla_context() else tf.bitcast(x, tf.float32)
    return tf.reshape(parts, [-1, 2 * tf.shape(x)[-1]])


def _columns_to_complex(x, shape):
    """float32 ``(B * prod(S), 2C)`` -> complex64 ``shape = (B, *S, C)`` (inverse of `_complex_to_columns`)."""
    parts = tf.reshape(x, tf.concat([shape, [2]], 0))
    return tf.complex(parts[..., 0], parts[..., 1]) if _in_xla_context() else tf.bitcast(parts, tf.complex64)


def _forward_raw(x, interp, geom):
    """Type-2 NUFFT of canonical images: complex64 ``(B, C, *N)`` -> ``(B, C, M)``."""
    grid = _channels_last(_padded_fft(x * geom.forward_scale, geom))
    shape = tf.shape(grid)
    y = interp.apply(_complex_to_columns(grid))
    y = _columns_to_complex(y, tf.stack([shape[0], interp.n_samples, shape[-1]]))
    if x.shape[1] is not None:
        y.set_shape([x.shape[0], None, x.shape[1]])
    return _channels_first(y)


def _adjoint_raw(y, interp, geom):
    """Adjoint NUFFT of canonical samples: complex64 ``(B, C, M)`` -> ``(B, C, *N)``."""
    yl = _channels_last(y)
    shape = tf.shape(yl)
    grid = interp.apply_adjoint(_complex_to_columns(yl))
    grid = _columns_to_complex(grid, tf.concat([shape[:1], geom.layout_shape, shape[-1:]], 0))
    grid.set_shape([y.shape[0], *geom.layout_shape, y.shape[1]])
    return _cropped_ifft(_channels_first(grid), geom) * geom.adjoint_scale


@functools.lru_cache(maxsize=16)
def _centered_coords(image_shape):
    """``d`` float32 arrays broadcastable to ``N``: ``n_a - N_a // 2`` along axis ``a``."""
    ndim = len(image_shape)
    return tuple(
        (np.arange(n) - n // 2).reshape([-1 if a == axis else 1 for a in range(ndim)]).astype(np.float32)
        for axis, n in enumerate(image_shape)
    )


def _coordinate_stack(x, image_shape):
    """``(B, C, *N)`` -> ``(B, C * d, *N)``: ``-i (n_a - N_a // 2) x`` for every axis ``a``."""
    parts = [x * (-1j * c).astype(np.complex64) for c in _centered_coords(image_shape)]
    stacked = tf.stack(parts, axis=2)
    return tf.reshape(stacked, tf.concat([tf.shape(x)[:1], [-1], image_shape], 0))


def _split_axes(z, ndim):
    """``(B, C * d, M)`` -> ``(B, C, d, M)``."""
    return tf.reshape(z, tf.concat([tf.shape(z)[:1], [-1, ndim], tf.shape(z)[-1:]], 0))


def _forward_op(x, traj, engine, grad_traj):
    """``engine.forward`` with its gradients: the adjoint for the image, and for the trajectory if ``grad_traj``."""

    @tf.custom_gradient
    def forward(image, trajectory):
        y = engine.forward(image)

        def grad(upstream):
            grad_image = _adjoint_op(upstream, trajectory, engine, grad_traj)
            grad_trajectory = None
            if grad_traj:
                coords = _coordinate_stack(image, engine.image_shape)
                dy = _split_axes(engine.forward(coords), len(engine.image_shape))
                grad_trajectory = tf.reduce_sum(tf.math.real(tf.math.conj(upstream)[:, :, None] * dy), axis=1)
            return grad_image, grad_trajectory

        return y, grad

    return forward(x, traj)


def _adjoint_op(y, traj, engine, grad_traj):
    """``engine.adjoint`` with its gradients: the forward for the samples, and for the trajectory if ``grad_traj``."""

    @tf.custom_gradient
    def adjoint(samples, trajectory):
        x = engine.adjoint(samples)

        def grad(upstream):
            grad_samples = _forward_op(upstream, trajectory, engine, grad_traj)
            grad_trajectory = None
            if grad_traj:
                coords = _coordinate_stack(upstream, engine.image_shape)
                dg = _split_axes(engine.forward(coords), len(engine.image_shape))
                grad_trajectory = tf.reduce_sum(tf.math.real(samples[:, :, None] * tf.math.conj(dg)), axis=1)
            return grad_samples, grad_trajectory

        return x, grad

    return adjoint(y, traj)


class TensorFlowEngine:
    """The pure-TensorFlow backend (the default and the reference): gridding with the plan's interpolation matrix.

    Args:
        trajectory: float32 ``(B, d, M)``.
        image_shape: static spatial shape ``N``.
        eps, oversampling, width: as for `NUFFTPlan` (``width`` overrides ``eps``).

    ``forward`` / ``adjoint`` are the raw linear maps (no gradient registered) on complex64 ``(B, C, *N)``
    and ``(B, C, M)``; ``interp`` and ``geom`` give `NUFFTPlan` its interpolation matrix and sizes.
    """

    name = "tensorflow"
    xla_compatible = True

    def __init__(self, trajectory, image_shape, eps, oversampling, width):
        if width is None:
            width = kernel_width(eps, oversampling)
        self.geom = _geometry(tuple(image_shape), int(width), float(oversampling))
        self.image_shape = self.geom.image_shape
        self.interp = _Interp(trajectory, self.geom)

    def forward(self, x):
        """Type-2 NUFFT: complex64 ``(B, C, *N)`` -> ``(B, C, M)``."""
        return _forward_raw(x, self.interp, self.geom)

    def adjoint(self, y):
        """Adjoint NUFFT: complex64 ``(B, C, M)`` -> ``(B, C, *N)``."""
        return _adjoint_raw(y, self.interp, self.geom)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _as_trajectory(trajectory):
    traj = tf.convert_to_tensor(trajectory)
    if traj.dtype != tf.float32:
        if traj.dtype.is_floating:
            traj = tf.cast(traj, tf.float32)
        else:
            raise TypeError(f"trajectory must be float32 radians, got {traj.dtype.name}")
    rank = traj.shape.rank
    if rank not in (2, 3) or traj.shape[-2] not in (2, 3):
        raise DataError(
            f"trajectory must have shape (batch, ndim, n_samples) or (ndim, n_samples) with ndim 2 or 3, "
            f"got {traj.shape}"
        )
    return traj


class NUFFTPlan:
    """Precomputed NUFFT for a fixed trajectory: forward (type 2) and adjoint (type 1).

    The plan holds the sparse interpolation matrix (``W^d`` int32 grid indices and float32 weights
    per sample, and its block's corner and per-axis kernels, the samples sorted by grid cell), built by
    TensorFlow ops: build it eagerly and reuse
    it, or inside a ``tf.function`` (XLA-compiled or not) from a trajectory tensor (for example once
    per batch, before an unrolled network's iterations).

    Args:
        trajectory: float32 ``(batch, ndim, M)`` (one trajectory per example) or ``(ndim, M)``
            (shared by all examples), radians in ``[-pi, pi)`` (other values wrap around).
            ``ndim`` (2 or 3) must be static.
        image_shape: spatial shape ``N`` of the image, ``ndim`` positive integers.
        eps: requested relative accuracy; sets the kernel width (ignored if ``width`` is given).
        oversampling: oversampling factor of the FFT grid, in ``[1.25, 4]``.
        width: kernel width in grid points (2 to 16), overriding ``eps``.
        grad_traj: whether the gradients of `forward` / `adjoint` with respect to the trajectory
            are computed (otherwise they are ``None``).

        backend: name of the NUFFT backend (`fastmri_recon.ops.nufft_backends`): ``"tensorflow"``
            (the default, this module's gridding) or ``"finufft"`` (CPU, ``pip install finufft``);
            None: the environment variable ``FASTMRI_RECON_NUFFT_BACKEND``, else ``"tensorflow"``.

    Attributes:
        image_shape: tuple of ints; ``oversampling``: float; ``ndim``: 2 or 3; ``backend``: its name.
        grid_shape, width, beta: the oversampled grid, the kernel width and its shape parameter
            (``"tensorflow"`` backend only).
        shared: whether the trajectory is shared by the batch.
        trajectory: float32 ``(batch, ndim, M)`` (``(1, ndim, M)`` if shared).

    Raises:
        ConfigError: for a bad ``eps``, ``oversampling``, ``width`` or ``backend``, or a backend whose
            package is not installed.
        DataError: for a trajectory or image shape that does not fit.
    """

    def __init__(
        self,
        trajectory,
        image_shape,
        eps=DEFAULT_EPS,
        oversampling=DEFAULT_OVERSAMPLING,
        width=None,
        grad_traj=False,
        backend=None,
    ):
        traj = _as_trajectory(trajectory)
        image_shape = tuple(image_shape)
        if any(n is None for n in image_shape):
            raise DataError(f"the image's spatial shape must be static, got {image_shape}")
        image_shape = tuple(int(n) for n in image_shape)
        if len(image_shape) != traj.shape[-2] or min(image_shape) < 1:
            raise DataError(
                f"image_shape {image_shape} does not match a {traj.shape[-2]}D trajectory of shape {traj.shape}"
            )
        if width is None:
            kernel_width(eps, oversampling)  # validates eps and oversampling
        else:
            _check_oversampling(oversampling)
            if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 2 <= width <= 16:
                raise ConfigError(f"width must be an integer in [2, 16], got {width!r}")
        self.backend, factory = nufft_backends.engine_factory(backend)
        self.shared = traj.shape.rank == 2
        self.trajectory = traj[None] if self.shared else traj
        self.oversampling = float(oversampling)
        self.grad_traj = bool(grad_traj)
        self._engine = factory(self.trajectory, image_shape, eps, self.oversampling, width)

    ndim = property(lambda self: len(self._engine.image_shape))
    image_shape = property(lambda self: self._engine.image_shape)
    grid_shape = property(lambda self: self._tensorflow_engine("grid_shape").geom.grid_shape)
    width = property(lambda self: self._tensorflow_engine("width").geom.width)
    beta = property(lambda self: self._tensorflow_engine("beta").geom.beta)

    @property
    def n_samples(self):
        """Number of samples ``M`` (int32 scalar tensor)."""
        return tf.shape(self.trajectory)[2]

    def _tensorflow_engine(self, what):
        """The `TensorFlowEngine` behind the plan, for what only it has (its kernel and interpolation matrix)."""
        if not isinstance(self._engine, TensorFlowEngine):
            raise ConfigError(f"NUFFTPlan.{what} exists for backend 'tensorflow' only, this plan uses {self.backend!r}")
        return self._engine

    def _check_xla(self):
        if not self._engine.xla_compatible and _in_xla_context():
            raise ConfigError(
                f"the NUFFT backend {self.backend!r} cannot run inside an XLA-compiled function (jit_compile=True); "
                "use backend='tensorflow' there"
            )

    # -- shape handling --------------------------------------------------------------------------

    def _canonical(self, x, trailing, what, expected):
        """``x`` -> ``(B, C, *trailing)`` and a function restoring the caller's leading axes."""
        x = tf.convert_to_tensor(x)
        if x.dtype != tf.complex64:
            raise TypeError(f"{what} must be complex64, got {x.dtype.name}")
        n_trailing = len(trailing)
        rank = x.shape.rank
        if rank is None or rank < n_trailing + (0 if self.shared else 1) or (
            trailing[0] is not None and tuple(x.shape[-n_trailing:]) != tuple(trailing)
        ):
            raise DataError(f"{what} must have shape {expected}, got {x.shape}")
        leading = tf.shape(x)[: rank - n_trailing]
        static_leading = x.shape[: rank - n_trailing]
        if self.shared:
            x = tf.reshape(x, tf.concat([[1, -1], tf.shape(x)[rank - n_trailing :]], 0))
        elif rank == n_trailing + 1:
            x = x[:, None]
        elif rank != n_trailing + 2:
            raise DataError(f"{what} must have shape {expected}, got {x.shape}")

        def restore(z, new_trailing):
            out = tf.reshape(z, tf.concat([leading, new_trailing], 0))
            out.set_shape(static_leading.concatenate([None] * (out.shape.rank - static_leading.rank)))
            return out

        return x, restore

    # -- operators -------------------------------------------------------------------------------

    def forward(self, image):
        """Type-2 NUFFT: uniform image -> non-uniform k-space samples.

        Args:
            image: complex64 ``(batch, [coils,] *image_shape)`` (any leading axes with a shared
                trajectory).

        Returns:
            complex64 ``(batch, [coils,] M)``.
        """
        self._check_xla()
        x, restore = self._canonical(image, self.image_shape, "image", f"(batch, [coils,] {self.image_shape})")
        y = _forward_op(x, self.trajectory, self._engine, self.grad_traj)
        return restore(y, tf.shape(y)[-1:])

    def adjoint(self, samples):
        """Adjoint NUFFT (type 1 with the conjugate sign): k-space samples -> image.

        Args:
            samples: complex64 ``(batch, [coils,] M)`` (any leading axes with a shared trajectory).

        Returns:
            complex64 ``(batch, [coils,] *image_shape)``.
        """
        self._check_xla()
        y, restore = self._canonical(samples, (None,), "samples", "(batch, [coils,] n_samples)")
        x = _adjoint_op(y, self.trajectory, self._engine, self.grad_traj)
        out = restore(x, self.image_shape)
        out.set_shape(out.shape[: out.shape.rank - self.ndim].concatenate(self.image_shape))
        return out

    __call__ = forward

    # -- the interpolation matrix alone (density compensation) ------------------------------------

    def interpolate(self, grid):
        """Apply the interpolation matrix ``C`` to real grids.

        ``C`` is the gridding kernel times the checkerboard ``(-1)^k`` of the centred padding; the
        checkerboard cancels in ``C C^H``, which is what density compensation needs.

        Args:
            grid: float32 ``(batch, *grid_shape)`` (``batch`` 1 for a shared trajectory).

        Returns:
            float32 ``(batch, M)``.
        """
        engine = self._tensorflow_engine("interpolate")
        grid = tf.transpose(tf.convert_to_tensor(grid, tf.float32), [0, *(a + 1 for a in engine.geom.layout)])
        out = engine.interp.apply_differentiable(tf.reshape(grid, [-1, 1]))  # in the grid's storage order
        return tf.reshape(out, [engine.interp.batch, engine.interp.n_samples])

    def spread(self, samples):
        """Apply ``C^H`` (the transposed interpolation matrix) to real samples.

        Args:
            samples: float32 ``(batch, M)`` (``batch`` 1 for a shared trajectory).

        Returns:
            float32 ``(batch, *grid_shape)``.
        """
        engine = self._tensorflow_engine("spread")
        samples = tf.convert_to_tensor(samples, tf.float32)
        out = engine.interp.apply_adjoint(tf.reshape(samples, [-1, 1]))
        out = tf.reshape(out, [engine.interp.batch, *engine.geom.layout_shape])  # the grid's storage order
        return tf.transpose(out, [0, *(engine.geom.layout.index(a) + 1 for a in range(self.ndim))])

    @property
    def kernel_integral(self):
        """Integral of the 1D kernel over the real line, in grid points (float; ``"tensorflow"`` backend only)."""
        return self._tensorflow_engine("kernel_integral").geom.kernel_integral


def nufft(image, trajectory, eps=DEFAULT_EPS, oversampling=DEFAULT_OVERSAMPLING, width=None, grad_traj=False,
          backend=None):
    """Type-2 NUFFT (image -> samples), computing the interpolation on the fly.

    Args:
        image: complex64 ``(batch, [coils,] *N)`` with a static ``N`` (2D or 3D).
        trajectory: float32 ``(batch, ndim, M)`` or shared ``(ndim, M)``, radians in ``[-pi, pi)``.
        eps, oversampling, width, grad_traj, backend: as for `NUFFTPlan`.

    Returns:
        complex64 ``(batch, [coils,] M)``:
        ``y_j = (1 / sqrt(prod N)) sum_n x[n] exp(-i w_j . (n - N // 2))``.
    """
    traj = _as_trajectory(trajectory)
    ndim = traj.shape[-2]
    image = tf.convert_to_tensor(image)
    min_rank = ndim if traj.shape.rank == 2 else ndim + 1
    if image.shape.rank is None or image.shape.rank < min_rank:
        raise DataError(f"image must have shape (batch, [coils,] *N) with {ndim} spatial axes, got {image.shape}")
    plan = NUFFTPlan(traj, image.shape[-ndim:], eps, oversampling, width, grad_traj, backend)
    return plan.forward(image)


def nufft_adjoint(samples, trajectory, image_shape, eps=DEFAULT_EPS, oversampling=DEFAULT_OVERSAMPLING, width=None,
                  grad_traj=False, backend=None):
    """Adjoint NUFFT (samples -> image, type 1 with ``+i``), computing the interpolation on the fly.

    Args:
        samples: complex64 ``(batch, [coils,] M)``.
        trajectory: float32 ``(batch, ndim, M)`` or shared ``(ndim, M)``.
        image_shape: spatial shape ``N`` of the output.
        eps, oversampling, width, grad_traj, backend: as for `NUFFTPlan`.

    Returns:
        complex64 ``(batch, [coils,] *N)``:
        ``x[n] = (1 / sqrt(prod N)) sum_j y_j exp(+i w_j . (n - N // 2))``.
    """
    plan = NUFFTPlan(trajectory, image_shape, eps, oversampling, width, grad_traj, backend)
    return plan.adjoint(samples)


# --------------------------------------------------------------------------------------------------
# Exact references (NumPy, float64) for tests and benchmarks
# --------------------------------------------------------------------------------------------------


_LETTERS = "abc"


def np_ndft(image, trajectory):
    """Exact non-uniform DFT (type 2, the reference for the NUFFT), NumPy complex128.

    Separable evaluation with ``numpy.einsum``: ``O(M prod N)`` operations, ``O(M sum N)`` memory.

    Args:
        image: complex array ``(..., *N)`` with 2 or 3 spatial axes.
        trajectory: float array ``(ndim, M)``, shared by all leading axes.

    Returns:
        complex128 ``(..., M)``.
    """
    traj = np.asarray(trajectory, np.float64)
    ndim = traj.shape[0]
    image = np.asarray(image, np.complex128)
    shape = image.shape[-ndim:]
    factors = [np.exp(-1j * traj[a][:, None] * (np.arange(n) - n // 2)) for a, n in enumerate(shape)]
    axes = _LETTERS[:ndim]
    spec = f"...{axes}," + ",".join(f"m{a}" for a in axes) + "->...m"
    return np.einsum(spec, image, *factors, optimize=True) / math.sqrt(np.prod(shape))


def np_ndft_adjoint(samples, trajectory, image_shape):
    """Exact adjoint of `np_ndft`, NumPy complex128.

    Args:
        samples: complex array ``(..., M)``.
        trajectory: float array ``(ndim, M)``.
        image_shape: spatial shape ``N``.

    Returns:
        complex128 ``(..., *N)``.
    """
    traj = np.asarray(trajectory, np.float64)
    ndim = len(image_shape)
    factors = [np.exp(1j * traj[a][:, None] * (np.arange(n) - n // 2)) for a, n in enumerate(image_shape)]
    axes = _LETTERS[:ndim]
    spec = "...m," + ",".join(f"m{a}" for a in axes) + f"->...{axes}"
    samples = np.asarray(samples, np.complex128)
    return np.einsum(spec, samples, *factors, optimize=True) / math.sqrt(np.prod(image_shape))

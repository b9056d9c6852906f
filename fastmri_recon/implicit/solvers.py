"""Root solvers for implicit layers: batched, line-search free, in TensorFlow graphs.

Every solver finds a root of ``g(z) = 0`` for a batch of independent problems. ``z`` is a float
tensor ``(batch, d)`` (float32 or float64) and ``g`` a function mapping it to the same shape; example
``b`` of ``g(z)`` must depend only on example ``b`` of ``z``. A deep-equilibrium fixed point
``z = f(z)`` is the root of ``g(z) = z - f(z)`` (`deq.DEQ` uses this convention).

Convergence is decided per example: example ``b`` has converged when
``||g(z_b)||_2 <= atol + tol * ||z_b||_2``. A converged example is frozen (its iterate and, for
Broyden, its inverse-Jacobian estimate stop changing) while the others go on; the loop stops when
every example has converged or after ``max_iter`` steps. A step whose ``g`` is not finite is refused
and freezes its example unconverged. The loops are ``tf.while_loop``s over fixed-size buffers, so the
solvers run eagerly and inside ``tf.function`` alike, with unknown (dynamic) batch and size.

The solvers:

- `fixed_point`: ``z <- z - mixing * g(z)`` (for ``g = z - f``: ``z <- (1 - mixing) z + mixing f(z)``).
- `anderson`: Anderson acceleration (type II) of the fixed-point map ``f(z) = z - g(z)``.
- `broyden`: limited-memory good Broyden (the DEQ solver of Bai et al. 2019), or adjoint Broyden,
  with the Outer-Problem-Awareness updates of SHINE (Ramzi et al. 2022) as an option. It returns the
  low-rank factors of its inverse-Jacobian estimate for SHINE to reuse:

      H = I + U^T V  ~  (dg/dz)^-1,   i.e.  H x = x + sum_i u_i <v_i, x>,  H^T x = x + sum_i v_i <u_i, x>,

  with ``U``, ``V`` float ``(batch, memory, d)`` (rows ``u_i``, ``v_i``; unused rows are zero).
  ``H_0 = I`` is the inverse Jacobian of ``g = z - f`` when ``f``'s Jacobian is neglected, so the
  first step is a plain fixed-point step ``z_1 = f(z_0)``, and SHINE with no update is the
  Jacobian-free direction. Each step is ``z <- z - H g(z)`` (no line search) followed by a rank-one
  update of ``H`` (Sherman-Morrison form):

  - good Broyden, ``s = z_new - z``, ``y = g(z_new) - g(z)``:
    ``H <- H + (s - H y) (H^T s)^T / <s, H y>`` (secant condition ``H y = s``);
  - adjoint Broyden (Schlenkrich, Griewank and Walther 2010, the tangent choice ``sigma = g(z_new)``):
    the Jacobian estimate ``B = H^-1`` gets ``B <- B + sigma sigma^T (J - B) / <sigma, sigma>`` with
    ``J`` the true Jacobian at ``z_new``, so that ``sigma^T B = sigma^T J``; inverted,
    ``H <- H + (H sigma) (sigma - b)^T / <b, sigma>`` with ``b = H^T J^T sigma`` (one vector-Jacobian
    product per step);
  - OPA (outer-problem awareness): every ``opa_every`` steps, one more adjoint update with the tangent
    ``sigma = H^T e`` where ``e`` is the outer gradient ``opa_direction(z)`` (the gradient of the
    loss with respect to ``z``). It makes ``B^T sigma = J^T sigma``, so ``H^T`` is exact on
    ``J^T sigma ~ e`` (``sigma`` being the current estimate of ``J^-T e``): the direction SHINE needs.
    (For the symmetric Jacobians of the BFGS case the paper describes, ``H^T e = H e``.)

  Updates whose denominator is negligible (``|<a, b>| <= 1e-6 ||a|| ||b||``) are skipped. When the
  ``memory`` rows are used up, the oldest is overwritten (``memory >= max_iter`` keeps them all).
"""

from typing import NamedTuple

import tensorflow as tf

from fastmri_recon.errors import ConfigError

TINY = 1e-30  # guards divisions by norms that may vanish
SKIP_COSINE = 1e-6  # rank-one updates with |<a, b>| <= SKIP_COSINE ||a|| ||b|| are skipped


class SolverResult(NamedTuple):
    """What a solver returns.

    Attributes:
        z: float ``(batch, d)``, the last accepted iterate of each example.
        residual: float ``(batch,)``, ``||g(z)||_2``.
        converged: bool ``(batch,)``, whether the tolerance was met.
        n_steps: int32 ``(batch,)``, accepted steps of each example.
        n_iter: int32 scalar, iterations of the loop (the maximum of ``n_steps`` unless a step failed).
        factors: ``(U, V)`` float ``(batch, memory, d)`` with ``H = I + U^T V ~ (dg/dz)^-1``
            (`broyden` only; None for the other solvers).
    """

    z: tf.Tensor
    residual: tf.Tensor
    converged: tf.Tensor
    n_steps: tf.Tensor
    n_iter: tf.Tensor
    factors: tuple | None = None


def apply_inverse(factors, x):
    """``H x = x + U^T (V x)`` for Broyden factors ``(U, V)`` ``(batch, m, d)`` and ``x`` ``(batch, d)``."""
    if factors is None:
        return x
    u, v = factors
    return x + tf.einsum("bmd,bm->bd", u, tf.einsum("bmd,bd->bm", v, x))


def apply_inverse_transpose(factors, x):
    """``H^T x = x + V^T (U x)`` for Broyden factors ``(U, V)`` ``(batch, m, d)`` and ``x`` ``(batch, d)``."""
    if factors is None:
        return x
    u, v = factors
    return apply_inverse((v, u), x)


def transpose_factors(factors):
    """Factors of ``H^T`` from those of ``H`` (the roles of ``U`` and ``V`` swap)."""
    u, v = factors
    return v, u


def _norm(x):
    return tf.norm(x, axis=-1)


def _dot(a, b):
    return tf.reduce_sum(a * b, axis=-1)


def _where(condition, a, b):
    """Per-example select: ``condition`` ``(batch,)``, ``a``, ``b`` ``(batch, ...)``."""
    for _ in range(a.shape.rank - 1):
        condition = condition[..., None]
    return tf.where(condition, a, b)


def _write_row(buffer, row, value, where):
    """``buffer[b, row] = value[b]`` for the examples ``b`` where ``where[b]``; buffer ``(batch, m, d)``."""
    rows = buffer.shape[1] if buffer.shape[1] is not None else tf.shape(buffer)[1]
    selected = tf.one_hot(row, rows, dtype=buffer.dtype)[None, :, None]
    selected = selected * tf.cast(where, buffer.dtype)[:, None, None]
    return buffer * (1 - selected) + value[:, None, :] * selected


def _rank_one(factors, row, a, b, accept):
    """Add the rank-one term ``a b^T / <a', b'>`` prepared by the caller into ``row`` of the factors.

    Args:
        factors: ``(U, V)`` ``(batch, m, d)``.
        row: int32 scalar, the row to write.
        a, b: ``(u, v)`` rows ``(batch, d)`` of the update (already divided by the denominator).
        accept: bool ``(batch,)``, the examples to update.
    """
    finite = tf.reduce_all(tf.math.is_finite(a), -1) & tf.reduce_all(tf.math.is_finite(b), -1)
    accept = accept & finite
    return _write_row(factors[0], row, a, accept), _write_row(factors[1], row, b, accept)


def _significant(den, a, b):
    """Whether ``|den| > SKIP_COSINE ||a|| ||b||`` (the rank-one update is well defined), ``(batch,)``."""
    return tf.abs(den) > SKIP_COSINE * _norm(a) * _norm(b)


def good_broyden_update(factors, row, s, y, accept):
    """Good Broyden: ``H <- H + (s - H y) (H^T s)^T / <s, H y>`` on the examples ``accept``."""
    hy = apply_inverse(factors, y)
    den = _dot(s, hy)
    accept = accept & _significant(den, s, hy)
    safe = tf.where(accept, den, tf.ones_like(den))
    return _rank_one(factors, row, (s - hy) / safe[:, None], apply_inverse_transpose(factors, s), accept)


def adjoint_broyden_update(factors, row, sigma, jt_sigma, accept):
    """Adjoint Broyden in tangent ``sigma``: ``H <- H + (H sigma) (sigma - b)^T / <b, sigma>``, ``b = H^T J^T sigma``.

    Args:
        factors: ``(U, V)`` ``(batch, m, d)``.
        row: int32 scalar, the row to write.
        sigma: ``(batch, d)`` tangent directions.
        jt_sigma: ``(batch, d)``, ``J^T sigma`` with ``J = dg/dz`` at the current point.
        accept: bool ``(batch,)``, the examples to update.
    """
    b = apply_inverse_transpose(factors, jt_sigma)
    den = _dot(b, sigma)
    accept = accept & _significant(den, b, sigma)
    safe = tf.where(accept, den, tf.ones_like(den))
    return _rank_one(factors, row, apply_inverse(factors, sigma), (sigma - b) / safe[:, None], accept)


def vjp(g, z, cotangent):
    """``(g(z), J^T cotangent)`` with ``J = dg/dz``; ``cotangent`` a tensor or a function of ``g(z)``."""
    with tf.GradientTape() as tape:
        tape.watch(z)
        gz = g(z)
    cotangent = cotangent(gz) if callable(cotangent) else cotangent
    return gz, tape.gradient(gz, z, output_gradients=tf.stop_gradient(cotangent))


def _check(max_iter, tol, atol):
    if int(max_iter) < 0 or tol < 0 or atol < 0:
        raise ConfigError(f"solver: max_iter, tol and atol must be >= 0, got {max_iter}, {tol}, {atol}")


def _iterate(g, z0, max_iter, tol, atol, propose, evaluate=None, update=None, extra=()):
    """The loop shared by the solvers.

    Args:
        g: the root function.
        z0: float ``(batch, d)``.
        max_iter, tol, atol: see the module docstring.
        propose: ``(i, z, gz, extra) -> z_candidate`` (``(batch, d)``).
        evaluate: ``z -> (g(z), aux)``; default ``(g(z), zeros)``.
        update: ``(i, z, gz, z_new, g_new, aux, accepted, extra) -> extra``, or None.
        extra: the solver's own loop state (a nest of tensors).

    Returns:
        ``(SolverResult without factors, extra)``.
    """
    _check(max_iter, tol, atol)
    evaluate = evaluate or (lambda z: (g(z), tf.zeros_like(z)))
    z0 = tf.convert_to_tensor(z0)
    gz0 = g(z0)
    residual0 = _norm(gz0)

    def converged(z, residual):
        return residual <= atol + tol * _norm(z)

    done0 = converged(z0, residual0)
    state0 = (
        tf.constant(0, tf.int32),
        z0,
        gz0,
        residual0,
        done0,
        ~done0 & tf.reduce_all(tf.math.is_finite(gz0), -1),
        tf.zeros(tf.shape(done0), tf.int32),
        extra,
    )

    def cond(i, z, gz, residual, done, active, steps, extra):
        return (i < max_iter) & tf.reduce_any(active)

    def body(i, z, gz, residual, done, active, steps, extra):
        candidate = _where(active, propose(i, z, gz, extra), z)
        g_candidate, aux = evaluate(candidate)
        g_candidate = tf.ensure_shape(g_candidate, z.shape)  # g may lose the static shape
        accepted = active & tf.reduce_all(tf.math.is_finite(g_candidate), -1)
        accepted = accepted & tf.reduce_all(tf.math.is_finite(candidate), -1)
        z_new = _where(accepted, candidate, z)
        g_new = _where(accepted, g_candidate, gz)
        if update is not None:
            extra = update(i, z, gz, z_new, g_new, aux, accepted, extra)
        new_residual = _norm(g_new)
        new_done = tf.where(accepted, converged(z_new, new_residual), done)
        steps = steps + tf.cast(accepted, tf.int32)
        return i + 1, z_new, g_new, new_residual, new_done, accepted & ~new_done, steps, extra

    i, z, _, residual, done, _, steps, extra = tf.while_loop(cond, body, state0)
    return SolverResult(z, residual, done, steps, i), extra


def fixed_point(g, z0, max_iter=50, tol=1e-4, atol=0.0, mixing=1.0):
    """Damped fixed-point iteration ``z <- z - mixing g(z)``.

    Args:
        g: root function, float ``(batch, d)`` -> ``(batch, d)``.
        z0: float ``(batch, d)``, the initial iterate.
        max_iter: maximum number of steps.
        tol, atol: relative and absolute tolerances (see the module docstring).
        mixing: step size (1: the plain iteration ``z <- f(z)`` of ``g = z - f``).

    Returns:
        `SolverResult` (``factors`` None).
    """
    result, _ = _iterate(g, z0, max_iter, tol, atol, lambda i, z, gz, extra: z - mixing * gz)
    return result


def anderson(g, z0, max_iter=50, tol=1e-4, atol=0.0, memory=5, mixing=1.0, regularization=1e-4):
    """Anderson acceleration (type II) of ``f(z) = z - g(z)``.

    Step ``k`` keeps the last ``m = min(k + 1, memory)`` iterates ``x_i`` and values ``f_i``, finds the
    weights ``alpha`` (summing to one) minimising ``||sum_i alpha_i (f_i - x_i)||`` (normal equations
    with a Tikhonov term ``regularization`` times the mean squared residual of the kept iterates) and
    moves to ``z = mixing sum_i alpha_i f_i + (1 - mixing) sum_i alpha_i x_i``.

    Args:
        g: root function, float ``(batch, d)`` -> ``(batch, d)``.
        z0: float ``(batch, d)``.
        max_iter: maximum number of steps.
        tol, atol: relative and absolute tolerances (see the module docstring).
        memory: iterates kept.
        mixing: the damping ``beta`` (1: undamped).
        regularization: relative Tikhonov weight of the least-squares problem.

    Returns:
        `SolverResult` (``factors`` None).
    """
    z0 = tf.convert_to_tensor(z0)
    memory = int(memory)
    if memory < 1:
        raise ConfigError(f"anderson: memory must be >= 1, got {memory}")
    buffer_shape = tf.stack([tf.shape(z0)[0], memory, tf.shape(z0)[1]])
    history = (tf.zeros(buffer_shape, z0.dtype), tf.zeros(buffer_shape, z0.dtype))

    def propose(i, z, gz, history):
        # the kept iterates and this one (written for real by `update` once the step is accepted)
        xs, fs = update(i, z, gz, None, None, None, tf.ones(tf.shape(z)[:1], tf.bool), history)
        valid = tf.cast(tf.range(memory) <= i, z.dtype)  # rows filled so far (the same for every active example)
        residuals = fs - xs
        gram = tf.einsum("bmd,bnd->bmn", residuals, residuals) * (valid[:, None] * valid[None, :])
        scale = tf.linalg.trace(gram) / tf.reduce_sum(valid)
        eye = tf.eye(memory, dtype=z.dtype)
        gram = gram + eye * (regularization * scale + TINY)[:, None, None] * valid + eye * (1 - valid)
        alpha = tf.linalg.solve(gram, tf.tile(valid[None, :, None], [tf.shape(z)[0], 1, 1]))[..., 0]
        alpha = alpha / tf.reduce_sum(alpha, -1, keepdims=True)
        candidate = mixing * tf.einsum("bm,bmd->bd", alpha, fs) + (1 - mixing) * tf.einsum("bm,bmd->bd", alpha, xs)
        # a singular system falls back to the damped fixed-point step
        return _where(tf.reduce_all(tf.math.is_finite(candidate), -1), candidate, z - mixing * gz)

    def update(i, z, gz, z_new, g_new, aux, accepted, history):
        xs, fs = history
        row = i % memory
        return _write_row(xs, row, z, accepted), _write_row(fs, row, z - gz, accepted)

    result, _ = _iterate(g, z0, max_iter, tol, atol, propose, update=update, extra=history)
    return result


def broyden(
    g,
    z0,
    max_iter=30,
    tol=1e-4,
    atol=0.0,
    memory=None,
    update="good",
    opa_direction=None,
    opa_every=None,
    init_factors=None,
):
    """Limited-memory, line-search-free Broyden method; returns the inverse-Jacobian factors.

    Args:
        g: root function, float ``(batch, d)`` -> ``(batch, d)``; differentiable when ``update`` is
            ``"adjoint"`` or OPA is on (vector-Jacobian products by ``tf.GradientTape``).
        z0: float ``(batch, d)``.
        max_iter: maximum number of steps.
        tol, atol: relative and absolute tolerances (see the module docstring).
        memory: rank-one updates kept (default: ``max_iter``, plus the OPA updates, so none is lost).
        update: ``"good"`` (Broyden's good method) or ``"adjoint"`` (adjoint Broyden, tangent
            ``g(z_new)``; one vector-Jacobian product per step).
        opa_direction: ``z -> e`` ``(batch, d)``, the outer-problem gradient at ``z``, or None.
        opa_every: the OPA period in steps (an extra adjoint update at steps ``opa_every``,
            ``2 opa_every``, ...), with ``opa_direction``.
        init_factors: ``(U0, V0)`` ``(batch, m0, d)``: start from ``H_0 = I + U0^T V0`` instead of ``I``;
            the buffers then hold ``m0 + memory`` rows, new updates written after the initial ones.

    Returns:
        `SolverResult` with ``factors = (U, V)``: ``H = I + U^T V`` at the last iterate.

    Raises:
        ConfigError: for an unknown update, or OPA half configured.
    """
    if update not in ("good", "adjoint"):
        raise ConfigError(f"broyden: update must be 'good' or 'adjoint', got {update!r}")
    if (opa_direction is None) != (opa_every is None) or (opa_every is not None and int(opa_every) < 1):
        raise ConfigError("broyden: OPA needs both opa_direction (a function) and opa_every (>= 1)")
    z0 = tf.convert_to_tensor(z0)
    n_opa = 0 if opa_every is None else int(max_iter) // int(opa_every)
    memory = int(memory or max(int(max_iter), 1) + n_opa)
    if init_factors is None:
        offset = 0
        shape = tf.stack([tf.shape(z0)[0], memory, tf.shape(z0)[1]])
        factors = (tf.zeros(shape, z0.dtype), tf.zeros(shape, z0.dtype))
    else:
        offset = int(init_factors[0].shape[1])
        shape = tf.stack([tf.shape(z0)[0], memory, tf.shape(z0)[1]])
        factors = tuple(tf.concat([tf.cast(f, z0.dtype), tf.zeros(shape, z0.dtype)], 1) for f in init_factors)
    rows = offset + memory
    state = (factors, tf.constant(offset, tf.int32))  # factors and the next row to write

    def next_row(row):
        return row, (row + 1) % rows

    def opa_update(i, z, active, state):
        factors, row = state
        sigma = apply_inverse_transpose(factors, opa_direction(z))
        sigma = sigma / tf.maximum(_norm(sigma), TINY)[:, None]
        _, jt_sigma = vjp(g, z, sigma)
        row, following = next_row(row)
        return adjoint_broyden_update(factors, row, sigma, jt_sigma, active), following

    def propose(i, z, gz, state):
        return z - apply_inverse(state[0], gz)

    if update == "adjoint":

        def evaluate(z):
            return vjp(g, z, lambda gz: gz)

    else:
        evaluate = None

    def broyden_update(i, z, gz, z_new, g_new, jt_g, accepted, state):
        factors, row = state
        row, following = next_row(row)
        if update == "good":
            factors = good_broyden_update(factors, row, z_new - z, g_new - gz, accepted)
        else:
            factors = adjoint_broyden_update(factors, row, g_new, jt_g, accepted)
        state = (factors, following)
        if opa_every is not None:
            due = tf.equal((i + 1) % opa_every, 0) & tf.reduce_any(accepted)
            state = tf.cond(due, lambda: opa_update(i, z_new, accepted, state), lambda: state)
        return state

    result, (factors, _) = _iterate(g, z0, max_iter, tol, atol, propose, evaluate, broyden_update, state)
    return result._replace(factors=factors)


SOLVERS = {"broyden": broyden, "anderson": anderson, "fixed-point": fixed_point}


def get_solver(name):
    """The solver function called ``name`` (``"broyden"``, ``"anderson"`` or ``"fixed-point"``).

    Raises:
        ConfigError: for an unknown name.
    """
    if name not in SOLVERS:
        raise ConfigError(f"unknown solver {name!r} (known: {', '.join(SOLVERS)})")
    return SOLVERS[name]

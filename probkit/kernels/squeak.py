r"""SQUEAK: single-pass ridge-leverage-score Nyström sampling (Calandriello et al., 2017).

**RLS estimate from a dictionary.** For dictionary points with weights
:math:`s_i^2 = q_i/(p_i \bar q)` let :math:`A = \operatorname{diag}(s) K_{SS} \operatorname{diag}(s)`. The estimate of :math:`\tau_i(\gamma) = [K(K+\gamma I)^{-1}]_{ii}` is

.. math::
    \tilde\tau_i = c_\varepsilon \, \frac{[A (A+\gamma I)^{-1}]_{ii}}{s_i^2}
    = c_\varepsilon \, \frac{1 - \gamma [(A+\gamma I)^{-1}]_{ii}}{s_i^2}
    = c_\varepsilon \, \frac{\sum_k V_{ik}^2 \lambda_k / (\lambda_k + \gamma)}{s_i^2},

with :math:`A = V\Lambda V^\top`; the second form is computed, with a Cholesky factor of
:math:`A+\gamma I` (see :func:`_estimate_rls` on its rounding). By Woodbury, without :math:`c_\varepsilon`, this is
:math:`\varphi_i^\top(\tilde C + \gamma I)^{-1}\varphi_i` with :math:`\tilde C = \sum_S s_i^2
\varphi_i\varphi_i^\top`, while :math:`\tau_i = \varphi_i^\top(C+\gamma I)^{-1}\varphi_i`.

**The constant and the range of eps.** If the merged set is
:math:`\eta`-accurate, :math:`(1-\eta)(C+\gamma I) \preceq \tilde C + \gamma I \preceq
(1+\eta)(C+\gamma I)`, the raw estimate lies in :math:`[\tau_i/(1+\eta), \tau_i/(1-\eta)]`, and
:math:`c_\varepsilon = 1-\eta` gives :math:`\tau_i (1-\eta)/(1+\eta) \le \tilde\tau_i \le \tau_i`:
never an over-estimate (so :math:`p_\text{new} = \min(\tilde\tau, p_\text{old})` is a valid
thinning and the size stays :math:`O(\bar q\, d_\text{eff})`) and within
:math:`\alpha = (1+\eta)/(1-\eta)` below. In SQUEAK a new chunk enters exactly (:math:`p = 1,
q = \bar q`), so the union of an :math:`\varepsilon`-accurate dictionary with it is
:math:`\varepsilon`-accurate: :math:`\eta = \varepsilon`, constant :math:`1-\varepsilon`, and
**eps must lie in (0, 1)**. (Merging two sampled dictionaries, as DISQUEAK does, gives
:math:`\eta = 2\varepsilon`; see :mod:`probkit.kernels.disqueak`.)

**Shrink.** :math:`p_\text{new} = \min(\tilde\tau, p_\text{old})`, :math:`q_\text{new} \sim
\operatorname{Binomial}(q_\text{old}, p_\text{new}/p_\text{old})`; points with :math:`q = 0` leave.

**Static capacity.** The dictionary has ``max_dict_size`` slots; each step merges it with a
chunk of ``chunk_size`` points (``lax.scan``), so memory is :math:`O(n d + m^2)` and the
:math:`n \times n` matrix is never formed. Overflow is flagged in the scan and raised after.
The dictionary is kept compact (valid slots first), and each step's Cholesky factorisation runs
on the smallest of eight static sizes (``capacity/8, 2 capacity/8, ...``) that holds it, plus
the chunk, so a generous capacity costs memory, not time.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._validate import as_matrix, check_open_interval, check_positive, check_positive_int, is_concrete
from ._base import AbstractKernel
from .dictionary import Dictionary

_OVERFLOW_MSG = (
    "the SQUEAK dictionary overflowed its capacity max_dict_size; raise max_dict_size "
    "(or raise gamma / lower qbar so fewer points are kept)"
)


def default_qbar(n: int, eps: float, *, delta: float = 0.1, const: float = 0.1) -> int:
    r"""Copies per point, :math:`\bar q = \lceil c\, \alpha \log(2n/\delta) / \varepsilon^2 \rceil`.

    :math:`\alpha = (1+\varepsilon)/(1-\varepsilon)`. The paper's union-bound constant is
    :math:`c = 26`, a worst-case union bound that keeps almost every point when
    :math:`n < 26\,\bar q\, d_\text{eff}`; the default ``const = 0.1`` is calibrated
    empirically (tests: the 2 eps error bound in at least 19 of 20 seeds) and keeps the
    dictionary near :math:`\bar q\, d_\text{eff}` points.
    """
    alpha = (1.0 + eps) / (1.0 - eps)
    return max(1, int(math.ceil(const * alpha * math.log(2.0 * n / delta) / eps**2)))


def _estimate_rls(kernel, points, probs, counts, mask, qbar, gamma, const):
    r"""The dictionary RLS estimate (module doc) for every valid slot; 0 elsewhere.

    Uses :math:`1 - \gamma [(A+\gamma I)^{-1}]_{ii}` with :math:`[(A+\gamma I)^{-1}]_{ii} =
    \lVert L^{-1} e_i \rVert^2` from a Cholesky factor :math:`L` of :math:`A + \gamma I`
    (positive definite, eigenvalues at least :math:`\gamma`, although :math:`A` alone is often
    numerically rank-deficient). Its absolute rounding error, of order
    :math:`u \lVert A + \gamma I\rVert / \gamma` for unit roundoff :math:`u`, is that of the
    eigen-form too (the small eigenvalues carry the same absolute error), at about a third of the cost.
    """
    dtype = points.dtype
    s2 = jnp.where(mask, counts.astype(dtype) / (jnp.where(mask, probs, 1.0) * qbar), 0.0)
    s = jnp.sqrt(s2)
    eye = jnp.eye(s.shape[0], dtype=dtype)
    L = jnp.linalg.cholesky(s[:, None] * kernel.gram(points) * s[None, :] + gamma * eye)
    m_diag = jnp.sum(jax.scipy.linalg.solve_triangular(L, eye, lower=True) ** 2, axis=0)
    raw = jnp.clip(1.0 - gamma * m_diag, 0.0, 1.0)
    return jnp.where(mask, const * raw / jnp.where(mask, s2, 1.0), 0.0)


_N_BUCKETS = 8


def _estimate_rls_compact(kernel, union: Dictionary, capacity: int, gamma, const):
    """:func:`_estimate_rls` when the first ``capacity`` slots are compact (valid slots first).

    The factorisation, the dominant cost, runs on the first ``b`` dictionary slots plus
    the rest, with ``b`` the smallest of ``_N_BUCKETS`` static sizes that holds the current
    dictionary (``lax.switch``). Empty slots contribute zero rows and columns to the
    weighted gram, so the estimate is the same as on all slots; the cost follows the
    dictionary's actual size instead of its capacity.
    """
    rest = union.mask.shape[0] - capacity
    buckets = sorted({max(1, math.ceil(capacity * k / _N_BUCKETS)) for k in range(1, _N_BUCKETS + 1)})

    def branch(b):
        sel = np.concatenate([np.arange(b), capacity + np.arange(rest)])

        def f(args):
            kernel, u, gamma, const = args
            tau = _estimate_rls(kernel, u.points[sel], u.probs[sel], u.counts[sel], u.mask[sel], u.qbar, gamma, const)
            return jnp.zeros(u.mask.shape, tau.dtype).at[sel].set(tau)

        return f

    def full(args):
        kernel, u, gamma, const = args
        return _estimate_rls(kernel, u.points, u.probs, u.counts, u.mask, u.qbar, gamma, const)

    def bucketed(args):
        i = jnp.searchsorted(jnp.asarray(buckets), jnp.sum(args[1].mask[:capacity]))
        return jax.lax.switch(i, [branch(b) for b in buckets], args)

    # Under vmap the branch index is batched and every branch would run (and XLA's CPU
    # runtime was seen to stall on it): a batched call uses all slots instead.
    leaves, treedef = jax.tree.flatten((kernel, union, jnp.asarray(gamma), jnp.asarray(const)))

    @jax.custom_batching.custom_vmap
    def estimate(*leaves):
        return bucketed(jax.tree.unflatten(treedef, leaves))

    @estimate.def_vmap
    def _(axis_size, in_batched, *leaves):
        axes = [0 if b else None for b in in_batched]
        return jax.vmap(lambda *ls: full(jax.tree.unflatten(treedef, ls)), in_axes=axes)(*leaves), True

    return estimate(*leaves)


def _merge_shrink(key, kernel, union: Dictionary, capacity, gamma, const, *, compact: int | None = None):
    """Estimate RLS on ``union``, thin the multiplicities, keep ``capacity`` slots.

    With ``compact = c`` the first ``c`` slots of ``union`` must be compact (valid slots
    first), and the estimate costs what their filled size needs (all later slots count).
    Returns the shrunk dictionary and an overflow flag (more survivors than slots).
    """
    if compact is not None:
        tau = _estimate_rls_compact(kernel, union, compact, gamma, const)
    else:
        tau = _estimate_rls(
            kernel, union.points, union.probs, union.counts, union.mask, union.qbar, gamma, const
        )
    p_old = jnp.where(union.mask, union.probs, 1.0)
    p_new = jnp.where(union.mask, jnp.minimum(tau, p_old), 1.0)
    n_trials = jnp.where(union.mask, union.counts, 0).astype(p_old.dtype)
    q_new = jax.random.binomial(key, n_trials, jnp.clip(p_new / p_old, 0.0, 1.0)).astype(
        union.counts.dtype
    )
    keep = union.mask & (q_new > 0)
    order = jnp.argsort(~keep, stable=True)[:capacity]
    overflow = jnp.sum(keep) > capacity
    out = Dictionary(
        indices=jnp.where(keep, union.indices, -1)[order],
        points=union.points[order],
        probs=p_new[order],
        counts=jnp.where(keep, q_new, 0)[order],
        rls=tau[order],
        mask=keep[order],
        qbar=union.qbar,
    )
    return out, overflow


def _concat(a: Dictionary, b: Dictionary) -> Dictionary:
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


def _empty(capacity: int, d: int, dtype, qbar: int) -> Dictionary:
    return Dictionary(
        indices=jnp.full((capacity,), -1, jnp.int32),
        points=jnp.zeros((capacity, d), dtype),
        probs=jnp.ones((capacity,), dtype),
        counts=jnp.zeros((capacity,), jnp.int32),
        rls=jnp.zeros((capacity,), dtype),
        mask=jnp.zeros((capacity,), bool),
        qbar=qbar,
    )


def _chunk_dictionary(points, indices, mask, qbar) -> Dictionary:
    """A chunk entering exactly: p = 1, q = qbar."""
    dtype = points.dtype
    return Dictionary(
        indices=jnp.where(mask, indices, -1).astype(jnp.int32),
        points=points,
        probs=jnp.ones(mask.shape, dtype),
        counts=jnp.where(mask, qbar, 0).astype(jnp.int32),
        rls=jnp.ones(mask.shape, dtype),
        mask=mask,
        qbar=qbar,
    )


def _squeak_scan(
    keys: PRNGKeyArray,
    chunks: Float[Array, "c b d"],
    chunk_idx: Int[Array, "c b"],
    chunk_mask: Bool[Array, "c b"],
    kernel: AbstractKernel,
    *,
    gamma,
    const,
    qbar: int,
    capacity: int,
) -> tuple[Dictionary, Bool[Array, ""]]:
    """One pass of SQUEAK over pre-chunked data (an unbalanced merge tree), one key per chunk."""
    d = chunks.shape[-1]
    init = (_empty(capacity, d, chunks.dtype, qbar), jnp.array(False))

    def step(carry, inp):
        dic, flag = carry
        k, pts, idx, msk = inp
        union = _concat(dic, _chunk_dictionary(pts, idx, msk, qbar))
        new, over = _merge_shrink(k, kernel, union, capacity, gamma, const, compact=capacity)
        return (new, flag | over), None

    (dic, flag), _ = jax.lax.scan(step, init, (keys, chunks, chunk_idx, chunk_mask))
    return dic, flag


def _chunk(X, chunk_size: int, n_parts: int = 1):
    """Pad X to ``n_parts * n_chunks * chunk_size`` rows; return chunks, indices, mask."""
    n, d = X.shape
    per = n_parts * chunk_size
    total = -(-n // per) * per
    Xp = jnp.pad(X, ((0, total - n), (0, 0)))
    idx = jnp.arange(total, dtype=jnp.int32)
    mask = idx < n
    shape = (total // chunk_size, chunk_size)
    return Xp.reshape(*shape, d), idx.reshape(shape), mask.reshape(shape)


def _validate(X, kernel, gamma, eps, eps_high, qbar, chunk_size, max_dict_size, n_parts=1):
    X = as_matrix("X", X)
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(f"kernel must be a probkit.kernels kernel, got {type(kernel).__name__}")
    kernel.check_input("X", X)
    check_positive("gamma", gamma)
    check_open_interval("eps", eps, 0.0, eps_high)
    n = X.shape[0]
    if n == 0:
        raise ValueError("X must hold at least one point (got 0 rows)")
    qbar = default_qbar(n, float(eps)) if qbar is None else check_positive_int("qbar", qbar)
    per_part = -(-n // n_parts)
    if max_dict_size is None:
        max_dict_size = min(per_part, 1024)
    max_dict_size = check_positive_int("max_dict_size", max_dict_size)
    if chunk_size is None:
        chunk_size = max(16, min(per_part, max_dict_size // 2))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    return X, qbar, chunk_size, max_dict_size


def _finish(dic: Dictionary, overflow, compact: bool = True) -> Dictionary:
    """Raise on overflow (ValueError outside jit, EqxRuntimeError inside); drop empty slots.

    Compacting needs concrete values: under ``jit`` / ``vmap`` the padded dictionary is kept.
    """
    if is_concrete(overflow):
        if bool(overflow):
            raise ValueError(_OVERFLOW_MSG)
    else:
        dic = eqx.error_if(dic, overflow, _OVERFLOW_MSG)
    if compact and is_concrete(dic.mask):
        dic = dic.compact()
    return dic


def squeak(
    key: PRNGKeyArray,
    X: Float[Array, "n d"],
    kernel: AbstractKernel,
    *,
    gamma: float,
    eps: float,
    qbar: int | None = None,
    chunk_size: int | None = None,
    max_dict_size: int | None = None,
    compact: bool = True,
) -> Dictionary:
    r"""Sample a Nyström dictionary by approximate ridge leverage scores in one pass.

    Args:
        key: PRNG key.
        X: data ``(n, d)``.
        kernel: a kernel module, e.g. :class:`~probkit.kernels.RBF`.
        gamma: ridge :math:`\gamma > 0`.
        eps: accuracy :math:`\varepsilon \in (0, 1)` (the estimator's constant is
            :math:`1-\varepsilon`, see the module doc).
        qbar: copies per point :math:`\bar q` (default :func:`default_qbar`).
        chunk_size: points absorbed per step (default ``max_dict_size // 2``).
        max_dict_size: slots of the dictionary (default ``min(n, 1024)``); a ``ValueError``
            asks to raise it when more points survive.
        compact: drop the unused slots (default). A Nyström GP costs :math:`O(n M^2)` in the
            dictionary's capacity :math:`M`, used or not (2.6x slower per gradient with the
            padded default capacity); under ``jit``/``vmap`` the padded form is returned.

    Returns:
        A :class:`Dictionary` (compact, or of capacity ``max_dict_size``); :math:`O(n\, m^2)` time for a
        dictionary of ``m`` points (rounded up to a multiple of ``max_dict_size / 8``) with
        ``chunk_size`` of order ``m``, memory :math:`O(nd + M^2)` for ``M = max_dict_size``.
    """
    X, qbar, chunk_size, capacity = _validate(
        X, kernel, gamma, eps, 1.0, qbar, chunk_size, max_dict_size
    )
    chunks, idx, mask = _chunk(X, chunk_size)
    dic, overflow = _run_squeak(
        key, chunks, idx, mask, kernel, gamma=gamma, const=1.0 - eps, qbar=qbar, capacity=capacity
    )
    return _finish(dic, overflow, compact)


@eqx.filter_jit
def _run_squeak(key, chunks, idx, mask, kernel, *, gamma, const, qbar, capacity):
    keys = jax.random.split(key, chunks.shape[0])
    return _squeak_scan(
        keys, chunks, idx, mask, kernel, gamma=gamma, const=const, qbar=qbar, capacity=capacity
    )


__all__ = ["squeak", "default_qbar"]

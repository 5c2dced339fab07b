r"""Benchmark metrics: distance to the reference, standardised bias, ESS.

For draws :math:`x` (chains × n × d, Stan-named coordinates) and reference
draws :math:`r` (m × d), with reference mean :math:`\mu` and sd :math:`\sigma`:

- ``sw2``: sliced Wasserstein :math:`SW_2` between :math:`(x-\mu)/\sigma` and
  :math:`(r-\mu)/\sigma` by probkit.ot's control-variate estimator, with its
  standard error ``sw2_stderr``; the larger sample is evenly thinned to the
  size of the smaller, so the value is comparable with the SW between two
  independent exact-draw sets of that size;
- ``mean_err_max`` / ``sd_err_max``: :math:`\max_i |\bar x_i - \mu_i|/\sigma_i`
  and :math:`\max_i |s_i/\sigma_i - 1|` (:math:`s` the draws' sd), the
  mean and sd errors in reference-sd units; the only metrics available when
  the reference is a summary (mean and sd, no draws): the others are then
  ``None`` and named in the record's ``unavailable`` list;
- ``bias_x`` / ``bias_x2``: the standardised squared bias of
  :math:`E[x]` and :math:`E[x^2]`, :math:`(\bar x - \mu)^2/\sigma^2` and
  :math:`(\overline{x^2} - E_r[x^2])^2/\mathrm{Var}_r(x^2)`, max and mean over
  coordinates;
- ``grads_to_bias``: gradient evaluations after which the max bias of
  :math:`E[x^2]` stays below 0.01 (checked at the draws' checkpoints);
- ``trace_grads`` / ``trace_sw2`` / ``trace_bias_x2_max``: the metrics at
  checkpoints along the run, each on all draws so far (MCMC; one point for
  i.i.d. draws); the last point is computed exactly as ``sw2`` /
  ``bias_x2_max`` (same draws, same key), so the curve ends at the table's value;
- ``ess_bulk``: minimum over coordinates of the rank-normalised bulk ESS
  (ArviZ when installed, else NumPyro's ESS), per second and per 1000 gradients.

Checks of a model against Stan (``scripts/verify_posteriordb.py``, the recorded
Stan points in the tests): :func:`offset_deviation` and :func:`gradient_error`.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

BIAS_THRESHOLD = 0.01


def standardise(draws: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = reference.mean(axis=0), reference.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (draws - mu) / sd, (reference - mu) / sd


@functools.partial(jax.jit, static_argnames="n_projections")
def _sw_cv(key, x, r, n_projections: int):
    from ..ot import sliced_wasserstein

    return sliced_wasserstein(key, x, r, n_projections=n_projections, estimator="cv_lower", return_stderr=True)


def sliced_w2(key, x: np.ndarray, r: np.ndarray, n_projections: int = 200) -> tuple[float, float]:
    """SW₂ between standardised draws and reference (CV estimator) with its standard error.

    One compilation per shape (inputs are checked finite by :func:`compute_metrics`).
    """
    xs, rs = standardise(x, r)
    est, se = _sw_cv(key, np.asarray(xs, dtype=np.float32), np.asarray(rs, dtype=np.float32), n_projections)
    return float(est), float(se)


def standardised_bias(x: np.ndarray, r: np.ndarray) -> dict[str, float]:
    """Max and mean standardised squared bias of E[x] and E[x²] (x: (n, d), r: (m, d))."""
    mu, var = r.mean(axis=0), r.var(axis=0)
    m2, var2 = (r**2).mean(axis=0), (r**2).var(axis=0)
    b1 = (x.mean(axis=0) - mu) ** 2 / np.where(var > 0, var, 1.0)
    b2 = ((x**2).mean(axis=0) - m2) ** 2 / np.where(var2 > 0, var2, 1.0)
    return {
        "bias_x_max": float(b1.max()),
        "bias_x_mean": float(b1.mean()),
        "bias_x2_max": float(b2.max()),
        "bias_x2_mean": float(b2.mean()),
    }


def ess_bulk(chains: np.ndarray) -> float:
    """Minimum bulk ESS over coordinates of ``chains`` (C, n, d)."""
    try:
        import arviz as az

        values = [float(az.ess(chains[:, :, j], method="bulk")) for j in range(chains.shape[2])]
    except ImportError:
        from numpyro.diagnostics import effective_sample_size

        values = [float(effective_sample_size(chains[:, :, j])) for j in range(chains.shape[2])]
    values = [v for v in values if np.isfinite(v)]
    return float(min(values)) if values else float("nan")


def equal_size(x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evenly thin the larger of two samples to the size of the smaller one.

    SW between equal-size samples is one sort per slice, and it is the same
    quantity the two-independent-reference-sets baseline measures.
    """
    n = min(len(x), len(r))
    pick = lambda a: a[np.linspace(0, len(a) - 1, n).astype(int)]  # noqa: E731
    return pick(x), pick(r)


def _draw_major(chains: np.ndarray, i: int) -> np.ndarray:
    """The first ``i`` draws of every chain as ``(C·i, d)``, draw-major (even thinning keeps every chain)."""
    return np.swapaxes(chains[:, :i], 0, 1).reshape(-1, chains.shape[2])


def _sw_and_bias(key, chains: np.ndarray, r: np.ndarray, i: int, n_projections: int = 200) -> tuple[float, float, float]:
    x = _draw_major(chains, i)
    sw, se = sliced_w2(key, *equal_size(x, r), n_projections=n_projections)
    return sw, se, standardised_bias(x, r)["bias_x2_max"]


def checkpoints(n: int, planned: int | None = None, n_points: int = 6) -> np.ndarray:
    """Draw counts per chain where the trace is scored: ``n_points`` evenly up to ``planned``, those below ``n``, then ``n``.

    The ladder depends on the planned draws only, so runs of one configuration
    (every sampler, every seed, early stops included) share its sizes and
    SW₂ compiles once per size.
    """
    planned = n if planned is None else max(int(planned), n)
    ladder = np.unique(np.linspace(max(planned // n_points, 2), planned, n_points).astype(int))
    return np.append(ladder[ladder < n], n)


def trace_metrics(key, chains: np.ndarray, r: np.ndarray, grads: np.ndarray, n_points: int = 6,
                  final: tuple[float, float] | None = None, planned: int | None = None) -> dict:
    """SW₂ and max E[x²] bias at checkpoints along the draws (cumulative over chains).

    Checkpoint ``i`` (:func:`checkpoints`) scores the first ``i`` draws of
    every chain against the reference, both evenly thinned to the smaller size
    (as :func:`compute_metrics` does with all draws); ``final`` (SW₂, bias)
    replaces the last checkpoint's values by the run's headline values, which
    use the same draws.
    """
    c, n, d = chains.shape
    points = checkpoints(n, planned, n_points)
    sw, bias, g = [], [], []
    keys = jax.random.split(key, len(points))
    for j, (k, i) in enumerate(zip(keys, points)):
        if final is not None and j == len(points) - 1:
            s, b = final
        else:
            s, _, b = _sw_and_bias(k, chains, r, int(i))
        sw.append(s)
        bias.append(b)
        g.append(int(grads[i - 1]))
    below = np.asarray(bias) < BIAS_THRESHOLD
    # first checkpoint after which every later checkpoint is below the threshold
    grads_to_bias = None
    for j in range(len(points)):
        if below[j:].all():
            grads_to_bias = g[j]
            break
    return {"trace_grads": g, "trace_sw2": sw, "trace_bias_x2_max": bias, "grads_to_bias": grads_to_bias}


#: metrics that need reference draws (``None`` for a summaries-only reference)
DRAW_METRICS = ("sw2", "sw2_stderr", "bias_x2_max", "bias_x2_mean", "grads_to_bias")


def moment_errors(flat: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> dict[str, float]:
    """Max mean error and max relative sd error in reference-sd units (coordinates with a finite sd)."""
    ok = np.isfinite(sd) & (sd > 0)
    if not ok.any():
        return {"mean_err_max": None, "sd_err_max": None, "bias_x_max": None, "bias_x_mean": None}
    err = (flat[:, ok].mean(axis=0) - mean[ok]) / sd[ok]
    sd_err = flat[:, ok].std(axis=0) / sd[ok] - 1.0
    return {"mean_err_max": float(np.abs(err).max()), "sd_err_max": float(np.abs(sd_err).max()),
            "bias_x_max": float((err**2).max()), "bias_x_mean": float((err**2).mean())}


def compute_metrics(key, draws: dict, reference: dict | None, grads: np.ndarray, *, iid: bool = False,
                    moments: dict | None = None, planned: int | None = None, n_points: int = 6) -> dict:
    """All metrics for one run.

    ``draws``: {name: (chains, n)}; ``reference``: {name: (m,)} draws, or
    ``None`` with ``moments`` {name: (mean, sd)} (a summaries-only reference);
    ``planned``: the draws per chain asked for and ``n_points`` the trace's
    checkpoints (:func:`checkpoints`).
    """
    if reference is None and moments is None:
        raise ValueError("compute_metrics needs reference draws or reference moments")
    names = list(reference if reference is not None else moments)
    missing = [n for n in names if n not in draws]
    if missing:
        raise ValueError(f"draws lack reference names {missing}; draws have {sorted(draws)}")
    chains = np.stack([np.asarray(draws[n], dtype=float) for n in names], axis=-1)  # C, n, d
    flat = _draw_major(chains, chains.shape[1])
    if not np.all(np.isfinite(flat)):
        return {"failed": True, "error": "non-finite draws"}
    out = {"ess_bulk": ess_bulk(chains)}
    if reference is None:
        mean, sd = (np.array([moments[n][j] for n in names], dtype=float) for j in (0, 1))
        out.update(moment_errors(flat, mean, sd))
        out.update({m: None for m in DRAW_METRICS})
        out.update({"unavailable": list(DRAW_METRICS), "trace_grads": [], "trace_sw2": [], "trace_bias_x2_max": []})
        return out
    r = np.stack([np.asarray(reference[n], dtype=float) for n in names], axis=1)
    k_sw, k_trace = jax.random.split(key)
    sw, se, _ = _sw_and_bias(k_sw, chains, r, chains.shape[1])
    out.update({"sw2": sw, "sw2_stderr": se, **standardised_bias(flat, r)})
    out.update(moment_errors(flat, r.mean(axis=0), r.std(axis=0)))
    if iid:
        out.update({
            "trace_grads": [int(grads[-1])],
            "trace_sw2": [sw],
            "trace_bias_x2_max": [out["bias_x2_max"]],
            "grads_to_bias": int(grads[-1]) if out["bias_x2_max"] < BIAS_THRESHOLD else None,
        })
    else:
        out.update(trace_metrics(k_trace, chains, r, grads, final=(sw, out["bias_x2_max"]), planned=planned,
                                   n_points=n_points))
    return out


def offset_deviation(diffs: np.ndarray, logps: np.ndarray) -> float:
    r"""How far ``log p − log p_Stan`` is from a constant, relative to each point's own scale.

    ``max_i |d_i − median d| / max(1, median |log p|, |log p_i|)``: float64 rounding
    leaves ``d_i`` uncertain by ``~eps |log p_i|``, which at a far random point
    (``|log p_i| ~ 1e17``) is hundreds, while a wrong term shows at every point.
    """
    diffs = np.asarray(diffs, dtype=float)
    logps = np.abs(np.asarray(logps, dtype=float))
    scale = np.maximum(max(1.0, float(np.median(logps))), logps)
    return float(np.max(np.abs(diffs - np.median(diffs)) / scale))


def gradient_error(g: np.ndarray, ref: np.ndarray) -> float:
    """``max |g − ref| / max(1, max |ref|)``: a gradient against Stan's at one point."""
    ref = np.asarray(ref, dtype=float)
    return float(np.max(np.abs(np.asarray(g, dtype=float) - ref)) / max(1.0, float(np.max(np.abs(ref)))))

r"""Benchmark metrics: distance to the reference, standardised bias, ESS.

For draws :math:`x` (chains × n × d, Stan-named coordinates) and reference
draws :math:`r` (m × d), with reference mean :math:`\mu` and sd :math:`\sigma`:

- ``sw2``: sliced Wasserstein :math:`SW_2` between :math:`(x-\mu)/\sigma` and
  :math:`(r-\mu)/\sigma` by probkit.ot's control-variate estimator, with its
  standard error ``sw2_stderr``; the larger sample is evenly thinned to the
  size of the smaller, so the value is comparable with the SW between two
  independent exact-draw sets of that size;
- ``bias_x`` / ``bias_x2``: the standardised squared bias of
  :math:`E[x]` and :math:`E[x^2]`, :math:`(\bar x - \mu)^2/\sigma^2` and
  :math:`(\overline{x^2} - E_r[x^2])^2/\mathrm{Var}_r(x^2)`, max and mean over
  coordinates;
- ``grads_to_bias``: gradient evaluations after which the max bias of
  :math:`E[x^2]` stays below 0.01 (checked at the draws' checkpoints);
- ``ess_bulk``: minimum over coordinates of the rank-normalised bulk ESS
  (ArviZ when installed, else NumPyro's ESS), per second and per 1000 gradients.
"""

from __future__ import annotations

import jax
import numpy as np

BIAS_THRESHOLD = 0.01


def standardise(draws: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = reference.mean(axis=0), reference.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (draws - mu) / sd, (reference - mu) / sd


def sliced_w2(key, x: np.ndarray, r: np.ndarray, n_projections: int = 200) -> tuple[float, float]:
    """SW₂ between standardised draws and reference (CV estimator) with its standard error."""
    from ..ot import sliced_wasserstein

    xs, rs = standardise(x, r)
    est, se = sliced_wasserstein(
        key,
        np.asarray(xs, dtype=np.float32),
        np.asarray(rs, dtype=np.float32),
        n_projections=n_projections,
        estimator="cv_lower",
        return_stderr=True,
    )
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


def trace_metrics(key, chains: np.ndarray, r: np.ndarray, grads: np.ndarray, n_points: int = 8) -> dict:
    """SW₂ and max E[x²] bias at checkpoints along the draws (cumulative over chains).

    SW₂ at each checkpoint compares a fixed number of draws (the first
    checkpoint's count, evenly thinned from all draws so far) with as many
    reference draws, so every checkpoint compiles once.
    """
    c, n, d = chains.shape
    points = np.unique(np.linspace(max(n // n_points, 2), n, n_points).astype(int))
    size = min(c * int(points[0]), len(r))
    r_eq = r[np.linspace(0, len(r) - 1, size).astype(int)]
    sw, bias, g = [], [], []
    keys = jax.random.split(key, len(points))
    for k, i in zip(keys, points):
        x = np.swapaxes(chains[:, :i], 0, 1).reshape(-1, d)  # draw-major: thinning keeps every chain
        x_eq = x[np.linspace(0, len(x) - 1, size).astype(int)]
        sw.append(sliced_w2(k, x_eq, r_eq, n_projections=100)[0])
        bias.append(standardised_bias(x, r)["bias_x2_max"])
        g.append(int(grads[i - 1]))
    below = np.asarray(bias) < BIAS_THRESHOLD
    # first checkpoint after which every later checkpoint is below the threshold
    grads_to_bias = None
    for j in range(len(points)):
        if below[j:].all():
            grads_to_bias = g[j]
            break
    return {"trace_grads": g, "trace_sw2": sw, "trace_bias_x2_max": bias, "grads_to_bias": grads_to_bias}


def compute_metrics(key, draws: dict, reference: dict, grads: np.ndarray, *, iid: bool = False) -> dict:
    """All metrics for one run. ``draws``: {name: (chains, n)}; ``reference``: {name: (m,)}."""
    names = list(reference)
    missing = [n for n in names if n not in draws]
    if missing:
        raise ValueError(f"draws lack reference names {missing}; draws have {sorted(draws)}")
    chains = np.stack([np.asarray(draws[n], dtype=float) for n in names], axis=-1)  # C, n, d
    r = np.stack([np.asarray(reference[n], dtype=float) for n in names], axis=1)
    flat = chains.reshape(-1, chains.shape[-1])
    if not np.all(np.isfinite(flat)):
        return {"failed": True, "error": "non-finite draws"}
    k_sw, k_trace = jax.random.split(key)
    sw, se = sliced_w2(k_sw, *equal_size(flat, r))
    out = {"sw2": sw, "sw2_stderr": se, **standardised_bias(flat, r), "ess_bulk": ess_bulk(chains)}
    if iid:
        out.update({
            "trace_grads": [int(grads[-1])],
            "trace_sw2": [sw],
            "trace_bias_x2_max": [out["bias_x2_max"]],
            "grads_to_bias": int(grads[-1]) if out["bias_x2_max"] < BIAS_THRESHOLD else None,
        })
    else:
        out.update(trace_metrics(k_trace, chains, r, grads))
    return out

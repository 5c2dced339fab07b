"""A compile-free sampler for the runner / shard / report tests (not a test module).

Importing this file registers ``fake_iid``: it resamples the target's
reference draws (plus a little noise), or draws ``N(mean, sd)`` for a
summaries-only target, with a NumPy generator seeded by the run's PRNG key, so
the draws depend on the key and nothing else; 10 gradient evaluations per draw
per chain; i.i.d. (one SW₂ compilation per shape); it raises while ``FAIL[0]``
is true. Import it as ``bench.fake_sampler`` (``tests/`` is on the path).
"""

import jax
import numpy as np

from probkit.bench.samplers import SAMPLERS, SamplerOutput, SamplerSpec

FAIL = [False]
CALLS: list[str] = []


def run(key, target, cfg, opts):
    CALLS.append(target.name)
    if FAIL[0]:
        raise RuntimeError("fake sampler asked to fail")
    rng = np.random.default_rng([int(w) for w in np.asarray(jax.random.key_data(key)).ravel()])
    n, shape = cfg.draws, (cfg.chains, cfg.draws)
    if target.has_draws:
        ref = target.reference()
        picks = rng.integers(0, len(next(iter(ref.values()))), size=shape)
        draws = {k: np.asarray(v)[picks] + 0.05 * rng.normal(size=shape) for k, v in ref.items()}
    else:
        draws = {k: m + s * rng.normal(size=shape) for k, (m, s) in target.moments().items()}
    grads = 10 * cfg.chains * np.arange(1, n + 1)
    return SamplerOutput(draws=draws, grads=grads, total_grads=int(grads[-1]), iid=True)


SAMPLERS["fake_iid"] = SamplerSpec("fake_iid", "mcmc", "test sampler: resampled reference draws", run)


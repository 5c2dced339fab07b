"""rebucket / refine_borders: finer buckets for a trained PFN leave its predictive unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import float64

from probkit.pfn import PFN, load, rebucket, refine_borders, save

ARCH = dict(n_buckets=20, d_model=16, n_layers=2, n_heads=2)


def _data():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    return jax.random.uniform(k1, (3, 7, 2)), jax.random.normal(k2, (3, 7)), jax.random.uniform(k3, (3, 5, 2))


def test_full_support_masses_and_densities_preserved(tmp_path):
    with float64():
        pfn = PFN(jax.random.PRNGKey(0), 2, **ARCH)
        tails = 1.5 * jax.random.normal(jax.random.PRNGKey(2), (20000,))
        borders = refine_borders(pfn.borders, 3, tail_samples=tails, tail_mass=0.01)
        new = rebucket(pfn, borders)
        # 18 inner buckets split in 3, plus tail buckets of ~1% prior mass each side
        assert new.n_buckets > 3 * 18 + 2 and new.borders.shape == (new.n_buckets + 1,)
        assert new.borders[0] < pfn.borders[0] and new.borders[-1] > pfn.borders[-1]
        old_p, new_p = pfn(*_data()), new(*_data())
        # every new bucket holds exactly its old mass: the CDFs agree at every new border,
        # tails included (the old tail's half-normal mass is split, not re-shaped)
        at = new.borders[1:-1, None, None]
        np.testing.assert_allclose(new_p.cdf(at), old_p.cdf(at), atol=1e-12)
        # and the density is unchanged inside the old inner range
        y = jnp.linspace(pfn.borders[1], pfn.borders[-2], 257, endpoint=False)[:, None, None]
        np.testing.assert_allclose(new_p.log_prob(y), old_p.log_prob(y), atol=1e-10)
    # a rebucketed model saves and loads like any other
    new = rebucket(PFN(jax.random.PRNGKey(0), 2, **ARCH), borders)
    save(tmp_path / "m.eqx", new)
    np.testing.assert_allclose(load(tmp_path / "m.eqx")(*_data()).logits, new(*_data()).logits, atol=1e-6)


def test_bounded_head_predictive_unchanged():
    with float64():
        pfn = PFN(jax.random.PRNGKey(3), 2, **ARCH, full_support=False)
        new = rebucket(pfn, refine_borders(pfn.borders, 2))
        # refine_borders splits the inner buckets; the bounded head's outer buckets stay
        assert new.n_buckets == 2 * 18 + 2
        y = jnp.linspace(pfn.borders[0] + 1e-3, pfn.borders[-1] - 1e-3, 301)[:, None, None]
        np.testing.assert_allclose(new(*_data()).log_prob(y), pfn(*_data()).log_prob(y), atol=1e-10)
        np.testing.assert_allclose(new(*_data()).mean(), pfn(*_data()).mean(), atol=1e-10)


def test_bad_input():
    pfn = PFN(jax.random.PRNGKey(0), 2, **ARCH)
    b = np.asarray(pfn.borders)
    not_refining = np.concatenate([b[:5], b[6:]])  # drops an inner border
    with pytest.raises(ValueError, match="refine"):
        rebucket(pfn, not_refining)
    with pytest.raises(ValueError, match="increasing"):
        rebucket(pfn, b[::-1])
    with pytest.raises(ValueError, match="borders"):
        rebucket(pfn, np.where(np.arange(b.size) == 3, np.nan, b))
    bounded = PFN(jax.random.PRNGKey(0), 2, **ARCH, full_support=False)
    with pytest.raises(ValueError, match="outer borders"):
        rebucket(bounded, np.concatenate([[b[0] - 1.0], b]))
    with pytest.raises(ValueError, match="subdivide"):
        refine_borders(b, 0)
    with pytest.raises(ValueError, match="tail_mass"):
        refine_borders(b, 2, tail_samples=np.zeros(10), tail_mass=0.7)
    with pytest.raises(ValueError, match="tail_samples"):
        refine_borders(b, 2, tail_samples=np.array([0.0, np.inf]))

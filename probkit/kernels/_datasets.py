"""Synthetic data for the kernel tests and benchmark (private)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def clustered(key, n: int, d: int = 3, *, n_big: int = 4, n_tiny: int = 6, tiny_size: int = 3,
              spread: float = 0.3, separation: float = 10.0, dtype=jnp.float32):
    """``n`` points: ``n_big`` large Gaussian clusters plus ``n_tiny`` clusters of ``tiny_size``.

    Cluster centres are uniform in a cube of side ``separation``; tiny clusters have high
    ridge leverage scores and are what uniform sampling misses.
    """
    kc, kb, kp = jax.random.split(key, 3)
    n_tiny_pts = n_tiny * tiny_size
    centres = separation * jax.random.uniform(kc, (n_big + n_tiny, d), dtype)
    labels = jnp.concatenate([
        jax.random.randint(kb, (n - n_tiny_pts,), 0, n_big),
        n_big + jnp.repeat(jnp.arange(n_tiny), tiny_size),
    ])
    pts = centres[labels] + spread * jax.random.normal(kp, (n, d), dtype)
    return pts, labels

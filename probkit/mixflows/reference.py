r"""Reference distributions ``q0`` on the position ``x`` of the augmented space.

The full MixFlow reference is ``q0(x) · m(ρ) · Unif(u; [0, 1))``; the momentum
part lives with the map (:class:`~probkit.mixflows.HamiltonianMap`), so a
reference here only describes ``x``.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_positive


class AbstractReference(eqx.Module):
    """A distribution on ``R^d`` with ``sample(key)`` and ``log_prob(x)`` (one point)."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> Float[Array, " d"]:
        """One draw ``x ~ q0``."""

    @abc.abstractmethod
    def log_prob(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """``log q0(x)`` for one point."""


class GaussianReference(AbstractReference):
    r"""Mean-field Gaussian ``N(μ, diag(σ²))`` with learnable ``μ`` and ``log σ``.

    ``log q0(x) = −½ Σ_i ((x_i − μ_i)/σ_i)² − Σ_i log σ_i − (d/2) log 2π``.
    """

    mean: Float[Array, " d"]
    log_scale: Float[Array, " d"]

    def __init__(self, mean, scale=None, *, log_scale=None):
        mean = jnp.asarray(mean)
        if not jnp.issubdtype(mean.dtype, jnp.floating):
            mean = mean.astype(jnp.result_type(float))
        if mean.ndim != 1:
            raise ValueError(f"mean must be a 1-D vector, got shape {mean.shape}")
        if log_scale is None:
            scale = jnp.ones_like(mean) if scale is None else jnp.asarray(scale, mean.dtype)
            check_positive("scale", scale)
            log_scale = jnp.log(jnp.broadcast_to(scale, mean.shape))
        self.mean = mean
        self.log_scale = jnp.broadcast_to(jnp.asarray(log_scale, mean.dtype), mean.shape)

    @property
    def scale(self) -> Float[Array, " d"]:
        return jnp.exp(self.log_scale)

    def sample(self, key):
        eps = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + self.scale * eps

    def log_prob(self, x):
        z = (x - self.mean) / self.scale
        d = self.mean.shape[0]
        return -0.5 * jnp.sum(z**2) - jnp.sum(self.log_scale) - 0.5 * d * math.log(2 * math.pi)


def fit_gaussian_reference(
    key: PRNGKeyArray,
    logdensity_fn,
    init_mean: Float[Array, " d"],
    *,
    steps: int = 1000,
    n_samples: int = 16,
    init_scale: float = 0.1,
    optimizer=None,
    progress_bar: bool = True,
) -> GaussianReference:
    r"""Fit a mean-field Gaussian to ``π`` by maximising the reparameterised ELBO (ADVI).

    ``ELBO(μ, σ) = E_{ε~N(0,I)}[log π(μ + σ ε)] + Σ_i log σ_i + const``, estimated
    with ``n_samples`` draws per step; useful as a MixFlow reference and to set
    per-coordinate step sizes proportional to ``σ``.
    """
    from ._train import maximise

    ref = GaussianReference(init_mean, init_scale)
    d = ref.mean.shape[0]

    def objective(r, k):
        eps = jax.random.normal(k, (n_samples, d), r.mean.dtype)
        xs = r.mean + r.scale * eps
        return jnp.mean(jax.vmap(logdensity_fn)(xs)) + jnp.sum(r.log_scale)

    ref, _ = maximise(key, ref, objective, steps=steps, optimizer=optimizer,
                      progress_bar=progress_bar, desc="reference fit")
    return ref


def laplace_reference(
    logdensity_fn,
    init: Float[Array, " d"],
    *,
    steps: int = 500,
    tol: float = 1e-6,
) -> GaussianReference:
    r"""Mean-field Gaussian from a Laplace approximation: ``μ = argmax log π`` (L-BFGS),
    ``σ_i = sqrt([(−∇² log π(μ))⁻¹]_ii)`` (the *marginal* standard deviations of the
    Laplace approximation, unlike ADVI's mean-field scales which shrink to the
    conditional ones for correlated posteriors).

    Raises ``ValueError`` when the optimum is not finite or the Hessian there is not
    negative definite.
    """
    import optax

    from .._validate import check_positive_int

    steps = check_positive_int("steps", steps)
    init = jnp.asarray(init)
    opt = optax.lbfgs()
    neg = lambda x: -logdensity_fn(x)  # noqa: E731
    value_and_grad = optax.value_and_grad_from_state(neg)

    def body(carry):
        x, state, _ = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=neg)
        return optax.apply_updates(x, updates), state, jnp.max(jnp.abs(grad))

    def cond(carry):
        _, state, gmax = carry
        return (optax.tree.get(state, "count") < steps) & (gmax > tol)

    x, _, _ = jax.lax.while_loop(cond, body, (init, opt.init(init), jnp.array(jnp.inf, init.dtype)))
    hess = jax.hessian(neg)(x)
    if not (bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(jnp.isfinite(hess)))):
        raise ValueError("laplace_reference: the optimum or its Hessian is not finite")
    evals, evecs = jnp.linalg.eigh(0.5 * (hess + hess.T))
    if not bool(jnp.all(evals > 0)):
        raise ValueError("laplace_reference: the Hessian at the optimum is not negative definite")
    var = jnp.sum(evecs**2 / evals, axis=1)
    return GaussianReference(x, jnp.sqrt(var))

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

from .._autodiff import hessian
from .._validate import as_float_array, check_choice, check_finite, check_positive, check_positive_int
from ._checks import check_loc_scale_tril, check_logdensity


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
        mean = as_float_array("mean", mean, 1, "a 1-D vector")
        check_finite("mean", mean)
        if log_scale is None:
            scale = jnp.ones_like(mean) if scale is None else jnp.asarray(scale, mean.dtype)
            check_positive("scale", scale)
            log_scale = jnp.log(jnp.broadcast_to(scale, mean.shape))
        else:
            check_finite("log_scale", log_scale)
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


class FullRankGaussianReference(AbstractReference):
    r"""Full-covariance Gaussian ``N(μ, L Lᵀ)`` with learnable ``μ`` and lower-triangular ``L``.

    ``log q0(x) = −½ ‖L⁻¹(x − μ)‖² − Σ_i log|L_ii| − (d/2) log 2π``. Only the lower
    triangle of ``scale_tril`` is used, so an optimiser may update it freely.
    """

    mean: Float[Array, " d"]
    scale_tril: Float[Array, "d d"]

    def __init__(self, mean, scale_tril):
        self.mean, self.scale_tril = check_loc_scale_tril("mean", mean, scale_tril)

    @classmethod
    def from_covariance(cls, mean, covariance) -> "FullRankGaussianReference":
        """From a symmetric positive-definite covariance matrix (its Cholesky factor)."""
        covariance = jnp.asarray(covariance)
        chol = jnp.linalg.cholesky(0.5 * (covariance + covariance.T))
        if not bool(jnp.all(jnp.isfinite(chol))):
            raise ValueError("covariance must be symmetric positive definite")
        return cls(mean, chol)

    @property
    def scale(self) -> Float[Array, " d"]:
        """Marginal standard deviations ``sqrt(diag(L Lᵀ))``."""
        return jnp.sqrt(jnp.sum(jnp.tril(self.scale_tril) ** 2, axis=1))

    def sample(self, key):
        eps = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jnp.tril(self.scale_tril) @ eps

    def log_prob(self, x):
        chol = jnp.tril(self.scale_tril)
        z = jax.scipy.linalg.solve_triangular(chol, x - self.mean, lower=True)
        d = self.mean.shape[0]
        return -0.5 * jnp.sum(z**2) - jnp.sum(jnp.log(jnp.abs(jnp.diag(chol)))) - 0.5 * d * math.log(2 * math.pi)


def reference_elbo(
    key: PRNGKeyArray, reference: AbstractReference, logdensity_fn, n: int = 1000
) -> Float[Array, ""]:
    r"""Monte Carlo ELBO of a reference: ``(1/n) Σ_j [log π(x_j) − log q0(x_j)]``, ``x_j ~ q0``.

    ``n`` evaluations of ``log π`` and no gradients; non-finite terms give ``−inf``.
    Used to choose between candidate references (:class:`probkit.infer.AutoMixFlow`).
    """
    n = check_positive_int("n", n)
    xs = jax.vmap(reference.sample)(jax.random.split(key, n))
    check_logdensity(logdensity_fn, xs[0], finite=False)
    terms = jax.vmap(logdensity_fn)(xs) - jax.vmap(reference.log_prob)(xs)
    return jnp.where(jnp.all(jnp.isfinite(terms)), jnp.mean(terms), -jnp.inf)


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
    check_logdensity(logdensity_fn, ref.mean, finite=False)
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
    covariance: str = "diagonal",
) -> GaussianReference | FullRankGaussianReference:
    r"""Gaussian from a Laplace approximation: ``μ = argmax log π`` (L-BFGS), ``Σ = (−∇² log π(μ))⁻¹``.

    ``covariance="diagonal"`` (default) gives the mean-field :class:`GaussianReference`
    with ``σ_i = sqrt(Σ_ii)`` (the *marginal* standard deviations of the Laplace
    approximation, unlike ADVI's mean-field scales which shrink to the conditional
    ones for correlated posteriors); ``"full"`` the :class:`FullRankGaussianReference`
    ``N(μ, Σ)``, exact for a Gaussian target.

    Raises ``ValueError`` when the optimum is not finite or the Hessian there is not
    negative definite.
    """
    steps = check_positive_int("steps", steps)
    check_choice("covariance", covariance, ("diagonal", "full"))
    init = as_float_array("init", init, 1, "a 1-D vector")
    check_finite("init", init)
    check_logdensity(logdensity_fn, init, finite=False)
    x, hess = laplace_mode_and_hessian(logdensity_fn, init, steps=steps, tol=tol)
    if not (bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(jnp.isfinite(hess)))):
        raise ValueError("laplace_reference: the optimum or its Hessian is not finite")
    evals, evecs = jnp.linalg.eigh(0.5 * (hess + hess.T))
    if not bool(jnp.all(evals > 0)):
        raise ValueError("laplace_reference: the Hessian at the optimum is not negative definite")
    if covariance == "full":
        return FullRankGaussianReference.from_covariance(x, (evecs / evals) @ evecs.T)
    var = jnp.sum(evecs**2 / evals, axis=1)
    return GaussianReference(x, jnp.sqrt(var))


def laplace_mode_and_hessian(logdensity_fn, init: Float[Array, " d"], *, steps: int = 500, tol: float = 1e-6):
    r"""``(x̂, H)``: the mode ``x̂ = argmax log π`` by L-BFGS from ``init`` (at most ``steps``
    iterations, stopping when ``max|∇ log π| ≤ tol``) and ``H = −∇² log π(x̂)`` (by
    :func:`probkit._autodiff.hessian`: exact, or central differences of the gradient for
    log densities forward-mode autodiff cannot enter, such as ODE models).

    Traceable and unchecked (the caller decides what a non-finite mode or an indefinite
    ``H`` means); :func:`laplace_reference` raises on them.
    """
    import optax

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
    return x, hessian(neg, x)

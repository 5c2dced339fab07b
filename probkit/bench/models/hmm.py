"""posteriordb ``bball_drive_event_{0,1}-hmm_drive_{0,1}`` (Stan: hmm_drive_0.stan, hmm_drive_1.stan).

Two-state hidden Markov models of a basketball drive: the hidden states are
marginalised with the forward algorithm in log space, exactly as the Stan
programs do (no initial-state distribution: the first step is the emission
alone).
"""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import lax
from jax.scipy.special import logsumexp
from numpyro.distributions import constraints

from ._stan_constraints import stan_positive_ordered_vector


def hmm_forward_logprob(log_emission, log_trans):
    r"""log Σ over hidden paths of ∏ emissions × transitions, by the forward recursion.

    ``log_emission``: ``(N, K)``, :math:`\log p(y_t \mid z_t = k)`;
    ``log_trans``: ``(K, K)``, :math:`\log \theta_{jk}` (row ``j`` → column ``k``).
    :math:`\gamma_1 = e_1`, :math:`\gamma_t(k) = \log\sum_j \exp(\gamma_{t-1}(j) + \log\theta_{jk}) + e_t(k)`,
    result :math:`\log\sum_k \exp\gamma_N(k)`.
    """

    def step(gamma, e_t):
        gamma = logsumexp(gamma[:, None] + log_trans, axis=0) + e_t
        return gamma, None

    gamma, _ = lax.scan(step, log_emission[0], log_emission[1:])
    return logsumexp(gamma)


def _transitions_and_priors(K, alpha):
    """Simplex rows θ₁, θ₂ ~ Dirichlet(α_k·) (the Stan ``theta`` transformed parameter)."""
    if int(K) != 2:
        raise ValueError(f"K={K}: the hmm_drive programs assign theta[1], theta[2] only, so K must be 2")
    alpha = jnp.asarray(alpha, dtype=float)
    theta1 = numpyro.sample("theta1", dist.ImproperUniform(constraints.simplex, (), (2,)))
    theta2 = numpyro.sample("theta2", dist.ImproperUniform(constraints.simplex, (), (2,)))
    theta = numpyro.deterministic("theta", jnp.stack([theta1, theta2]))
    numpyro.factor("theta_prior", dist.Dirichlet(alpha).log_prob(theta).sum())
    return theta


def _emission_location_priors(phi, lam):
    # normal(0, 1) on the first component, normal(3, 1) on the second, no truncation term
    loc = jnp.array([0.0, 3.0])
    numpyro.factor("phi_prior", dist.Normal(loc, 1.0).log_prob(phi).sum())
    numpyro.factor("lambda_prior", dist.Normal(loc, 1.0).log_prob(lam).sum())


def hmm_drive_0(K, N, u, v, alpha, **unused_data):
    """Exponential emissions: u_t ~ Exp(φ_k), v_t ~ Exp(λ_k) in state k; φ, λ positive-ordered."""
    theta = _transitions_and_priors(K, alpha)
    phi = numpyro.sample("phi", dist.ImproperUniform(stan_positive_ordered_vector, (), (2,)))
    lam = numpyro.sample("lambda", dist.ImproperUniform(stan_positive_ordered_vector, (), (2,)))
    _emission_location_priors(phi, lam)
    u = jnp.asarray(u, dtype=float)[:, None]
    v = jnp.asarray(v, dtype=float)[:, None]
    log_emission = dist.Exponential(phi).log_prob(u) + dist.Exponential(lam).log_prob(v)
    numpyro.factor("hmm_forward", hmm_forward_logprob(log_emission, jnp.log(theta)))


def hmm_drive_1(K, N, u, v, alpha, tau, rho, **unused_data):
    """Normal emissions: u_t ~ N(φ_k, τ), v_t ~ N(λ_k, ρ) in state k; φ, λ ordered."""
    theta = _transitions_and_priors(K, alpha)
    phi = numpyro.sample("phi", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    lam = numpyro.sample("lambda", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    _emission_location_priors(phi, lam)
    u = jnp.asarray(u, dtype=float)[:, None]
    v = jnp.asarray(v, dtype=float)[:, None]
    log_emission = dist.Normal(phi, tau).log_prob(u) + dist.Normal(lam, rho).log_prob(v)
    numpyro.factor("hmm_forward", hmm_forward_logprob(log_emission, jnp.log(theta)))

"""Bad input at the boundary of probkit.generative, and fit / train_interpolant checkpoints (issue 26).

Each case failed on the code before the fix: exact fields of a non-PD covariance or a
negative weight gave numbers (NaN or a signed "density"), a negative eps(t) gave NaN
samples, a network of another dimension crashed deep inside JAX with a TypeError, NaN
data trained a NaN model silently, and checkpoints were overwritten in place, read
without naming the file, or lost on SIGINT.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from checkpoint_helpers import kill_during_checkpoint_write

import probkit.generative as gen
from probkit._checkpoint import read_checkpoint_header
from probkit.generative import training

I2 = jnp.eye(2)
LIN = gen.linear()


def _fields(weights=(0.5, 0.5), covs=(I2, I2), interpolant=LIN, **kw):
    return gen.GaussianMixtureFields(interpolant, jnp.asarray(weights), jnp.array([[0.0, 1.0], [2.0, -1.0]]),
                                     jnp.stack(covs), **kw)


EXACT = {
    "negative definite cov": (lambda: _fields(covs=(I2, -I2)), "covs must be symmetric positive definite"),
    "indefinite cov": (lambda: _fields(covs=(I2, jnp.diag(jnp.array([1.0, -0.5])))), "covs must be symmetric"),
    "asymmetric cov": (lambda: _fields(covs=(I2, jnp.array([[1.0, 0.5], [0.0, 1.0]]))), "covs must be symmetric"),
    "singular cov": (lambda: _fields(covs=(I2, jnp.zeros((2, 2)))), "covs must be symmetric positive definite"),
    "negative weight": (lambda: _fields(weights=(1.5, -0.5)), "weights must be finite, non-negative"),
    "zero weights": (lambda: _fields(weights=(0.0, 0.0)), "weights must be finite, non-negative and not all zero"),
    "non-PD x0_cov": (lambda: _fields(x0_cov=-I2), "x0_cov must be symmetric positive definite"),
    "x0_mean of another dimension": (lambda: _fields(x0_mean=jnp.zeros(3)), "x0_mean must have shape \\(2,\\)"),
}


@pytest.mark.parametrize("case", list(EXACT))
def test_exact_fields_reject_bad_mixtures(case):
    make, match = EXACT[case]
    with pytest.raises(ValueError, match=match):
        make().velocity(0.5, jnp.ones(2))


def test_exact_fields_check_covariances_under_jit():
    f = jax.jit(lambda c: _fields(covs=(I2, c)).log_prob(0.5, jnp.ones(2)))
    np.testing.assert_allclose(f(I2), _fields().log_prob(0.5, jnp.ones(2)), rtol=1e-6)  # valid input unchanged
    with pytest.raises(Exception, match="covs must be symmetric positive definite"):
        jax.block_until_ready(f(-I2))


def _sde(eps, **kw):
    return gen.sample_sde(jax.random.PRNGKey(0), lambda t, x: -x, jnp.zeros((3, 2)), eps, score=lambda t, x: -x,
                          n_steps=10, **kw)


EPS = {
    "negative eps(t)": (lambda: _sde(lambda t: 0.5 - t), ValueError, "eps\\(t\\) must be finite and >= 0"),
    "NaN eps(t)": (lambda: _sde(lambda t: jnp.log(t - 0.5)), ValueError, "eps\\(t\\) must be finite and >= 0"),
    # negative only near t = 0.4, between the 33 probe times and on the Euler grid: caught in the loop
    "negative between probes": (lambda: _sde(lambda t: jnp.where(jnp.abs(t - 0.4) < 1e-3, -1.0, 0.1)),
                                Exception, "eps\\(t\\) must be finite and >= 0"),
}


@pytest.mark.parametrize("case", list(EPS))
def test_sample_sde_rejects_negative_eps(case):
    fn, error, match = EPS[case]
    with pytest.raises(error, match=match):
        jax.block_until_ready(fn())


NET3 = gen.TimeMLP(jax.random.PRNGKey(0), 3, width=8, depth=1)
SCORE3 = gen.ScoreNet(jax.random.PRNGKey(0), 3, width=8, depth=1)
X2 = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)

DIMENSION = {
    "sample_ode": lambda: gen.sample_ode(None, NET3, X2, n_steps=2),
    "sample_sde": lambda: gen.sample_sde(jax.random.PRNGKey(0), NET3, X2, 0.1, interpolant=gen.one_sided(), n_steps=2),
    "log_prob": lambda: gen.log_prob(NET3, X2, n_steps=2, adaptive=False),
    "train_interpolant": lambda: gen.train_interpolant(jax.random.PRNGKey(0), NET3, LIN, X2, X2, steps=1,
                                                       batch_size=4, progress_bar=False),
    "train_score_model": lambda: gen.train_score_model(jax.random.PRNGKey(0), SCORE3, gen.VPSDE(), X2, steps=1,
                                                       batch_size=4, progress_bar=False),
    "reverse_sde pc": lambda: gen.reverse_sde(jax.random.PRNGKey(0), SCORE3, gen.VPSDE(), X2, method="pc", n_steps=2),
    "probability_flow_ode": lambda: gen.probability_flow_ode(None, SCORE3, gen.VPSDE(), X2, n_steps=2),
    "field of another output size": lambda: gen.sample_ode(None, lambda t, x: x[:1], X2, n_steps=2),
}


@pytest.mark.parametrize("case", list(DIMENSION))
def test_network_of_another_dimension_is_named(case):
    with pytest.raises(ValueError, match="model.* (cannot be evaluated at one point|maps a point) of "):
        DIMENSION[case]()


def _nan(a, value=np.nan):
    a = np.array(a)
    a[3, 1] = value
    return a


def _nan_sampler(key, n):
    return jnp.full((n, 2), jnp.nan)


NET2 = gen.TimeMLP(jax.random.PRNGKey(0), 2, width=8, depth=1)
TRAIN_KW = dict(steps=2, batch_size=4, progress_bar=False)

DATA = {
    "NaN in x1 data": (lambda: gen.train_interpolant(jax.random.PRNGKey(0), NET2, LIN, X2, _nan(X2), **TRAIN_KW),
                       ValueError, "sample_x1 must contain only finite values"),
    "inf in x0 data": (lambda: gen.train_interpolant(jax.random.PRNGKey(0), NET2, LIN, _nan(X2, np.inf), X2,
                                                     **TRAIN_KW), ValueError, "sample_x0 must contain only finite"),
    "NaN in score data": (lambda: gen.train_score_model(jax.random.PRNGKey(0), gen.ScoreNet(jax.random.PRNGKey(0), 2,
                                                                                           width=8, depth=1),
                                                        gen.VPSDE(), _nan(X2), **TRAIN_KW),
                          ValueError, "sample_data must contain only finite values"),
    "x0 and x1 of other dimensions": (lambda: gen.train_interpolant(jax.random.PRNGKey(0), NET2, LIN,
                                                                    np.zeros((8, 3)), X2, **TRAIN_KW),
                                      ValueError, "sample_x0 and sample_x1 must have the same dimension"),
    "NaN from a sampler": (lambda: gen.train_interpolant(jax.random.PRNGKey(0), NET2, LIN, X2, _nan_sampler,
                                                         **TRAIN_KW), FloatingPointError, "loss is nan at step 0"),
}


@pytest.mark.parametrize("case", list(DATA))
def test_bad_training_data(case):
    fn, error, match = DATA[case]
    with pytest.raises(error, match=match):
        fn()


# ---- checkpoints of fit (train_interpolant, train_score_model) ------------------------

SETUP = """
import jax, numpy as np, optax
from probkit.generative import TimeMLP, fit, linear, make_interpolant_loss

DATA = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
LOSS = make_interpolant_loss(linear(), DATA[::-1] * 0.5, DATA)


def model(width=8):
    return TimeMLP(jax.random.PRNGKey(0), 2, width=width, depth=1)


def run(steps, path=None, **kw):
    args = dict(steps=steps, batch_size=8, optimizer=optax.adam(1e-2), progress_bar=False, chunk_size=2,
                checkpoint_path=path) | kw
    return fit(jax.random.PRNGKey(1), args.pop("model", None) or model(), args.pop("loss_fn", LOSS), **args)
"""
CFG: dict = {}
exec(SETUP, CFG)  # the configuration the subprocess of the SIGKILL test runs too


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted 6-step run."""
    return CFG["run"](6)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A 4-step run interrupted (KeyboardInterrupt, as on SIGINT) during its second chunk:
    the checkpoint written on the interrupt holds steps 0-1."""
    path = tmp_path_factory.mktemp("fit") / "ck.eqx"
    make_chunk = training._make_chunk

    def interrupt_second_chunk(*args):
        run_chunk, calls = make_chunk(*args), []

        def run(*chunk_args):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return run_chunk(*chunk_args)

        return run

    training._make_chunk = interrupt_second_chunk
    try:
        with pytest.raises(KeyboardInterrupt):
            CFG["run"](4, path)
    finally:
        training._make_chunk = make_chunk
    return path


def _assert_same_run(got, want):
    (model_a, losses_a), (model_b, losses_b) = got, want
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-6)
    for a, b in zip(*(jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)) for m in (model_a, model_b))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_sigint_checkpoint_resumes_and_steps_extend(interrupted, reference, tmp_path):
    """The 4-step run interrupted at step 2, resumed with steps=6, equals the 6-step run."""
    assert read_checkpoint_header(interrupted)["meta"]["step"] == 2
    path = tmp_path / "ck.eqx"
    path.write_bytes(interrupted.read_bytes())
    model, losses = CFG["run"](6, path)
    assert read_checkpoint_header(path)["meta"]["step"] == 6 and losses.shape == (6,)
    _assert_same_run((model, losses), reference)


RESUME = {
    "empty file": ("empty", {}, "ck.eqx' is empty"),
    "truncated file": ("truncated", {}, "ck.eqx' is truncated or corrupt"),
    "other model shape": (None, {"model": CFG["model"](width=16)}, "model: checkpoint"),
    "other optimizer": (None, {"optimizer": optax.sgd(1e-2)}, "optimizer: checkpoint"),
    "other data": (None, {"loss_fn": CFG["make_interpolant_loss"](CFG["linear"](), CFG["DATA"][::-1], CFG["DATA"])},
                   "loss_fn: checkpoint"),
    "other batch size": (None, {"batch_size": 4}, "batch_size: checkpoint 8, now 4"),
    "fewer steps than done": (None, {"steps": 1}, "has reached step 2, beyond steps=1"),
}


@pytest.mark.parametrize("case", list(RESUME))
def test_resume_refuses_bad_checkpoint_naming_the_file(case, interrupted, tmp_path):
    kind, change, match = RESUME[case]
    path = tmp_path / "ck.eqx"
    data = interrupted.read_bytes()
    path.write_bytes({None: data, "empty": b"", "truncated": data[: len(data) - 100]}[kind])
    steps = change.pop("steps", 6)
    with pytest.raises(ValueError, match=match):
        CFG["run"](steps, path, **change)


def test_missing_folder_fails_before_training(tmp_path):
    def loss_that_must_not_run(model, key, batch_size):
        raise AssertionError("training started")

    with pytest.raises(ValueError, match="checkpoint_path=.*does not exist"):
        CFG["run"](2, tmp_path / "no" / "ck.eqx", loss_fn=loss_that_must_not_run)


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_resumes_from_last_good(reference, tmp_path):
    path = tmp_path / "ck.eqx"
    kill_during_checkpoint_write(SETUP + f"\nrun(6, {str(path)!r}, checkpoint_every=2)\n", save_number=2)
    assert read_checkpoint_header(path)["meta"]["step"] == 2  # the previous file is intact
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the half-written temporary
    _assert_same_run(CFG["run"](6, path, checkpoint_every=2), reference)

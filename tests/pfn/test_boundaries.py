"""Bad input at the boundary of probkit.pfn, and train_pfn / load checkpoints (issue 26).

Each case failed on the code before the fix: a silent number (NaN, a clipped quantile, a
distribution over mis-sorted buckets), an equinox/JAX error that does not name the file,
or lost work (no checkpoint on SIGINT, a missing folder found only after training).
"""

from __future__ import annotations

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from checkpoint_helpers import kill_during_checkpoint_write

from probkit._checkpoint import read_checkpoint_header
from probkit.pfn import PFN, BarDistribution, FullSupportBarDistribution, GPPrior, load, save, train_pfn

B = jnp.array([-2.0, -1.0, 0.0, 0.5, 2.0])
L = jnp.array([0.1, -0.3, 0.7, 0.0])
CLASSES = [BarDistribution, FullSupportBarDistribution]

BAR_CASES = {
    "quantile below 0": (lambda c: c(B, L).quantile(-0.1), "q must lie in \\[0, 1\\]"),
    "quantile above 1": (lambda c: c(B, L).quantile(jnp.array([0.5, 1.5])), "q must lie in \\[0, 1\\]"),
    "quantile NaN": (lambda c: c(B, L).quantile(jnp.nan), "q must lie in \\[0, 1\\]"),
    "decreasing borders": (lambda c: c(B[::-1], L), "borders must be finite and strictly increasing"),
    "repeated border": (lambda c: c(B.at[2].set(B[1]), L), "borders must be finite and strictly increasing"),
    "NaN logits": (lambda c: c(B, L.at[1].set(jnp.nan)), "logits must not contain NaN"),
    "+inf logits": (lambda c: c(B, L.at[1].set(jnp.inf)), "logits must not contain NaN or \\+inf"),
    "too few logits": (lambda c: c(B, L[:3]).mean(), "logits must have shape \\(\\*batch, 4\\)"),
    "too many logits": (lambda c: c(B, jnp.append(L, 0.0)).log_prob(0.0), "logits must have shape"),
}


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("case", list(BAR_CASES))
def test_bar_distribution_rejects_bad_input(case, cls):
    fn, match = BAR_CASES[case]
    with pytest.raises(ValueError, match=match):
        fn(cls)


BAR_JIT = {
    "quantile above 1": (lambda q: BarDistribution(B, L).quantile(q), 1.5, "q must lie in"),
    "decreasing borders": (lambda b: BarDistribution(b, L).mean(), B[::-1], "borders must be finite and strictly"),
    "NaN logits": (lambda lg: FullSupportBarDistribution(B, lg).mean(), L.at[0].set(jnp.nan), "logits must not"),
}


@pytest.mark.parametrize("case", list(BAR_JIT))
def test_bar_distribution_checks_under_jit(case):
    fn, arg, match = BAR_JIT[case]
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(jax.jit(fn)(arg))


def test_valid_quantiles_unchanged():
    """The check leaves valid levels alone: q = 0, 1 are the support ends, q = 0.5 the exact median."""
    d = BarDistribution(B, jnp.zeros(4))  # masses 1/4 each: the median is the border b_2 = 0
    np.testing.assert_allclose(d.quantile(jnp.array([0.0, 0.5, 1.0])), [-2.0, 0.0, 2.0], atol=1e-6)


def test_gp_prior_without_noise_or_jitter_is_refused():
    with pytest.raises(ValueError, match="noise=0 with jitter=0"):
        GPPrior(noise=0.0, jitter=0.0)


def test_gp_prior_singular_covariance_raises_instead_of_nan():
    """float32, noise 0 and a jitter below the rounding of the RBF Gram: Cholesky fails (NaN before)."""
    prior = GPPrior(lengthscale=0.5, noise=0.0, jitter=1e-12)
    with pytest.raises(Exception, match="not positive definite"):
        jax.block_until_ready(jax.jit(lambda k: prior.sample(k, 2, 10))(jax.random.PRNGKey(0)))


# ---- checkpoints ---------------------------------------------------------------------

PRIOR = GPPrior("rbf", lengthscale=0.3, noise=0.1)
KW = dict(batch_size=2, seq_len=6, progress_bar=False, optimizer=optax.adam(1e-3))


def _pfn(d_model=8):
    return PFN(jax.random.PRNGKey(0), 1, n_buckets=10, d_model=d_model, n_layers=1, n_heads=2)


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted 6-step run (no checkpoint)."""
    return train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=6, **KW)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-step checkpoint of the reference configuration."""
    path = tmp_path_factory.mktemp("pfn") / "ck.eqx"
    train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=2, checkpoint_path=path, **KW)
    return path


def _assert_same_run(got, want):
    (pfn_a, losses_a), (pfn_b, losses_b) = got, want
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(pfn_a), jax.tree_util.tree_leaves(pfn_b)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _corrupt(kind, src, dst):
    data = src.read_bytes()
    dst.write_bytes({"empty": b"", "truncated": data[: len(data) - 100], "garbage": b"\x00\x01garbage"}[kind])


RESUME_CASES = {
    # name: (how the file or the call differs, expected message)
    "empty file": ("empty", {}, "ck.eqx' is empty"),
    "truncated file": ("truncated", {}, "ck.eqx' is truncated or corrupt"),
    "not a checkpoint": ("garbage", {}, "ck.eqx' is not a probkit checkpoint"),
    "other model shape": (None, {"pfn": _pfn(d_model=16)}, "pfn: checkpoint .*'d_model': 8.*now .*'d_model': 16"),
    "other prior": (None, {"prior": GPPrior("rbf", lengthscale=0.5, noise=0.1)}, "prior: checkpoint"),
    "other optimizer": (None, {"optimizer": optax.adam(3e-3)}, "optimizer: checkpoint"),
    "other seed": (None, {"key": jax.random.PRNGKey(2)}, "key: checkpoint"),
    "other batch size": (None, {"batch_size": 4}, "batch_size: checkpoint 2, now 4"),
    "fewer steps than done": (None, {"steps": 1}, "has reached step 2, beyond steps=1"),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_refuses_bad_checkpoint_naming_the_file(case, checkpoint, tmp_path):
    kind, change, match = RESUME_CASES[case]
    path = tmp_path / "ck.eqx"
    if kind is None:
        path.write_bytes(checkpoint.read_bytes())
    else:
        _corrupt(kind, checkpoint, path)
    args = {"key": jax.random.PRNGKey(1), "pfn": _pfn(), "prior": PRIOR, "steps": 6, **KW, **change}
    with pytest.raises(ValueError, match=match):
        train_pfn(args.pop("key"), args.pop("pfn"), args.pop("prior"), checkpoint_path=path, **args)


def test_missing_folder_fails_before_training(tmp_path):
    ran = []
    with pytest.raises(ValueError, match="checkpoint_path=.*does not exist"):
        train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=6, checkpoint_path=tmp_path / "no" / "ck.eqx",
                  callback=lambda s, loss: ran.append(s), **KW)
    assert ran == []


def test_sigint_saves_and_steps_extend(reference, tmp_path):
    """KeyboardInterrupt after step 1 saves steps 0-1; the resumed run (4 steps), extended
    to 6, equals the uninterrupted 6-step run."""
    path = tmp_path / "ck.eqx"

    def interrupt(step, loss):
        if step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=4, checkpoint_path=path, callback=interrupt, **KW)
    assert read_checkpoint_header(path)["meta"]["step"] == 2
    _, losses = train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=4, checkpoint_path=path, **KW)
    assert losses.shape == (4,)
    _assert_same_run(train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=6, checkpoint_path=path, **KW), reference)


KILL_CODE = """
import jax, optax
from probkit.pfn import PFN, GPPrior, train_pfn
pfn = PFN(jax.random.PRNGKey(0), 1, n_buckets=10, d_model=8, n_layers=1, n_heads=2)
train_pfn(jax.random.PRNGKey(1), pfn, GPPrior("rbf", lengthscale=0.3, noise=0.1), steps=6, batch_size=2, seq_len=6,
          progress_bar=False, optimizer=optax.adam(1e-3), checkpoint_path={path!r}, checkpoint_every=2)
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_resumes_from_last_good(reference, tmp_path):
    path = tmp_path / "ck.eqx"
    kill_during_checkpoint_write(KILL_CODE.format(path=str(path)), save_number=2)  # killed writing step 4
    assert read_checkpoint_header(path)["meta"]["step"] == 2  # the previous file is intact
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the half-written temporary
    _assert_same_run(train_pfn(jax.random.PRNGKey(1), _pfn(), PRIOR, steps=6, checkpoint_path=path, **KW), reference)


# ---- pfn.load ------------------------------------------------------------------------


def _legacy_file(path, header_pfn, leaves_pfn):
    """A version-1 file (as the shipped weights): JSON header line, then the leaves."""
    header = {"format": "probkit-pfn", "version": 1, "hyperparameters": header_pfn.hyperparameters, "metadata": {}}
    with open(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, leaves_pfn)


def _truncated_legacy(path):
    _legacy_file(path, _pfn(), _pfn())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _trailing_data(path):
    _legacy_file(path, _pfn(), _pfn())
    path.write_bytes(path.read_bytes() + b"\x00" * 64)


def _new_format_truncated(path):
    save(path, _pfn())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])


LOAD_CASES = {
    "truncated version-1 file": (_truncated_legacy, "m.eqx' is truncated or holds another model"),
    "legacy leaves of another shape": (lambda p: _legacy_file(p, _pfn(8), _pfn(16)), "m.eqx' is truncated or holds"),
    "legacy file with trailing data": (_trailing_data, "m.eqx' holds more data than a PFN"),
    "truncated new format": (_new_format_truncated, "m.eqx' is truncated or corrupt"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_names_the_file(case, tmp_path):
    make, match = LOAD_CASES[case]
    path = tmp_path / "m.eqx"
    make(path)
    with pytest.raises(ValueError, match=match):
        load(path)


def test_load_reads_version_1_files_and_save_is_atomic(tmp_path):
    pfn = _pfn()
    _legacy_file(tmp_path / "v1.eqx", pfn, pfn)
    save(tmp_path / "v2.eqx", pfn)
    for name in ("v1.eqx", "v2.eqx"):
        back = load(tmp_path / name)
        for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(pfn)):
            np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.eqx", "v2.eqx"]  # no temporary left

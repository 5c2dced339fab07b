"""Tests for probkit.generative.training.fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from probkit._checkpoint import read_checkpoint_header
from probkit.generative import training
from probkit.generative.training import fit

TARGET = jnp.array([1.0, -2.0])


def loss_fn(params, key, batch_size):
    """E|x - m|^2 with x ~ N(TARGET, I): minimised at m = TARGET."""
    x = TARGET + jax.random.normal(key, (batch_size, 2))
    return jnp.mean(jnp.sum((x - params["m"]) ** 2, -1))


def test_fit_converges_to_the_minimiser(key):
    params, losses = fit(key, {"m": jnp.zeros(2)}, loss_fn, steps=400, batch_size=128,
                         optimizer=optax.sgd(0.05), progress_bar=False, chunk_size=64)
    assert losses.shape == (400,) and bool(jnp.all(jnp.isfinite(losses)))
    # SGD on this loss is an averaging recursion: the iterate is within a few sd of TARGET
    np.testing.assert_allclose(params["m"], TARGET, atol=0.1)
    assert float(losses[-50:].mean()) == pytest.approx(2.0, rel=0.1)  # E|x - m*|^2 = d


class _Interrupt(Exception):
    pass


def test_checkpoint_resume_reproduces_an_uninterrupted_run(key, tmp_path, monkeypatch):
    opt = optax.adam(0.05)
    kwargs = dict(steps=60, batch_size=16, optimizer=opt, progress_bar=False, chunk_size=7)
    full, full_losses = fit(key, {"m": jnp.zeros(2)}, loss_fn, **kwargs)
    path = tmp_path / "ckpt.eqx"
    make_chunk = training._make_chunk

    def crashing_make_chunk(*args):
        run_chunk, calls = make_chunk(*args), []

        def run(*chunk_args):
            calls.append(1)
            if len(calls) > 6:  # chunks end at steps 7, 10, 17, 20, 27, 30, then a crash in 30-37
                raise _Interrupt
            return run_chunk(*chunk_args)

        return run

    monkeypatch.setattr(training, "_make_chunk", crashing_make_chunk)
    with pytest.raises(_Interrupt):
        fit(key, {"m": jnp.zeros(2)}, loss_fn, checkpoint_path=path, checkpoint_every=10, **kwargs)
    monkeypatch.undo()
    assert read_checkpoint_header(path)["meta"]["step"] == 30  # the step-30 checkpoint survived the crash
    resumed, resumed_losses = fit(key, {"m": jnp.zeros(2)}, loss_fn, checkpoint_path=path, checkpoint_every=10, **kwargs)
    np.testing.assert_allclose(resumed["m"], full["m"], rtol=1e-6)
    np.testing.assert_allclose(resumed_losses, full_losses, rtol=1e-6)


def test_bad_arguments(key):
    with pytest.raises(ValueError, match="steps"):
        fit(key, {"m": jnp.zeros(2)}, loss_fn, steps=0, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        fit(key, {"m": jnp.zeros(2)}, loss_fn, steps=2, batch_size=-1)
    with pytest.raises(TypeError, match="loss_fn"):
        fit(key, {"m": jnp.zeros(2)}, None, steps=2, batch_size=4)
    with pytest.raises(TypeError, match="optimizer"):
        fit(key, {"m": jnp.zeros(2)}, loss_fn, steps=2, batch_size=4, optimizer="adam")

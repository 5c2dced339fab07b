"""The runner at scale: torn records, run keys, failed-run retries, --force, budgets, seeds."""

import json
import zlib

import jax
import numpy as np
import pytest

from bench import fake_sampler as fake
from probkit.bench import RunConfig, Target, format_table, read_records, run_benchmark, run_one
from probkit.bench.runner import prng_key, run_config, run_key
from probkit.bench.samplers import SamplerOutput, _trim_to_budget


def _model():
    pass


@pytest.fixture(scope="module")
def target():
    rng = np.random.default_rng(0)
    ref = {"a": rng.normal(size=400), "b": 2.0 + 3.0 * rng.normal(size=400)}
    return Target("tiny", _model, {}, "2-D Gaussian reference", _reference=ref, kind="user")


CFG = RunConfig(chains=2, draws=40)


def run(target, out, seeds=(0,), cfg=CFG, **kw):
    return run_benchmark([target], ["fake_iid"], list(seeds), out, cfg=cfg, progress_bar=False, **kw)


def lines(out):
    return (out / "results.jsonl").read_text().splitlines()


def test_torn_last_line_is_cut_and_the_next_record_readable(tmp_path, target):
    run(target, tmp_path)
    path = tmp_path / "results.jsonl"
    path.write_text(path.read_text() + '{"target": "tiny", "sampler": "fake_i')  # a write cut short
    with pytest.warns(UserWarning, match="torn last line"):
        run(target, tmp_path, seeds=(0, 1))
    assert [json.loads(x)["seed"] for x in lines(tmp_path)] == [0, 1]  # every line parses


def test_unreadable_lines_are_skipped_with_a_warning(tmp_path, target):
    run(target, tmp_path)
    path = tmp_path / "results.jsonl"
    good = path.read_text()
    path.write_text("{not json\n" + good)
    with pytest.warns(UserWarning, match=r"results.jsonl:1: skipped an unreadable record"):
        recs = read_records(tmp_path)
    assert len(recs) == 1 and recs[0]["seed"] == 0


def test_changed_configuration_is_a_new_run(tmp_path, target):
    run(target, tmp_path)
    base = dict(chains=2, draws=40)
    for change in (dict(draws=30), dict(warmup=5), dict(budget_grads=10**6), dict(chains=3)):
        run(target, tmp_path, cfg=RunConfig(**{**base, **change}))
    recs = read_records(tmp_path)
    assert len(recs) == 5 and len({r["run_key"] for r in recs}) == 5
    n = len(fake.CALLS)
    run(target, tmp_path, cfg=RunConfig(chains=2, draws=30))  # the same configuration again: skipped
    assert len(fake.CALLS) == n and len(lines(tmp_path)) == 5


def test_run_key_covers_every_setting(target):
    cfg = RunConfig(chains=2, draws=40, warmup=None, budget_grads=None)
    base = run_key(run_config(target, "fake_iid", 0, cfg, {}))
    others = [
        run_key(run_config(target, "fake_iid", 1, cfg, {})),
        run_key(run_config(target, "fake_iid", 0, cfg, {"lr": 0.1})),
        run_key(run_config(target, "automvn", 0, cfg, {})),
        run_key(run_config(target, "fake_iid", 0, RunConfig(chains=2, draws=40, warmup=40 - 1), {})),
    ]
    assert len({base, *others}) == 5
    # warm-up defaults to the draws: stating the default is the same run
    assert run_key(run_config(target, "fake_iid", 0, RunConfig(chains=2, draws=40, warmup=40), {})) == base


def test_failed_runs_are_retried_and_kept_as_history(tmp_path, target):
    fake.FAIL[0] = True
    try:
        run(target, tmp_path)
    finally:
        fake.FAIL[0] = False
    (rec,) = read_records(tmp_path)
    assert rec["failed"] and "fake sampler asked to fail" in format_table([rec])
    run(target, tmp_path)  # retried, not skipped as finished
    history = read_records(tmp_path, history=True)
    assert [r["failed"] for r in history] == [True, False]
    (current,) = read_records(tmp_path)
    assert not current["failed"] and current["sw2"] > 0


def test_force_replaces_instead_of_appending(tmp_path, target):
    run(target, tmp_path, seeds=(0, 1))
    first = {r["seed"]: r for r in read_records(tmp_path)}
    run(target, tmp_path, seeds=(1,), force=True)
    recs = read_records(tmp_path, history=True)
    assert sorted(r["seed"] for r in recs) == [0, 1]
    assert [r for r in recs if r["seed"] == 0][0] == first[0]
    # the same key and seed give the same draws, hence the same metric
    assert [r for r in recs if r["seed"] == 1][0]["sw2"] == first[1]["sw2"]


def test_prng_key_is_a_stable_function_of_sampler_and_seed():
    expected = jax.random.fold_in(jax.random.PRNGKey(3), zlib.crc32(b"numpyro_nuts") & 0x7FFFFFFF)
    np.testing.assert_array_equal(jax.random.key_data(prng_key("numpyro_nuts", 3)), jax.random.key_data(expected))


def test_budget_overrun_is_flagged(target):
    rec = run_one(target, "fake_iid", 0, RunConfig(chains=2, draws=40, budget_grads=100), {})
    assert rec["grad_evals"] == 800 and rec["budget_overrun"]
    assert "OVER BUDGET tiny / fake_iid / seed 0: 800 gradient evaluations > --budget-grads 100" in format_table([rec])


def test_mcmc_draws_are_trimmed_to_the_budget():
    out = SamplerOutput(draws={"a": np.arange(10.0)[None].repeat(2, 0)}, grads=10 * np.arange(1, 11), total_grads=100)
    out = _trim_to_budget(out, 35)
    assert out.draws["a"].shape == (2, 3) and out.total_grads == 30 and out.info["draws_discarded"] == 7

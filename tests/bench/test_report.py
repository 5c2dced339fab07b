"""Report: the SW₂-vs-gradients figure (one line per seed, ending at the table's value), notes, leaderboard."""

import jax
import numpy as np
import pytest

from probkit.bench.metrics import compute_metrics
from probkit.bench.report import (
    family_panels,
    format_table,
    leaderboard_markdown,
    plot_lines,
    summarise,
    target_figure,
    write_family_plot,
)


def _mcmc_record(seed):
    """A record as the runner writes it, from non-i.i.d. draws with a two-point trace."""
    rng = np.random.default_rng(seed)
    ref = {"a": rng.normal(size=400), "b": rng.normal(size=400)}
    draws = {k: 0.9 * rng.normal(size=(2, 40)) for k in ref}
    grads = 50 + 8 * np.arange(1, 41)
    m = compute_metrics(jax.random.PRNGKey(seed), draws, ref, grads, planned=40, n_points=2)
    return {"target": "t", "sampler": "mcmc", "seed": seed, "failed": False, **m}


@pytest.fixture(scope="module")
def records():
    return [_mcmc_record(0), _mcmc_record(1)]


def test_trace_ends_at_the_headline_value(records):
    for r in records:
        assert r["trace_grads"] == [50 + 8 * 20, 50 + 8 * 40]
        assert r["trace_sw2"][-1] == r["sw2"] and r["trace_bias_x2_max"][-1] == r["bias_x2_max"]


def test_one_line_per_seed_ending_at_the_table_value(records):
    pytest.importorskip("matplotlib")
    lines = plot_lines(records)["t"]
    assert [(ln["sampler"], ln["seed"]) for ln in lines] == [("mcmc", 0), ("mcmc", 1)]
    fig = target_figure("t", lines)
    drawn = fig.axes[0].get_lines()
    assert len(drawn) == 2  # not one zigzag through both seeds
    for line, r in zip(drawn, records):
        np.testing.assert_array_equal(line.get_xdata(), r["trace_grads"])
        assert line.get_ydata()[-1] == r["sw2"]
        (row,) = summarise([r])
        assert row["sw2"] == r["sw2"]  # the table's value for this seed


def _synthetic():
    recs = []

    def add(target, sampler, values, metric="sw2"):
        for seed, v in enumerate(values):
            r = {"target": target, "sampler": sampler, "seed": seed, "failed": v is None}
            if v is None:
                r["error"] = "RuntimeError: boom\ntraceback line"
            else:
                r.update({metric: v, "mean_err_max": v / 10})
            recs.append(r)

    add("fam-a", "s1", [0.1, 0.2, 0.3])
    add("fam-a", "s2", [0.4, 0.5, 0.6])
    add("fam-b", "s1", [0.5, 0.5, 0.5])
    add("fam-b", "s2", [0.2, 0.3, None])
    add("other-x", "s1", [1.0, 2.0, 3.0])
    add("other-x", "s2", [None, None, None])
    add("summ-only", "s1", [0.1, 0.2, 0.3], metric="mean_err_max")
    add("summ-only", "s2", [0.3, 0.3, 0.3], metric="mean_err_max")
    return recs


def test_leaderboard_medians_ranges_and_ranks():
    md = leaderboard_markdown(_synthetic(), "sw2")
    assert "| fam-a | **0.2 [0.1, 0.3]** | 0.5 [0.4, 0.6] |" in md
    assert "| fam-b | 0.5 [0.5, 0.5] | **0.25 [0.2, 0.3]** ✗1 |" in md
    assert "| other-x | **2 [1, 3]** | ✗ |" in md
    assert "| summ-only | n/a | n/a |" in md  # no draws-based metric: not ranked
    # ranks: fam-a s1 < s2, fam-b s2 < s1, other-x s1 (s2 failed: last)
    assert "| s1 | 1.33 | 2 | 3 | 0 |" in md and "| s2 | 1.67 | 1 | 3 | 4 |" in md
    md_mean = leaderboard_markdown(_synthetic(), "mean_err_max")
    assert "| summ-only | **0.02 [0.01, 0.03]** | 0.03 [0.03, 0.03] |" in md_mean


def test_family_panels_group_by_the_name_before_the_dash(tmp_path):
    panels = family_panels(_synthetic(), "sw2")
    assert list(panels) == ["fam", "other", "summ"]
    assert list(panels["fam"]) == ["fam-a", "fam-b"] and panels["fam"]["fam-b"]["s2"] == [0.2, 0.3]
    pytest.importorskip("matplotlib")
    assert write_family_plot(_synthetic(), tmp_path / "f.png").stat().st_size > 1000


def test_table_prints_the_cause_of_each_failure():
    table = format_table(_synthetic())
    assert "FAILED fam-b / s2 / seed 2: RuntimeError: boom" in table
    assert table.count("FAILED other-x / s2") == 3 and "traceback line" not in table


def test_table_flags_groups_that_mix_configurations():
    recs = [{"target": "t", "sampler": "s", "seed": 0, "failed": False, "sw2": 0.1, "draws": 100},
            {"target": "t", "sampler": "s", "seed": 0, "failed": False, "sw2": 0.2, "draws": 200}]
    assert "MIXED t / s: 2 records of 2 configurations" in format_table(recs)
    assert "MIXED" not in format_table(recs[:1])

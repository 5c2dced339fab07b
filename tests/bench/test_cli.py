"""End-to-end ``probkit bench`` runs in subprocesses: records, skip/force, SIGINT, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = ["--chains", "2", "--draws", "150", "--warmup", "150", "--seeds", "1", "--no-progress"]


def bench(*args, timeout=600):
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "probkit", "bench", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def records(out):
    return [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_end_to_end_records_table_plot_skip_force(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--target", "gaussian,banana", "--sampler", "numpyro_nuts,automvn",
            "--budget-grads", "3000", "--out", str(out), "--plot", "--csv", *TINY]
    first = bench(*args)
    assert first.returncode == 0, first.stderr
    recs = records(out)
    assert {(r["target"], r["sampler"]) for r in recs} == {
        (t, s) for t in ("gaussian", "banana") for s in ("numpyro_nuts", "automvn")
    }
    assert not any(r["failed"] for r in recs), [r.get("error") for r in recs]
    for r in recs:
        assert r["sw2"] > 0 and r["grad_evals"] > 0 and r["compile_time"] >= 0
    assert "SW2" in first.stdout and "numpyro_nuts" in first.stdout
    assert (out / "banana.png").stat().st_size > 1000 and (out / "results.csv").is_file()

    second = bench(*args)  # finished triples are skipped
    assert second.returncode == 0, second.stderr
    assert len(records(out)) == 4 and "skipping 4" in second.stdout

    forced = bench(*[a for a in args if a not in ("--plot", "--csv")], "--target", "gaussian",
                   "--sampler", "automvn", "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(records(out)) > 4

    report = bench("report", str(out))
    assert report.returncode == 0 and "automvn" in report.stdout


@pytest.mark.slow
def test_sigint_keeps_finished_records(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "probkit", "bench", "run", "--target", "gaussian", "--sampler", "automvn",
         "--seeds", "50", "--chains", "1", "--draws", "100", "--budget-grads", "200", "--out", str(out),
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    path = out / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not path.exists() or len(path.read_text().splitlines()) < 1):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    recs = records(out)  # every line parses
    assert 1 <= len(recs) < 50
    assert "interrupted" in err


def test_unknown_names_exit_2():
    r = bench("run", "--target", "nope", "--sampler", "numpyro_nuts")
    assert r.returncode == 2 and "valid targets" in r.stderr and "banana" in r.stderr
    r = bench("run", "--target", "banana", "--sampler", "nope")
    assert r.returncode == 2 and "valid samplers" in r.stderr and "numpyro_nuts" in r.stderr


MODEL = """
import numpyro, numpyro.distributions as dist
def model(N, y):
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    numpyro.sample("y", dist.Normal(mu, 1).expand([N]), obs=y)
"""


def test_user_model_bad_reference_and_import_errors(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "data.json").write_text(json.dumps({"N": 3, "y": [0.1, -0.2, 0.4], "unused": 1}))
    (tmp_path / "bad.json").write_text("[{not json")
    (tmp_path / "wrong.json").write_text(json.dumps([{"sigma": [1.0, 2.0]}]))
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    model = f"{tmp_path / 'm.py'}:model"

    r = bench("run", "--model", model, "--data", str(tmp_path / "data.json"),
              "--reference", str(tmp_path / "bad.json"), "--sampler", "numpyro_nuts")
    assert r.returncode == 2 and "bad.json" in r.stderr

    r = bench("run", "--model", model, "--data", str(tmp_path / "data.json"),
              "--reference", str(tmp_path / "wrong.json"), "--sampler", "numpyro_nuts")
    assert r.returncode == 2 and "sigma" in r.stderr and "mu" in r.stderr

    r = bench("run", "--model", f"{tmp_path / 'broken.py'}:model", "--reference",
              str(tmp_path / "wrong.json"), "--sampler", "numpyro_nuts")
    assert r.returncode == 2 and "no_such_module_xyz" in r.stderr


def test_bench_list():
    r = bench("list")
    assert r.returncode == 0
    for name in ("funnel50", "eight_schools-eight_schools_noncentered", "numpyro_nuts", "autoflow", "quick"):
        assert name in r.stdout

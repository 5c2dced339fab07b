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
    assert len(records(out)) == 4  # replaced, not appended

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


def cli(capsys, *args):
    """``probkit bench ARGS`` in this process: (exit status, stderr)."""
    from probkit.bench.cli import main

    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def test_unknown_names_exit_2(capsys):
    code, err = cli(capsys, "run", "--target", "nope", "--sampler", "numpyro_nuts")
    assert code == 2 and "valid targets" in err and "banana" in err
    code, err = cli(capsys, "run", "--target", "banana", "--sampler", "nope")
    assert code == 2 and "valid samplers" in err and "numpyro_nuts" in err


MODEL = """
import numpyro, numpyro.distributions as dist
def model(N, y):
    mu = numpyro.sample("mu", dist.Normal(0, 10))
    numpyro.sample("y", dist.Normal(mu, 1).expand([N]), obs=y)
"""


def test_user_model_bad_reference_and_import_errors(tmp_path, capsys):
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "data.json").write_text(json.dumps({"N": 3, "y": [0.1, -0.2, 0.4], "unused": 1}))
    (tmp_path / "bad.json").write_text("[{not json")
    (tmp_path / "wrong.json").write_text(json.dumps([{"sigma": [1.0, 2.0]}]))
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    model = f"{tmp_path / 'm.py'}:model"

    code, err = cli(capsys, "run", "--model", model, "--data", str(tmp_path / "data.json"),
                    "--reference", str(tmp_path / "bad.json"), "--sampler", "numpyro_nuts")
    assert code == 2 and "bad.json" in err

    code, err = cli(capsys, "run", "--model", model, "--data", str(tmp_path / "data.json"),
                    "--reference", str(tmp_path / "wrong.json"), "--sampler", "numpyro_nuts")
    assert code == 2 and "sigma" in err and "mu" in err

    code, err = cli(capsys, "run", "--model", f"{tmp_path / 'broken.py'}:model", "--reference",
                    str(tmp_path / "wrong.json"), "--sampler", "numpyro_nuts")
    assert code == 2 and "no_such_module_xyz" in err


def test_bench_list_reads_metadata_only(monkeypatch, capsys):
    from probkit.bench import targets
    from probkit.bench.cli import main

    def no_build(*a, **k):
        raise AssertionError("bench list built a target")

    monkeypatch.setattr(targets, "get_target", no_build)
    monkeypatch.setattr(targets, "_posteriordb_target", no_build)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    names = targets.posteriordb_names()
    assert f"targets ({len(targets.ANALYTIC)} analytic, {len(names)} posteriordb):" in out
    for name in [*targets.ANALYTIC, *names, "numpyro_nuts", "autoflow", "mixflow", "quick"]:
        assert f"  {name} " in out, name
    assert "posteriordb, 10 parameters, reference draws" in out  # eight schools, from its info file


def test_samplers_options_and_run_help(capsys):
    from probkit.bench.cli import main

    assert main(["samplers", "--options"]) == 0
    out = capsys.readouterr().out
    for line in ("numpyro_nuts.target_accept_prob=float", "nuts.target_accept=float",
                 "mixflow.n_flow_steps=int: MixFlow steps N [default 100]", "automvn.lr=float"):
        assert line in out, line
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "sampler options (--sampler-opt NAME.KEY=VALUE)" in help_text and "mixflow.n_leapfrog" in help_text
    assert "reference draws (--reference FILE, posteriordb's format)" in help_text and "--shard I/N" in help_text


def _write_user_files(tmp_path, reference):
    (tmp_path / "m.py").write_text(MODEL)
    (tmp_path / "data.json").write_text(json.dumps({"N": 3, "y": [0.1, -0.2, 0.4]}))
    (tmp_path / "ref.json").write_text(reference)
    return ["--model", f"{tmp_path / 'm.py'}:model", "--data", str(tmp_path / "data.json"),
            "--reference", str(tmp_path / "ref.json")]


@pytest.mark.parametrize("extra, message", [
    (["--warmup", "-10"], "--warmup: warmup must be an integer >= 0, got -10"),
    (["--budget-grads", "0"], "--budget-grads: budget_grads must be an integer >= 1, got 0"),
    (["--chains", "0"], "--chains"),
    (["--sampler-opt", "numpyro_nuts.nope=1"], "unknown option(s) ['nope'] for sampler 'numpyro_nuts'"),
    (["--sampler-opt", "numpyro_nuts.max_tree_depth=1.5"], "--sampler-opt numpyro_nuts.max_tree_depth: expected int"),
    (["--sampler-opt", "automvn.lr=0.1"], "--sampler-opt for sampler(s) ['automvn'] not in --sampler"),
    (["--shard", "2/2"], "--shard"),
    (["--out", "FILE"], "is a file, not a directory"),
    ("nan", "--reference: draws file"),
    ("empty", "has no draws"),
])
def test_invalid_options_exit_2_before_anything_runs(tmp_path, capsys, extra, message):
    from probkit.bench.cli import main

    out = tmp_path / "out"
    args = ["run", "--sampler", "numpyro_nuts", "--out", str(out), "--no-progress"]
    if extra == "nan":
        args += _write_user_files(tmp_path, '[{"mu": [0.1, NaN, 0.3]}]')
    elif extra == "empty":
        args += _write_user_files(tmp_path, '[{"mu": []}]')
    else:
        (tmp_path / "FILE").write_text("")
        args += ["--target", "gaussian", *[str(tmp_path / "FILE") if a == "FILE" else a for a in extra]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists()  # nothing ran


def test_posteriordb_clone_without_model_uses_the_bundled_model(tmp_path, capsys):
    import shutil

    from bench import fake_sampler  # noqa: F401 - registers fake_iid
    from probkit.bench import posteriordb, read_records
    from probkit.bench.cli import main
    from probkit.bench.models import MODELS

    name = "eight_schools-eight_schools_noncentered"
    clone = tmp_path / "posteriordb"
    shutil.copytree(posteriordb.BUNDLED_ROOT / "posterior_database", clone / "posterior_database")
    draws = clone / "posterior_database/reference_posteriors/draws/draws" / f"{name}.json.zip"
    full = posteriordb.load_draws(draws)
    posteriordb._write_zip(draws, f"{name}.json", json.dumps([{k: v[c, :100].tolist() for k, v in full.items()}
                                                             for c in range(2)]))  # the clone's own draws
    out = tmp_path / "out"
    assert main(["run", "--posteriordb", str(clone), "--posterior", name, "--sampler", "fake_iid",
                 "--chains", "1", "--draws", "30", "--out", str(out), "--no-progress"]) == 0
    (rec,) = read_records(out)
    assert rec["target"] == name and not rec["failed"]
    assert MODELS[name].__name__ == "eight_schools_noncentered"
    # the clone's reference (200 draws) was used, not the bundled one: another run key
    bundled = tmp_path / "bundled"
    assert main(["run", "--target", name, "--sampler", "fake_iid", "--chains", "1", "--draws", "30",
                 "--out", str(bundled), "--no-progress"]) == 0
    assert read_records(bundled)[0]["run_key"] != rec["run_key"]
    r = main(["run", "--posteriordb", str(clone), "--posterior", "nope-nope", "--sampler", "fake_iid",
              "--out", str(out)])
    assert r == 2 and "no bundled NumPyro model" in capsys.readouterr().err

"""``--shard I/N``: disjoint slices of the grid in separate processes; merged, they equal an unsharded run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import fake_sampler  # noqa: F401 - registers fake_iid in this process too
from probkit.bench import read_records, shard_grid
from probkit.bench.cli import main
from probkit.bench.runner import parse_shard
from probkit.bench.targets import BenchInputError

TESTS = Path(__file__).resolve().parent.parent
SCRIPT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import bench.fake_sampler; "
    "from probkit.bench.cli import main; sys.exit(main(sys.argv[1:]))"
)
GRID = ["run", "--target", "banana", "--sampler", "fake_iid", "--seeds", "4", "--chains", "2",
        "--draws", "60", "--no-progress"]
METRICS = ("sw2", "sw2_stderr", "mean_err_max", "sd_err_max", "bias_x2_max", "grad_evals", "ess_bulk")


def test_shard_grid_is_a_partition():
    grid = list(range(11))
    parts = [shard_grid(grid, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == grid and parts[1] == [1, 4, 7, 10]
    for bad in ("2/2", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(BenchInputError, match="--shard"):
            parse_shard(bad)


def test_two_shards_in_subprocesses_merge_to_the_unsharded_run(tmp_path, capsys):
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")])
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, str(TESTS), *GRID, "--shard", f"{i}/2",
                          "--out", str(tmp_path / f"s{i}")],
                         env={**env, "PYTHONHASHSEED": str(i + 1)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    # meanwhile the unsharded run, in this process (another hash seed)
    assert main([*GRID, "--out", str(tmp_path / "full")]) == 0
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    s0, s1, full = (read_records(tmp_path / d) for d in ("s0", "s1", "full"))
    assert [r["seed"] for r in s0] == [0, 2] and [r["seed"] for r in s1] == [1, 3]
    assert not {r["run_key"] for r in s0} & {r["run_key"] for r in s1}
    merged = {r["run_key"]: r for r in read_records([tmp_path / "s0", tmp_path / "s1"])}
    unsharded = {r["run_key"]: r for r in full}
    assert set(merged) == set(unsharded) and len(merged) == 4
    for key, r in unsharded.items():
        assert not r["failed"]
        assert {m: merged[key][m] for m in METRICS} == {m: r[m] for m in METRICS}, (r["target"], r["seed"])

    capsys.readouterr()
    assert main(["report", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged"),
                 "--leaderboard"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"banana\s+fake_iid\s+4\s+0\s", table), table
    md = (tmp_path / "merged" / "leaderboard.md").read_text()
    assert md.count("### ") == 2 and md.count("| banana | **") == 2  # sw2 and mean_err_max sections

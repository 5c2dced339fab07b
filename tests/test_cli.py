import json
import subprocess
import sys

import probkit
from probkit._cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert probkit.__version__ in capsys.readouterr().out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("jax", "jaxlib", "numpyro", "blackjax", "equinox", "optax", "diffrax"):
        assert report["versions"][name] != "not installed"
    assert report["backend"] == "cpu"
    assert report["device_count"] >= 1
    assert report["float64"] is False


def test_console_script_info():
    out = subprocess.run(
        [sys.executable, "-m", "probkit", "info"], capture_output=True, text=True, check=True
    ).stdout
    assert "numpyro" in out and "devices" in out and "float64" in out

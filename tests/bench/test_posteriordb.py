import json
import shutil
import zipfile

import numpy as np
import pytest

from probkit.bench import posteriordb

EIGHT = "eight_schools-eight_schools_noncentered"


def test_names_lists_the_six_bundled_posteriors():
    assert posteriordb.names() == [
        "arK-arK",
        "diamonds-diamonds",
        EIGHT,
        "garch-garch11",
        "kidiq-kidscore_momiq",
        "low_dim_gauss_mix-low_dim_gauss_mix",
    ]


def test_load_eight_schools():
    post = posteriordb.load(EIGHT)
    assert post.data["J"] == 8
    np.testing.assert_array_equal(post.data["y"], [28, 8, -3, 7, -1, 1, 18, 12])
    assert set(post.reference) == {f"theta[{i}]" for i in range(1, 9)} | {"mu", "tau"}
    assert post.reference["mu"].shape == (10, 1000)
    assert "theta_trans" in post.stan_code
    assert post.info["model_name"] == "eight_schools_noncentered"
    names, mat = post.reference_matrix(["mu", "tau"])
    assert mat.shape == (10_000, 2) and names == ["mu", "tau"]
    # reference mean of tau for this posterior is about 3.6 (posteriordb)
    assert 3.0 < mat[:, 1].mean() < 4.2


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="available:.*eight_schools"):
        posteriordb.load("no_such_posterior")


@pytest.fixture
def clone(tmp_path):
    """A copy of the bundled tree laid out like a posteriordb clone."""
    root = tmp_path / "posteriordb"
    shutil.copytree(posteriordb.BUNDLED_ROOT / "posterior_database", root / "posterior_database")
    return root


def test_reads_a_clone_layout(clone):
    assert posteriordb.names(clone) == posteriordb.names()
    post = posteriordb.load("kidiq-kidscore_momiq", root=clone)
    assert post.reference["beta[2]"].shape == (10, 1000)


def test_malformed_draws_file_is_named(clone):
    draws = clone / "posterior_database/reference_posteriors/draws/draws/kidiq-kidscore_momiq.json.zip"
    with zipfile.ZipFile(draws, "w") as zf:
        zf.writestr("kidiq-kidscore_momiq.json", "{not json")
    with pytest.raises(ValueError, match="kidiq-kidscore_momiq.json.zip"):
        posteriordb.load("kidiq-kidscore_momiq", root=clone)


def test_ragged_draws_are_rejected(tmp_path):
    path = tmp_path / "draws.json"
    path.write_text(json.dumps([{"a": [1.0, 2.0]}, {"a": [1.0]}]))
    with pytest.raises(ValueError, match="draws.json"):
        posteriordb.load_draws(path)


def test_missing_draws_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        posteriordb.load_draws(tmp_path / "nothere.json")


def test_not_a_posteriordb_tree(tmp_path):
    with pytest.raises(ValueError, match="not a posteriordb tree"):
        posteriordb.names(tmp_path)

import json
import shutil
import zipfile

import numpy as np
import pytest

from probkit.bench import posteriordb

EIGHT = "eight_schools-eight_schools_noncentered"


def test_names_lists_the_39_bundled_posteriors():
    names = posteriordb.names()
    assert len(names) == 39 and EIGHT in names and "mcycle_gp-accel_gp" in names
    info = posteriordb.bundle_info()
    assert sorted(info["posteriors"]) == names
    assert info["posteriors"]["mcycle_gp-accel_gp"] == {"reference": "summaries"}
    assert info["posteriors"][EIGHT] == {"reference": "draws", "chains": 10, "draws_per_chain": 500,
                                         "source_draws_per_chain": 1000, "thin": 2}


def test_load_eight_schools():
    post = posteriordb.load(EIGHT)
    assert post.data["J"] == 8
    np.testing.assert_array_equal(post.data["y"], [28, 8, -3, 7, -1, 1, 18, 12])
    assert set(post.reference) == {f"theta[{i}]" for i in range(1, 9)} | {"mu", "tau"}
    assert post.reference["mu"].shape == (10, 500)  # thinned by 2 from 10 x 1000
    assert "theta_trans" in post.stan_code
    assert post.info["model_name"] == "eight_schools_noncentered"
    names, mat = post.reference_matrix(["mu", "tau"])
    assert mat.shape == (5000, 2) and names == ["mu", "tau"]
    # the thinned draws agree with posteriordb's summaries of all 10 000 draws: within 4 Monte Carlo se
    for j, name in enumerate(names):
        mean, sd = post.summary[name]
        assert abs(mat[:, j].mean() - mean) < 4 * sd / np.sqrt(5000)
        assert abs(mat[:, j].std() / sd - 1) < 4 / np.sqrt(2 * 5000)


def test_summaries_only_posterior():
    post = posteriordb.load("mcycle_gp-accel_gp")
    assert post.reference is None and len(post.summary) == 66
    mean, sd = post.summary["sdgp_1"]
    # posteriordb: mean 43.0896028398911, mean square 1983.033117215
    assert mean == 43.0896028398911 and sd == pytest.approx(np.sqrt(1983.033117215 - mean**2), rel=1e-12)
    with pytest.raises(ValueError, match="summaries only"):
        post.reference_matrix()


def test_summary_sd_unresolved_by_the_rounding_is_nan():
    # diamonds' Intercept: E[x²] − E[x]² is 5e-8 of E[x²], below the summaries' 10 digits
    post = posteriordb.load("diamonds-diamonds")
    assert np.isnan(post.summary["Intercept"][1]) and np.isfinite(post.summary["sigma"][1])


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
    assert post.reference["beta[2]"].shape == (10, 500)


def test_write_subset_thins_and_rounds(tmp_path):
    """A posteriordb tree with 2 chains x 10 draws, thinned to 4 per chain."""
    src = tmp_path / "src" / "posterior_database"
    (src / "posteriors").mkdir(parents=True)
    (src / "posteriors" / "toy-normal.json").write_text(json.dumps(
        {"name": "toy-normal", "model_name": "normal", "data_name": "toy", "reference_posterior_name": "toy-normal"}))
    for rel, text in [("models/stan/normal.stan", "parameters { real mu; }"), ("data/data/toy.json", '{"N": 1}')]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    rng = np.random.default_rng(0)
    draws = 100.0 + 0.01 * rng.normal(size=(2, 10))  # sd 0.01: rounding to 1e-7, not to 7 digits of 100
    posteriordb._write_zip(src / "reference_posteriors/draws/draws/toy-normal.json.zip", "toy-normal.json",
                           json.dumps([{"mu": c.tolist()} for c in draws]))
    manifest = posteriordb.write_subset(tmp_path / "src", tmp_path / "dst", per_chain=4, sd_digits=5)
    assert manifest["posteriors"]["toy-normal"] == {"reference": "draws", "chains": 2, "draws_per_chain": 4,
                                                    "source_draws_per_chain": 10, "thin": 2}
    post = posteriordb.load("toy-normal", root=tmp_path / "dst")
    assert post.stan_code == "parameters { real mu; }" and post.data == {"N": 1}
    quantum = 10.0 ** (np.floor(np.log10(draws[:, ::2][:, :4].std())) - 5)
    np.testing.assert_allclose(post.reference["mu"], draws[:, ::2][:, :4], rtol=0, atol=quantum / 2 * (1 + 1e-9))
    assert np.abs(post.reference["mu"] - draws[:, ::2][:, :4]).max() > 0  # really rounded


def test_empty_or_nan_draws_are_rejected(tmp_path):
    (tmp_path / "nan.json").write_text('[{"a": [1.0, NaN]}]')
    (tmp_path / "empty.json").write_text('[{"a": []}]')
    with pytest.raises(ValueError, match="nan.json: parameter 'a' has 1 non-finite"):
        posteriordb.load_draws(tmp_path / "nan.json")
    with pytest.raises(ValueError, match="empty.json: parameter 'a' has no draws"):
        posteriordb.load_draws(tmp_path / "empty.json")


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

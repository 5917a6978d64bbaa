"""The benchmarks still run and still compare equal results (timings are not asserted here)."""

import pytest

from bench import run_all


@pytest.mark.slow
@pytest.mark.network
def test_benchmarks_run_and_agree_on_a_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "OUT", tmp_path)
    monkeypatch.setattr(run_all, "OURS_REPEAT", 1)
    assert (
        run_all.main(
            [
                "--rows",
                "3000",
                *("--only", "prep", "--only", "recordio", "--only", "evaluation"),
                *("--only", "read_sparse", "--only", "prep_job", "--only", "prep_10m"),
            ]
        )
        == 0
    )
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["prep"]["same_matrices"] is True
    assert results["prep"]["rows"] == 3000
    assert results["recordio"]["byte_identical"] is True
    assert results["evaluation"]["identical_numbers"] is True
    assert results["read_sparse"]["same_result"] is True
    assert results["prep_job"]["fm_records"] > 3000  # positives and their negatives
    assert results["prep_10m"]["interactions"] == 3000  # the quick mode's synthetic sample
    assert results["prep_10m"]["peak_mb"] > 0

import json

import numpy as np
import pytest

from tests.fm_artifacts import fm_artifact
from training import recordio
from training.fm_to_knn import fm_scores, knn_matrices, main, read_fm_model

N_USERS, N_ITEMS, FACTORS = 30, 50, 6


def _synthetic(seed=0):
    rng = np.random.default_rng(seed)
    dim = N_USERS + N_ITEMS
    return rng.standard_normal((dim, FACTORS)), rng.standard_normal(dim), 0.3


def test_inner_product_ranking_equals_fm_ranking():
    v, w, w0 = _synthetic()
    params = read_fm_model(fm_artifact(v, w, w0))
    items, labels, users = knn_matrices(params, N_USERS, N_ITEMS)
    assert items.shape == (N_ITEMS, FACTORS + 1)
    assert users.shape == (N_USERS, FACTORS + 1)
    np.testing.assert_array_equal(labels, np.arange(N_ITEMS))
    by_knn = np.argsort(
        -(users.astype(np.float64) @ items.T.astype(np.float64)), axis=1, kind="stable"
    )
    by_fm = np.argsort(
        -fm_scores(params, np.arange(N_USERS), N_USERS, N_ITEMS), axis=1, kind="stable"
    )
    np.testing.assert_array_equal(by_knn[:, :10], by_fm[:, :10])


def test_transposed_v_and_other_key_names_are_oriented():
    v, w, w0 = _synthetic(1)
    names = (
        "arg:Linear_Plus_Bias_v",
        "arg:Linear_Plus_Bias_w1_weight",
        "arg:Linear_Plus_Bias_w0_weight",
    )
    params = read_fm_model(fm_artifact(v.T, w, w0, names=names, meta=False))
    np.testing.assert_allclose(params.v, v.astype(np.float32))
    assert params.bias == pytest.approx(0.3)


def test_mismatches_fail_loudly():
    v, w, w0 = _synthetic()
    with pytest.raises(ValueError, match="has no axis of feature_dim"):
        read_fm_model(fm_artifact(v[:10], w, w0))
    with pytest.raises(ValueError, match="FM params have no v"):
        read_fm_model(fm_artifact(v, w, w0, names=("weights", "arg:w1_weight", "arg:w0_weight")))
    params = read_fm_model(fm_artifact(v, w, w0))
    with pytest.raises(ValueError, match="does not fit 10 users"):
        knn_matrices(params, 10, 10)


def _job_inputs(tmp_path) -> list[str]:
    """A model artifact and prep's manifest on disk: the job's --model and --prepared."""
    v, w, w0 = _synthetic()
    (tmp_path / "model.tar.gz").write_bytes(fm_artifact(v, w, w0))
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "manifest.json").write_text(
        json.dumps({"users": N_USERS, "items": N_ITEMS, "fm": {"feature_dim": N_USERS + N_ITEMS}})
    )
    return ["--model", str(tmp_path / "model.tar.gz"), "--prepared", str(prepared)]


def test_job_writes_knn_channels(tmp_path):
    args = _job_inputs(tmp_path)
    out = tmp_path / "out"
    assert main([*args, "--output", str(out)]) == 0
    items, labels = recordio.read_dense(out / "knn" / "train" / "items-00000.recordio")
    assert items.shape == (N_ITEMS, FACTORS + 1)
    np.testing.assert_array_equal(labels, np.arange(N_ITEMS, dtype=np.float32))
    users, none = recordio.read_dense(out / "knn" / "users" / "users-00000.recordio")
    assert users.shape == (N_USERS, FACTORS + 1)
    assert none is None


def test_user_queries_are_split_for_every_transform_instance(tmp_path):
    args = _job_inputs(tmp_path)
    out = tmp_path / "out"
    assert main([*args, "--output", str(out), "--user-shards", "3"]) == 0
    shards = sorted((out / "knn" / "users").glob("users-*.recordio"))
    assert len(shards) == 3
    rows = [recordio.read_dense(shard)[0] for shard in shards]
    assert sum(len(r) for r in rows) == N_USERS
    whole = np.vstack(rows)  # in user order: the transform's .out files sort the same way
    single = tmp_path / "single"
    assert main([*args, "--output", str(single)]) == 0
    np.testing.assert_array_equal(
        whole, recordio.read_dense(single / "knn" / "users" / "users-00000.recordio")[0]
    )

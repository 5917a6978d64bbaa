"""Byte equality with the SageMaker Python SDK v2 writer, and the reader round trip."""

import numpy as np
import pytest
import scipy.sparse as sp

from tests.sdk_recordio import sdk_dense, sdk_sparse
from training import recordio


@pytest.fixture(autouse=True, params=["scatter", "slots", "classes"])
def encoder_path(request, monkeypatch):
    """Every test runs on each encoder path: scattering, the slot matrix, and templates per
    class of rows (which falls back to the slot matrix where it does not apply)."""
    monkeypatch.setattr(recordio, "_slots_fit", lambda *_: request.param != "scatter")
    if request.param != "classes":
        monkeypatch.setattr(recordio, "MAX_CLASSES", 0)
    monkeypatch.setattr(recordio, "SLOT_BLOCK_ROWS", 64)  # several blocks, a short last one
    return request.param


def _random_csr(rng, rows, cols, density, dtype=np.float32):
    return sp.random(rows, cols, density=density, format="csr", dtype=dtype, random_state=rng)


@pytest.mark.parametrize("with_labels", [False, True])
def test_sparse_matches_sdk(with_labels):
    rng = np.random.default_rng(1)
    matrix = _random_csr(rng, 300, 5000, 0.002)
    labels = rng.random(300).astype(np.float32) if with_labels else None
    assert recordio.encode_sparse(matrix, labels) == sdk_sparse(matrix, labels)


def test_sparse_with_empty_rows_and_multibyte_varints():
    # column indices up to 2^21 take 1-4 varint bytes; rows 1 and 3 are empty; shape > 2^14
    indices = np.array([0, 127, 128, 16383, 16384, 2_097_151, 5])
    indptr = np.array([0, 3, 3, 6, 6, 7])
    data = np.arange(1, 8, dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(5, 3_000_000))
    for labels in (None, np.array([0, 1, 0, 1, 1], dtype=np.float32)):
        assert recordio.encode_sparse(matrix, labels) == sdk_sparse(matrix, labels)


def test_long_rows_need_multibyte_lengths():
    # a 300-value row makes the packed values field > 127 bytes, nested lengths grow too
    matrix = _random_csr(np.random.default_rng(2), 4, 400, 0.8)
    assert recordio.encode_sparse(matrix) == sdk_sparse(matrix)


@pytest.mark.parametrize(
    ("dtype", "label_dtype"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.float32, np.int64), (np.int64, None)],
)
def test_dense_matches_sdk(dtype, label_dtype):
    rng = np.random.default_rng(3)
    array = (rng.standard_normal((50, 33)) * 100).astype(dtype)
    labels = None if label_dtype is None else (rng.integers(-3, 200, 50)).astype(label_dtype)
    assert recordio.encode_dense(array, labels) == sdk_dense(array, labels)


def test_float64_sparse_matches_sdk():
    matrix = _random_csr(np.random.default_rng(4), 40, 90, 0.1, dtype=np.float64)
    assert recordio.encode_sparse(matrix) == sdk_sparse(matrix)


def test_round_trip_sparse_and_dense(tmp_path):
    rng = np.random.default_rng(5)
    matrix = _random_csr(rng, 120, 700, 0.01)
    labels = rng.random(120).astype(np.float32)
    paths = recordio.write_shards(tmp_path, "train", matrix, labels, records_per_shard=50)
    assert [p.name for p in paths] == [f"train-0000{i}.recordio" for i in range(3)]
    parts = [recordio.read_sparse(p) for p in paths]
    back = sp.vstack([m for m, _ in parts])
    assert (back != matrix).nnz == 0
    np.testing.assert_array_equal(np.concatenate([y for _, y in parts]), labels)
    dense = rng.standard_normal((7, 5)).astype(np.float32)
    array, no_labels = recordio.read_dense(recordio.encode_dense(dense))
    np.testing.assert_array_equal(array, dense)
    assert no_labels is None


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="cast to float32"):
        recordio.encode_dense(np.zeros((2, 2), dtype=np.float16))
    with pytest.raises(ValueError, match="labels must be a vector of 2 values"):
        recordio.encode_dense(np.zeros((2, 2), dtype=np.float32), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="needs a scipy sparse matrix"):
        recordio.encode_sparse(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="not RecordIO"):
        recordio.read_sparse(b"\x00" * 8)


def test_parallel_halves_concatenate_to_the_same_bytes(monkeypatch):
    matrix = _random_csr(np.random.default_rng(6), 1001, 300, 0.01)
    labels = np.arange(1001, dtype=np.float32)
    monkeypatch.setattr(recordio, "PARALLEL_MIN_ROWS", 10)
    assert recordio.encode_sparse(matrix, labels) == sdk_sparse(matrix, labels)
    dense = np.random.default_rng(7).random((501, 3)).astype(np.float32)
    assert recordio.encode_dense(dense) == sdk_dense(dense)


def test_fm_rows_are_written_from_one_template_per_class(encoder_path):
    """One-hot rows of 2 or 3 values whose keys take 1 to 3 varint bytes: a few classes."""
    rng = np.random.default_rng(5)
    n, users, items = 400, 300, 20_000
    user, item = rng.integers(0, users, n), rng.integers(0, items, n)
    days = np.where(rng.random(n) < 0.3, 0, rng.integers(1, 900, n)).astype(np.float32)
    indices = np.stack([user, users + item, np.full(n, users + items)], 1).ravel()
    data = np.stack([np.ones(n), np.ones(n), days], 1).astype(np.float32).ravel()
    matrix = sp.csr_matrix((data, indices, np.arange(0, 3 * n + 1, 3)), (n, users + items + 1))
    matrix.eliminate_zeros()
    labels = (rng.random(n) < 0.2).astype(np.float32)
    assert recordio.encode_sparse(matrix, labels) == sdk_sparse(matrix, labels)
    assert recordio.encode_sparse(matrix) == sdk_sparse(matrix, None)
    if encoder_path == "classes":
        rows = recordio._Rows(
            recordio._TYPES["Float32"],
            matrix.data,
            np.diff(matrix.indptr).astype(np.int64),
            matrix.indices.astype(np.uint64),
            matrix.shape[1],
        )
        assert recordio._encode_by_class(rows, None) is not None

"""The vectorised RecordIO reader against two oracles: the per-record reader it replaced (kept in
bench/) on the SDK's own records, and the protobuf library itself on records the SDK never
writes (fields out of order, unknown fields, non-packed and repeated fields)."""

import struct

import numpy as np
import pytest
import scipy.sparse as sp
from sagemaker.amazon.record_pb2 import Record

from bench import recordio_reference
from tests.sdk_recordio import sdk_dense, sdk_sparse
from training import recordio, recordio_reader


def _frame(payloads: list[bytes]) -> bytes:
    """RecordIO framing as the SDK writes it: magic, length, payload, zero padding."""
    return b"".join(
        struct.pack("<II", recordio.MAGIC, len(p)) + p + b"\x00" * (-len(p) % 4) for p in payloads
    )


def _assert_same(ours, expected):
    (matrix, labels), (want, want_labels) = ours, expected
    assert matrix.shape == want.shape
    assert matrix.dtype == want.dtype
    np.testing.assert_array_equal(matrix.indptr, want.indptr)
    np.testing.assert_array_equal(matrix.indices, want.indices)
    np.testing.assert_array_equal(matrix.data, want.data)
    if want_labels is None:
        assert labels is None
    else:
        assert labels.dtype == want_labels.dtype
        np.testing.assert_array_equal(labels, want_labels)


def _same_as_before(data: bytes):
    ours = recordio.read_sparse(data)
    _assert_same(ours, recordio_reference.read_sparse(data))
    return ours


def _by_protobuf(data: bytes):
    """What the protobuf library reads: one row per record, as read_sparse documents."""
    records = [Record.FromString(bytes(p)) for p in recordio_reference.iter_payloads(data)]
    rows, labels, width = [], [], 0
    for record in records:
        tensor = record.features["values"]
        kind = tensor.WhichOneof("value")
        message = getattr(tensor, kind)
        values = np.array(message.values, dtype=_DTYPES[kind])
        keys = np.array(message.keys, np.int64) if len(message.keys) else np.arange(len(values))
        width = max(width, message.shape[0] if len(message.shape) else len(values))
        rows.append((values, keys))
        if "values" in record.label:
            label = record.label["values"]
            labels.append(getattr(label, label.WhichOneof("value")).values[0])
    indptr = np.concatenate([[0], np.cumsum([len(v) for v, _ in rows])])
    matrix = sp.csr_matrix(
        (np.concatenate([v for v, _ in rows]), np.concatenate([k for _, k in rows]), indptr),
        shape=(len(rows), width),
    )
    return matrix, (np.array(labels, np.float32) if labels else None)


_DTYPES = {"float32_tensor": np.float32, "float64_tensor": np.float64, "int32_tensor": np.int32}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [None, np.float32, np.float64, np.int64])
def test_sparse_records_read_as_before(dtype, label_dtype):
    rng = np.random.default_rng(1)
    matrix = sp.random(300, 5000, density=0.002, format="csr", dtype=dtype, random_state=rng)
    labels = None if label_dtype is None else rng.integers(0, 9, 300).astype(label_dtype)
    back, back_labels = _same_as_before(sdk_sparse(matrix, labels))
    assert (back != matrix).nnz == 0
    if labels is not None:
        np.testing.assert_array_equal(back_labels, labels)


def test_empty_rows_and_multibyte_varints():
    # keys of 1-4 varint bytes, rows 1, 3 and 5 empty (the last one too), shape above 2^21
    indices = np.array([0, 127, 128, 16383, 16384, 2_097_151, 5])
    indptr = np.array([0, 3, 3, 6, 6, 7, 7])
    matrix = sp.csr_matrix(
        (np.arange(1, 8, dtype=np.float32), indices, indptr), shape=(6, 3_000_000)
    )
    for labels in (None, np.array([0, 1, 0, 1, 1, 0], dtype=np.float32)):
        back, _ = _same_as_before(sdk_sparse(matrix, labels))
        assert back.shape == (6, 3_000_000)
        assert (back != matrix).nnz == 0


def test_long_rows_need_multibyte_lengths():
    matrix = sp.random(4, 400, density=0.8, format="csr", dtype=np.float32, random_state=2)
    back, labels = _same_as_before(sdk_sparse(matrix))
    assert (back != matrix).nnz == 0
    assert labels is None


@pytest.mark.parametrize(("dtype", "label_dtype"), [(np.float32, np.float32), (np.int64, None)])
def test_dense_records_read_as_before(dtype, label_dtype):
    rng = np.random.default_rng(3)
    array = (rng.standard_normal((50, 33)) * 100).astype(dtype)
    array[4] = 0  # a dense row of zeros still has 33 values
    labels = None if label_dtype is None else rng.integers(-3, 200, 50).astype(label_dtype)
    back, _ = _same_as_before(sdk_dense(array, labels))
    np.testing.assert_array_equal(back.toarray(), array.astype(back.dtype))


def test_dense_and_sparse_records_in_one_stream():
    rng = np.random.default_rng(4)
    sparse = sp.random(10, 40, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    dense = rng.random((5, 50)).astype(np.float32)
    _same_as_before(sdk_sparse(sparse) + sdk_dense(dense))
    # float32 and float64 records together widen to float64, as concatenating them did
    back, _ = _same_as_before(sdk_dense(dense[:, :7]) + sdk_dense(rng.random((3, 7))))
    assert back.dtype == np.float64


def test_no_records():
    matrix, labels = recordio.read_sparse(b"")
    assert matrix.shape == (0, 0)
    assert labels is None


def test_chunks_join_into_one_matrix(monkeypatch):
    rng = np.random.default_rng(5)
    matrix = sp.random(1000, 300, density=0.01, format="csr", dtype=np.float32, random_state=rng)
    labels = rng.random(1000).astype(np.float32)
    monkeypatch.setattr(recordio_reader, "READ_CHUNK_RECORDS", 64)
    _same_as_before(sdk_sparse(matrix, labels))


def test_a_payload_holding_the_magic_is_not_a_record():
    # a float whose bits are the magic, at a 4-byte-aligned offset inside some record
    magic = np.array([recordio.MAGIC], "<u4").view("<f4")[0]
    matrix = sp.csr_matrix(np.array([[1, 2, 0, magic, 0, magic]] * 4, dtype=np.float32))
    data = sdk_sparse(matrix, np.ones(4, np.float32))
    words = np.frombuffer(data, "<u4")
    assert (words == recordio.MAGIC).sum() > 4  # the trap is really there
    back, _ = _same_as_before(data)
    assert back.shape == (4, 6)


def test_protobuf_beyond_the_sdk_layout():
    """Label before features, unknown fields, non-packed values, keys split in two fields."""
    full = Record()
    tensor = full.features["values"].float32_tensor
    tensor.values.extend([1.5, -2.0, 3.25])
    tensor.keys.extend([2, 300, 7])
    tensor.shape.append(1000)
    full.label["values"].float32_tensor.values.append(1.0)
    label_only = Record()
    label_only.label["values"].float32_tensor.values.append(0.0)
    features_only = Record()
    features_only.features["values"].CopyFrom(full.features["values"])
    extra = Record(uid="user-7", metadata="m")
    # Value{float32_tensor{values: three non-packed fixed32, keys: two packed runs, shape}}
    unpacked = b"".join(b"\x0d" + struct.pack("<f", v) for v in (4.0, 5.0, 6.0))
    keys = b"\x12\x01\x01" + b"\x12\x02\x09\x03"  # [1] then [9, 3]
    tensor_bytes = unpacked + keys + b"\x1a\x02\xe8\x07"
    value = b"\x12" + bytes([len(tensor_bytes)]) + tensor_bytes
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    hand_made = b"\x0a" + bytes([len(entry)]) + entry + label_only.SerializeToString()
    payloads = [
        full.SerializeToString(),
        label_only.SerializeToString() + features_only.SerializeToString(),  # merged: label first
        extra.SerializeToString() + full.SerializeToString(),  # unknown fields first
        hand_made,
    ]
    data = _frame(payloads)
    expected = _by_protobuf(data)
    _assert_same(recordio.read_sparse(data), expected)
    assert expected[0][3].toarray()[0, [1, 9, 3]].tolist() == [4.0, 5.0, 6.0]


def test_int32_values_including_negative_ones():
    rng = np.random.default_rng(6)
    array = rng.integers(-(2**31), 2**31 - 1, (20, 5), dtype=np.int64)
    data = sdk_dense(array)
    back, _ = _same_as_before(data)
    np.testing.assert_array_equal(back.toarray(), array.astype(np.int32))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00" * 8, "not RecordIO: bad magic 0x0 at byte 0"),
        (_frame([b"\x0a\x02\x12\x00"]) + b"\x00" * 8, "bad magic 0x0 at byte 12"),
        (_frame([b"\x0a\x05\x12\x00"]), "a field runs past its message"),
        (_frame([b"\x0a\x02\x12\x00"])[:-6], "is cut short"),
        (struct.pack("<II", recordio.MAGIC, 1 << 29 | 4) + b"\x0a\x02\x12\x00", "split in parts"),
        (_frame([b"\x0a\x0c\x0a\x06values\x12\x02\x4a\x00"]), "type bytes are not supported"),
        (_frame([b"\x0b"]), "unexpected wire type 3"),
    ],
)
def test_malformed_data_is_explained(data, message):
    with pytest.raises(ValueError, match=message):
        recordio.read_sparse(data)


def test_labels_on_some_records_only_are_refused():
    matrix = sp.csr_matrix(np.eye(3, dtype=np.float32))
    data = sdk_sparse(matrix[:2], np.ones(2, np.float32)) + sdk_sparse(matrix[2:])
    with pytest.raises(ValueError, match="some records have a label and others do not"):
        recordio.read_sparse(data)


def test_shards_read_one_at_a_time_into_one_matrix(tmp_path):
    rng = np.random.default_rng(7)
    matrix = sp.random(250, 90, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    labels = rng.random(250).astype(np.float32)
    paths = recordio.write_shards(tmp_path, "train", matrix, labels, records_per_shard=100)
    back, back_labels = recordio.read_shards(paths)
    assert back.shape == (250, 90)
    assert (back != matrix).nnz == 0
    np.testing.assert_array_equal(back_labels, labels)
    # dense shards of different widths: as wide as the widest, like one joined read
    narrow, wide = sdk_dense(np.ones((2, 3), np.float32)), sdk_dense(np.ones((1, 5), np.float32))
    _assert_same(recordio.read_shards([narrow, wide]), recordio.read_sparse(narrow + wide))
    with pytest.raises(ValueError, match="some shards have labels and others do not"):
        recordio.read_shards([sdk_dense(np.ones((1, 2)), np.ones(1)), narrow])

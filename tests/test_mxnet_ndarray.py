import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from localaws.fm_trainer import tar_member
from training import mxnet_ndarray
from training.fm_to_knn import read_fm_model

# The worked example of shared notes/sagemaker-formats.md: {'arg:v': [[1,2],[3,4]]} float32
WORKED = (
    bytes.fromhex(
        "1201000000000000"
        "0000000000000000"
        "0100000000000000"
        "c9fa93f9"
        "00000000"
        "02000000"
        "0200000000000000"
        "0200000000000000"
        "01000000"
        "00000000"
        "00000000"
    )
    + np.array([1, 2, 3, 4], "<f4").tobytes()
    + bytes.fromhex("01000000000000000500000000000000")
    + b"arg:v"
)


def test_worked_example_reads_and_writes_byte_for_byte():
    arrays = mxnet_ndarray.load(WORKED)
    np.testing.assert_array_equal(arrays["arg:v"], [[1, 2], [3, 4]])
    assert arrays["arg:v"].dtype == np.float32
    assert mxnet_ndarray.dump({"arg:v": np.array([[1, 2], [3, 4]], np.float32)}) == WORKED


def test_dense_and_row_sparse_round_trip():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20, 4)).astype(np.float32)
    v[[3, 7, 8]] = 0  # rows a row_sparse array does not store
    arrays = {
        "arg:v": v,
        "arg:w1_weight": rng.standard_normal((20, 1)),
        "arg:w0_weight": np.array([0.5]),
    }
    data = mxnet_ndarray.dump(arrays, row_sparse=("arg:v",))
    back = mxnet_ndarray.load(data)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype


def test_v1_and_legacy_headers():
    body = struct.pack("<ii", 1, 0) + struct.pack("<i", 0) + np.array([7, 8], "<f4").tobytes()
    v1 = struct.pack("<I", mxnet_ndarray.V1) + struct.pack("<iq", 1, 2) + body
    legacy = struct.pack("<I", 1) + struct.pack("<I", 2) + body  # magic is ndim, dims u32
    for array in (v1, legacy):
        data = struct.pack("<QQQ", 0x112, 0, 1) + array + struct.pack("<Q", 0)
        np.testing.assert_array_equal(mxnet_ndarray.load(data)["0"], [7, 8])


def test_garbage_is_refused():
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="not an NDArray list"):
        mxnet_ndarray.load(b"\x00" * 24)
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="truncated"):
        mxnet_ndarray.load(WORKED[:60])


# Files written by real MXNet 1.9.1 (make_fixtures.py beside them) and the arrays they hold.
MXNET = Path(__file__).parent / "fixtures" / "mxnet-1.9.1"
EXPECTED = json.loads((MXNET / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_file_written_by_mxnet_reads_as_mxnet_wrote_it(name):
    arrays = mxnet_ndarray.load((MXNET / name).read_bytes())
    assert list(arrays) == list(EXPECTED[name])
    for key, want in EXPECTED[name].items():
        assert arrays[key].dtype == np.dtype(want["dtype"])
        assert list(arrays[key].shape) == want["shape"]
        np.testing.assert_array_equal(arrays[key].ravel(), np.array(want["values"], want["dtype"]))


@pytest.mark.parametrize("name", ["fm_params", "float64_and_int", "empty_and_scalar_like"])
def test_dense_files_are_written_byte_for_byte_as_mxnet_writes_them(name):
    data = (MXNET / name).read_bytes()
    assert mxnet_ndarray.dump(mxnet_ndarray.load(data)) == data


def test_an_unnamed_list_is_written_byte_for_byte_as_mxnet_writes_it():
    data = (MXNET / "unnamed_list").read_bytes()
    assert mxnet_ndarray.dump(list(mxnet_ndarray.load(data).values())) == data


def test_row_sparse_written_here_reads_back_like_mxnets():
    arrays = mxnet_ndarray.load((MXNET / "row_sparse").read_bytes())
    again = mxnet_ndarray.load(mxnet_ndarray.dump(arrays, row_sparse=("arg:v",)))
    np.testing.assert_array_equal(again["arg:v"], arrays["arg:v"])


def test_the_fm_artifact_reader_takes_mxnets_own_params_file():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("symbol.json", "{}")
        archive.writestr("params", (MXNET / "fm_params").read_bytes())
    params = read_fm_model(tar_member("model_algo-1", inner.getvalue()), feature_dim=7)
    want = EXPECTED["fm_params"]
    np.testing.assert_array_equal(params.v.ravel(), np.float32(want["arg:v"]["values"]))
    np.testing.assert_array_equal(params.w, np.float32(want["arg:w1_weight"]["values"]))
    assert params.bias == 0.25

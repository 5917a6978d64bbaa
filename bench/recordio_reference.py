"""The RecordIO reader as it was before it was vectorised: one Python parse per record.

Kept runnable as the benchmark's reference (`bench.run_all --only read_sparse`) and to check that
`training.recordio.read_sparse` returns the same matrices and labels.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

MAGIC = 0xCED7230A


@dataclass
class Record:
    values: np.ndarray
    keys: np.ndarray | None
    shape: list[int] | None
    label: np.ndarray | None


def iter_payloads(data: bytes) -> Iterator[bytes]:
    """The protobuf payload of each RecordIO record."""
    pos, end = 0, len(data)
    while pos < end:
        magic, length = struct.unpack_from("<II", data, pos)
        if magic != MAGIC:
            raise ValueError(f"not RecordIO: bad magic {magic:#x} at byte {pos}")
        length &= (1 << 29) - 1  # top 3 bits: continuation flag, always 0 from the SDK
        yield data[pos + 8 : pos + 8 + length]
        pos += 8 + ((length + 3) & ~3)


def read_records(source: bytes | BinaryIO | Path) -> list[Record]:
    if isinstance(source, Path):
        source = source.read_bytes()
    elif not isinstance(source, bytes | bytearray):
        source = source.read()
    return [_parse_record(payload) for payload in iter_payloads(source)]


def read_sparse(source: bytes | Path) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Records back into a CSR matrix (sparse or dense records) and the label vector."""
    records = read_records(source)
    if not records:
        return sp.csr_matrix((0, 0), dtype=np.float32), None
    n_cols = max((r.shape[0] if r.shape else len(r.values)) for r in records)
    counts = np.array([len(r.values) for r in records])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate(
        [r.keys if r.keys is not None else np.arange(len(r.values)) for r in records]
    ).astype(np.int64)
    data = np.concatenate([r.values for r in records])
    labels = None
    if records[0].label is not None:
        labels = np.array([r.label[0] for r in records], dtype=records[0].label.dtype)
    return sp.csr_matrix((data, indices, indptr), shape=(len(records), n_cols)), labels


def read_dense(source: bytes | Path) -> tuple[np.ndarray, np.ndarray | None]:
    matrix, labels = read_sparse(source)
    return matrix.toarray(), labels


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            yield field, wire, buf[pos : pos + length]
            pos += length
        elif wire == 0:
            value, pos = _varint(buf, pos)
            yield field, wire, value
        else:
            raise ValueError(f"unexpected wire type {wire} in a Record")


def _packed_varints(buf: bytes) -> np.ndarray:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return np.array(out, dtype=np.uint64)


def _parse_tensor(field: int, buf: bytes) -> tuple[np.ndarray, np.ndarray | None, list[int] | None]:
    dtype = {2: "<f4", 3: "<f8", 7: None}[field]
    values, keys, shape = np.empty(0, dtype or np.int32), None, None
    for number, _, payload in _fields(buf):
        if number == 1:
            values = (
                np.frombuffer(payload, dtype=dtype).copy()
                if dtype
                else _packed_varints(payload).astype(np.int64).astype(np.int32)
            )
        elif number == 2:
            keys = _packed_varints(payload)
        elif number == 3:
            shape = [int(s) for s in _packed_varints(payload)]
    return values, keys, shape


def _parse_map_value(entry: bytes) -> tuple[np.ndarray, np.ndarray | None, list[int] | None]:
    for number, _, payload in _fields(entry):
        if number == 2:  # Value
            for tensor_field, _, tensor in _fields(payload):
                return _parse_tensor(tensor_field, tensor)
    return np.empty(0, np.float32), None, None


def _parse_record(payload: bytes) -> Record:
    values, keys, shape, label = np.empty(0, np.float32), None, None, None
    for number, _, entry in _fields(payload):
        if number == 1:
            values, keys, shape = _parse_map_value(entry)
        elif number == 2:
            label = _parse_map_value(entry)[0]
    return Record(values, keys, shape, label)

"""MXNet's NDArray-list file (`.params`), read and written with numpy alone.

The Factorization Machines artifact stores its weights this way; MXNet itself is not on the
processing image and no longer maintained. Layout (little-endian): as MXNet 1.9.1 writes it,
checked against files it wrote (tests/fixtures/mxnet-1.9.1/, tests/test_mxnet_ndarray.py).
`load` is what training.fm_to_knn runs; `dump` (the local account's FM trainer writes SageMaker's
artifact with it) stays beside it, so the format lives in one file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
DENSE, ROW_SPARSE, CSR = 0, 1, 2
AUX_COUNT = {ROW_SPARSE: 1, CSR: 2}
DTYPES = {
    0: np.float32,
    1: np.float64,
    2: np.float16,
    3: np.uint8,
    4: np.int32,
    5: np.int8,
    6: np.int64,
    7: np.bool_,
}
DTYPE_CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class NDArrayFormatError(ValueError):
    """The bytes are not an MXNet NDArray list this reader understands."""


@dataclass
class _Cursor:
    data: bytes
    pos: int = 0

    def take(self, fmt: str):
        if self.pos + struct.calcsize("<" + fmt) > len(self.data):
            raise NDArrayFormatError(f"truncated: file ends at offset {len(self.data)}")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NDArrayFormatError(f"truncated: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def shape(self) -> tuple[int, ...]:
        ndim = self.take("i")
        return tuple(self.take("q") for _ in range(ndim)) if ndim > 0 else ()


def load(data: bytes) -> dict[str, np.ndarray]:
    """All arrays, densified, by name (names keep their `arg:`/`aux:` prefixes)."""
    cursor = _Cursor(data)
    header, reserved, count = cursor.take("QQQ")
    if header != LIST_MAGIC or reserved != 0:
        raise NDArrayFormatError(f"not an NDArray list: header {header:#x}")
    arrays = [_load_array(cursor) for _ in range(count)]
    n_names = cursor.take("Q")
    names = [cursor.raw(cursor.take("Q")).decode("utf-8") for _ in range(n_names)]
    if n_names not in (0, count):
        raise NDArrayFormatError(f"{count} arrays but {n_names} names")
    return dict(zip(names or [str(i) for i in range(count)], arrays, strict=True))


def _load_array(cursor: _Cursor) -> np.ndarray:
    magic = cursor.take("I")
    storage = DENSE
    if magic in (V2, V3):
        storage = cursor.take("i")
        if storage not in (DENSE, ROW_SPARSE, CSR):
            raise NDArrayFormatError(f"unknown storage type {storage}")
        if storage != DENSE:
            cursor.shape()  # the storage shape as saved; see _stored_shape
        shape = cursor.shape()
    elif magic == V1:
        shape = cursor.shape()
    else:  # legacy: the magic is ndim, dims are u32
        shape = tuple(cursor.take("I") for _ in range(magic))
    if not shape:
        return np.empty(0, np.float32)
    cursor.take("ii")  # device type and id
    dtype = _dtype(cursor.take("i"))
    aux = []
    if storage != DENSE:
        for _ in range(AUX_COUNT[storage]):
            aux.append((_dtype(cursor.take("i")), cursor.shape()))
    values = _read(cursor, dtype, _stored_shape(storage, shape, [s for _, s in aux]))
    aux_values = [_read(cursor, d, s) for d, s in aux]
    if storage == ROW_SPARSE:
        dense = np.zeros(shape, dtype=dtype)
        dense[aux_values[0].astype(np.int64)] = values
        return dense
    if storage == CSR:
        import scipy.sparse as sp  # only for this rare layout

        indptr, indices = aux_values
        return sp.csr_matrix((values, indices, indptr), shape=shape).toarray()
    return values


def _stored_shape(
    storage: int, shape: tuple[int, ...], aux_shapes: list[tuple[int, ...]]
) -> tuple[int, ...]:
    """How many values follow: what MXNet's loader allocates, from the aux arrays' shapes.

    The storage shape written before the shape is not it: MXNet 1.9.1 writes (0, columns) for
    a row_sparse array made with tostype(), then its stored rows (tests/fixtures/mxnet-1.9.1).
    MXNet's NDArray::Chunk::CheckAndAlloc sizes the data from the aux shapes instead: as many
    rows as row indices (row_sparse), as many values as column indices (csr)."""
    if storage == ROW_SPARSE:
        return (aux_shapes[0][0], *shape[1:])
    if storage == CSR:
        return (aux_shapes[1][0],)
    return shape


def _dtype(code: int):
    if code not in DTYPES:
        raise NDArrayFormatError(f"unknown dtype code {code}")
    return DTYPES[code]


def _read(cursor: _Cursor, dtype, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape)) if shape else 0
    size = count * np.dtype(dtype).itemsize
    return (
        np.frombuffer(cursor.raw(size), dtype=np.dtype(dtype).newbyteorder("<"))
        .reshape(shape)
        .copy()
    )


def dump(
    arrays: dict[str, np.ndarray] | list[np.ndarray], *, row_sparse: tuple[str, ...] = ()
) -> bytes:
    """Write V2 arrays; names in row_sparse are stored as row_sparse (non-zero rows only).
    A list is written without names, as mx.nd.save writes one."""
    named = isinstance(arrays, dict)
    if not named:
        arrays = {str(i): array for i, array in enumerate(arrays)}
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        code = DTYPE_CODES[array.dtype]
        if name in row_sparse:
            rows = np.flatnonzero(np.any(array.reshape(array.shape[0], -1) != 0, axis=1))
            stored = array[rows]
            parts.append(
                struct.pack("<Ii", V2, ROW_SPARSE) + _shape(stored.shape) + _shape(array.shape)
            )
            parts.append(struct.pack("<iii", 1, 0, code))
            parts.append(struct.pack("<i", DTYPE_CODES[np.dtype(np.int64)]) + _shape(rows.shape))
            parts.append(stored.astype(array.dtype).tobytes() + rows.astype("<i8").tobytes())
        else:
            parts.append(struct.pack("<Ii", V2, DENSE) + _shape(array.shape))
            if array.ndim:
                parts.append(
                    struct.pack("<iii", 1, 0, code)
                    + array.astype(array.dtype.newbyteorder("<")).tobytes()
                )
    parts.append(struct.pack("<Q", len(arrays) if named else 0))
    for name in arrays if named else ():
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)


def _shape(shape: tuple[int, ...]) -> bytes:
    return struct.pack("<i", len(shape)) + struct.pack(f"<{len(shape)}q", *shape)

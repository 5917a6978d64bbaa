"""RecordIO-protobuf (`application/x-recordio-protobuf`) for SageMaker built-in algorithms.

Byte-identical to the SageMaker Python SDK v2 writer (`write_spmatrix_to_sparse_tensor`,
`write_numpy_to_dense_tensor`), without protobuf and without a Python loop per row: protobuf
serialisation is deterministic, so each row's field lengths are computed with numpy, turned into
offsets by a cumulative sum, and every tag, varint and float is scattered into one buffer.

Record layout per row (field numbers from `aialgs.data.Record`):
    features{1}: entry{ key{1}="values", value{2}: Value{ <tensor>{2|3|7}: Tensor{
        values{1} packed, keys{2} packed uint64, shape{3} packed uint64 } } }
    label{2}:    same, with one value and no keys or shape.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from training.recordio_reader import MAGIC, payload_spans, read_dense, read_shards, read_sparse

__all__ = [
    "MAGIC",
    "encode_dense",
    "encode_sparse",
    "encode_sparse_parts",
    "payload_spans",
    "read_dense",
    "read_shards",
    "read_sparse",
    "varint_length",
    "write_shards",
]
PARALLEL_MIN_ROWS = 200_000
_KEY = b"\x0a\x06values"  # map entry key: field 1, length 6, "values"


@dataclass(frozen=True)
class _TensorType:
    value_field: int  # field number inside Value
    dtype: str  # little-endian element type, or "varint"


_TYPES = {
    "Float32": _TensorType(2, "<f4"),
    "Float64": _TensorType(3, "<f8"),
    "Int32": _TensorType(7, "varint"),
}


def _resolve_type(dtype: np.dtype) -> str:
    """The SDK's rule: numpy's default int -> Int32, default float -> Float64, float32."""
    if dtype == np.dtype(int):
        return "Int32"
    if dtype == np.dtype(float):
        return "Float64"
    if dtype == np.dtype("float32"):
        return "Float32"
    raise ValueError(
        f"unsupported dtype {dtype}: cast to float32 (Factorization Machines and KNN "
        "accept Float32 only)"
    )


# ---------------------------------------------------------------------------------------------
# varints


def varint_length(values: np.ndarray) -> np.ndarray:
    """Bytes needed for each value as a protobuf varint (values as uint64)."""
    v = np.asarray(values).astype(np.uint64, copy=False)
    length = np.ones(v.shape, dtype=np.int64)
    top = int(v.max(initial=0))
    for shift in range(7, 64, 7):
        if top < 1 << shift:
            break
        length += v >= (np.uint64(1) << np.uint64(shift))
    return length


def _scatter_varints(
    out: np.ndarray, offsets: np.ndarray, values: np.ndarray, lengths: np.ndarray
) -> None:
    v = np.asarray(values).astype(np.uint64, copy=False)
    longest = int(lengths.max(initial=0))
    if longest <= 1:  # the common case: every value below 128
        out[offsets] = v.astype(np.uint8)
        return
    for byte in range(longest):
        rows = lengths > byte
        chunk = (v[rows] >> np.uint64(7 * byte)) & np.uint64(0x7F)
        more = (lengths[rows] > byte + 1).astype(np.uint64) << np.uint64(7)
        out[offsets[rows] + byte] = (chunk | more).astype(np.uint8)


def _scatter_bytes(out: np.ndarray, offsets: np.ndarray, payload: np.ndarray) -> None:
    """payload: (n, width) uint8, written at out[offsets[i] : offsets[i] + width].

    One 1-D scatter per byte column is far cheaper than an (n, width) index array."""
    for column in range(payload.shape[1]):
        out[offsets + column] = payload[:, column]


def _scatter_constant(out: np.ndarray, offsets: np.ndarray, constant: bytes) -> None:
    for column, byte in enumerate(constant):
        out[offsets + column] = byte


# ---------------------------------------------------------------------------------------------
# encoder


@dataclass
class _Rows:
    """One tensor per row (a feature vector or a one-value label), as flat arrays."""

    kind: _TensorType
    values: np.ndarray  # all rows' values, concatenated
    counts: np.ndarray  # values per row
    keys: np.ndarray | None = None  # sparse: column index of each value
    n_columns: int | None = None  # sparse: the shape field


@dataclass
class _Layout:
    """Per-row byte lengths of one map field (features or label)."""

    values: np.ndarray
    keys: np.ndarray | None
    shape: np.ndarray | None
    tensor: np.ndarray
    value: np.ndarray
    entry: np.ndarray
    field: np.ndarray


def _element_lengths(rows: _Rows, elements: np.ndarray, varint: bool) -> np.ndarray:
    if varint:
        return varint_length(_as_uint64(elements))
    return np.full(len(elements), np.dtype(rows.kind.dtype).itemsize, dtype=np.int64)


def _as_uint64(values: np.ndarray) -> np.ndarray:
    """Protobuf encodes negative int32 as the 10-byte varint of its 64-bit two's complement."""
    return np.asarray(values).astype(np.int64).view(np.uint64)


def _per_row_sum(per_value: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if len(counts) and counts[0] > 0 and (counts == counts[0]).all():  # e.g. one-hot rows
        return per_value.reshape(len(counts), int(counts[0])).sum(axis=1)
    bounds = np.concatenate([[0], np.cumsum(per_value)])
    ends = np.cumsum(counts)
    return bounds[ends] - bounds[ends - counts]


def _with_header(payload: np.ndarray) -> np.ndarray:
    """Tag + length varint + payload."""
    return 1 + varint_length(payload) + payload


def _layout(rows: _Rows) -> _Layout:
    is_varint = rows.kind.dtype == "varint"
    values = _per_row_sum(_element_lengths(rows, rows.values, is_varint), rows.counts)
    # proto2 packed fields with no elements are omitted entirely
    tensor = np.where(values > 0, _with_header(values), 0)
    keys = shape = None
    if rows.keys is not None:
        keys = _per_row_sum(varint_length(rows.keys), rows.counts)
        shape = np.full(len(rows.counts), int(varint_length(np.array([rows.n_columns]))[0]))
        tensor = tensor + np.where(keys > 0, _with_header(keys), 0) + _with_header(shape)
    value = _with_header(tensor)
    entry = len(_KEY) + _with_header(value)
    return _Layout(values, keys, shape, tensor, value, entry, _with_header(entry))


def _write_packed(
    out: np.ndarray,
    at: np.ndarray,
    tag: int,
    payload_len: np.ndarray,
    elements: np.ndarray,
    counts: np.ndarray,
    element_dtype: str,
) -> np.ndarray:
    """One packed field per row at `at` (omitted where empty); returns the offsets past it."""
    present = payload_len > 0
    starts = _tag_and_length(out, at[present], tag, payload_len[present])
    start = at.copy()
    start[present] = starts
    if element_dtype == "varint":
        encoded = _as_uint64(elements)
        element_len = varint_length(encoded)
    else:
        element_len = np.full(len(elements), np.dtype(element_dtype).itemsize, dtype=np.int64)
    flat_start = np.cumsum(element_len) - element_len
    first_of_row = np.repeat(np.cumsum(counts) - counts, counts)
    element_at = np.repeat(start, counts) + flat_start - flat_start[first_of_row]
    if element_dtype == "varint":
        _scatter_varints(out, element_at, encoded, element_len)
    else:
        raw = np.ascontiguousarray(elements, dtype=element_dtype).view(np.uint8)
        _scatter_bytes(out, element_at, raw.reshape(len(elements), -1))
    return np.where(present, start + payload_len, at)


def _tag_and_length(out: np.ndarray, at: np.ndarray, tag: int, length: np.ndarray) -> np.ndarray:
    out[at] = tag
    lens = varint_length(length)
    _scatter_varints(out, at + 1, length, lens)
    return at + 1 + lens


def _write_map_field(
    out: np.ndarray, at: np.ndarray, tag: int, rows: _Rows, lay: _Layout
) -> np.ndarray:
    n = len(at)
    at = _tag_and_length(out, at, tag, lay.entry)
    _scatter_constant(out, at, _KEY)
    at = _tag_and_length(out, at + len(_KEY), 0x12, lay.value)  # entry.value: Value
    at = _tag_and_length(out, at, (rows.kind.value_field << 3) | 2, lay.tensor)
    at = _write_packed(out, at, 0x0A, lay.values, rows.values, rows.counts, rows.kind.dtype)
    if rows.keys is not None:
        at = _write_packed(out, at, 0x12, lay.keys, rows.keys, rows.counts, "varint")
        shape = np.full(n, rows.n_columns, dtype=np.int64)
        at = _write_packed(out, at, 0x1A, lay.shape, shape, np.ones(n, np.int64), "varint")
    return at


def _encode(features: _Rows, labels: _Rows | None) -> bytes:
    return b"".join(_encode_parts(features, labels))


def _encode_parts(features: _Rows, labels: _Rows | None) -> list:
    """The records as one or two buffers, back to back. Records are independent, so halves
    encode in parallel (numpy releases the GIL)."""
    n = len(features.counts)
    if n < PARALLEL_MIN_ROWS:
        return [_encode_rows(features, labels)]
    half = n // 2
    parts = [_slice(features, 0, half), _slice(features, half, n)]
    label_parts = (
        [None, None] if labels is None else [_slice(labels, 0, half), _slice(labels, half, n)]
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(_encode_rows, parts, label_parts))


def _slice(rows: _Rows, start: int, stop: int) -> _Rows:
    first = int(rows.counts[:start].sum())
    last = first + int(rows.counts[start:stop].sum())
    keys = None if rows.keys is None else rows.keys[first:last]
    return _Rows(rows.kind, rows.values[first:last], rows.counts[start:stop], keys, rows.n_columns)


def _encode_rows(features: _Rows, labels: _Rows | None) -> bytes | np.ndarray:
    by_class = _encode_by_class(features, labels) if MAX_CLASSES else None
    return _encode_rows_generic(features, labels) if by_class is None else by_class


def _encode_rows_generic(features: _Rows, labels: _Rows | None) -> bytes:
    feature_layout = _layout(features)
    record_len = feature_layout.field.copy()
    label_layout = None
    if labels is not None:
        label_layout = _layout(labels)
        record_len += label_layout.field
    if record_len.max(initial=0) >= 1 << 29:
        raise ValueError("a record of 2^29 bytes or more cannot be framed in RecordIO")
    if _slots_fit(features, labels, feature_layout, label_layout, record_len):
        return _encode_in_slots(features, labels, feature_layout, label_layout, record_len)
    framed = 8 + ((record_len + 3) & ~3)  # zero padding to a multiple of 4
    starts = np.cumsum(framed) - framed
    out = np.zeros(int(framed.sum()), dtype=np.uint8)
    words = out.view("<u4")  # every record starts 4-byte aligned
    words[starts // 4] = MAGIC
    words[starts // 4 + 1] = record_len
    at = _write_map_field(out, starts + 8, 0x0A, features, feature_layout)
    if labels is not None:
        _write_map_field(out, at, 0x12, labels, label_layout)
    return out.tobytes()


# ---------------------------------------------------------------------------------------------
# encoder, rows of similar length: a byte matrix of slots
#
# Each record is laid out in one row of a byte matrix: every protobuf piece (a tag, a length
# varint, the packed values, each key) has a column slot as wide as its widest instance, the
# bytes written column by column for all records at once, and a mask keeps each record's real
# bytes; reading the matrix row by row through the mask gives the records back to back. Far
# fewer numpy calls per byte than scattering, when the rows hold few and similar values (FM's
# one-hot rows, KNN's dense vectors); other matrices take the scatter path above.

SLOT_BLOCK_ROWS = 65_536  # records laid out per step: bounds the matrix
SLOT_WASTE = 2.0  # the matrix may be at most this much wider than the mean record


class _Slots:
    """Columns of one block of records: (bytes, keep mask or None for all) per slot."""

    def __init__(self, n: int):
        self.n, self.data, self.keep = n, [], []

    def constant(self, data: bytes) -> None:
        self.data.append(np.broadcast_to(np.frombuffer(data, np.uint8), (self.n, len(data))))
        self.keep.append(None)

    def varints(self, values: np.ndarray, present: np.ndarray | None = None) -> None:
        """One varint per row (absent where present is False)."""
        self.elements(values.reshape(-1, 1), None if present is None else present[:, None])

    def elements(self, values: np.ndarray, present: np.ndarray | None) -> None:
        """(n, k) varints per row, each in a slot of the widest one's width."""
        values = _as_uint64(values)
        width = varint_length(values)
        slot = int(width.max(initial=1))
        data = np.empty((*values.shape, slot), np.uint8)
        for byte in range(slot):
            more = (width > byte + 1).astype(np.uint8) << 7
            data[..., byte] = ((values >> np.uint64(7 * byte)) & np.uint64(0x7F)).astype(
                np.uint8
            ) | more
        keep = np.arange(slot) < width[..., None]
        if present is not None:
            keep &= present[..., None]
        self.data.append(data.reshape(self.n, -1))
        self.keep.append(keep.reshape(self.n, -1))

    def raw(self, data: np.ndarray, keep: np.ndarray | None) -> None:
        self.data.append(data)
        self.keep.append(keep)

    def tag(self, tag: int, present: np.ndarray) -> None:
        self.raw(np.full((self.n, 1), tag, np.uint8), present[:, None])

    def records(self) -> np.ndarray:
        """The records back to back: the matrix row by row, through the mask."""
        matrix = np.concatenate(self.data, axis=1)
        keep = np.ones(matrix.shape, bool)
        at = 0
        for data, mask in zip(self.data, self.keep, strict=True):
            if mask is not None:
                keep[:, at : at + data.shape[1]] = mask
            at += data.shape[1]
        return matrix[keep]


def _slots_fit(features, labels, feature_layout, label_layout, record_len) -> bool:
    """Worth it when no record is much longer than the mean (the matrix is as wide as the
    longest possible record)."""
    if not len(record_len):
        return False
    kind = features.kind.dtype
    per_value = 10 if kind == "varint" else np.dtype(kind).itemsize
    per_value += 10 * (features.keys is not None)  # a key varint's widest slot
    widest = 64 + int(features.counts.max(initial=0)) * per_value
    return widest <= SLOT_WASTE * float(record_len.mean()) + 64


def _padded(values: np.ndarray, counts: np.ndarray, dtype) -> np.ndarray:
    """(rows, most values in a row): each row's values left-aligned, zeros after."""
    kmax = int(counts.max(initial=0))
    out = np.zeros((len(counts), kmax), dtype)
    if kmax and len(values):
        if (counts == kmax).all():
            return np.asarray(values, dtype).reshape(len(counts), kmax)
        row = np.repeat(np.arange(len(counts)), counts)
        position = np.arange(len(values)) - np.repeat(np.cumsum(counts) - counts, counts)
        out[row, position] = values
    return out


def _map_field_slots(slots: _Slots, tag: int, rows: _Rows, lay: _Layout) -> None:
    """The same bytes as _write_map_field, as slots."""
    slots.constant(bytes([tag]))
    slots.varints(lay.entry)
    slots.constant(_KEY + b"\x12")
    slots.varints(lay.value)
    slots.constant(bytes([(rows.kind.value_field << 3) | 2]))
    slots.varints(lay.tensor)
    present = lay.values > 0  # proto2 omits empty packed fields
    slots.tag(0x0A, present)
    slots.varints(lay.values, present)
    if rows.kind.dtype == "varint":  # Int32Tensor values: varints, like keys
        values = _padded(rows.values, rows.counts, np.int64)
        slots.elements(values, np.arange(values.shape[1]) < rows.counts[:, None])
    else:
        element = np.dtype(rows.kind.dtype)
        values = _padded(rows.values, rows.counts, element)
        value_bytes = values.view(np.uint8).reshape(slots.n, -1)
        slot_value = np.arange(value_bytes.shape[1]) // element.itemsize
        slots.raw(value_bytes, slot_value < rows.counts[:, None])
    if rows.keys is not None:
        has_keys = lay.keys > 0
        slots.tag(0x12, has_keys)
        slots.varints(lay.keys, has_keys)
        keys = _padded(rows.keys, rows.counts, np.uint64)
        slots.elements(keys, np.arange(keys.shape[1]) < rows.counts[:, None])
        shape = varint_length(np.array([rows.n_columns]))[0]
        slots.constant(b"\x1a" + bytes([shape]))
        slots.varints(np.full(slots.n, rows.n_columns, np.int64))


def _encode_in_slots(features, labels, feature_layout, label_layout, record_len) -> bytes:
    parts = []
    for start in range(0, len(record_len), SLOT_BLOCK_ROWS):
        stop = min(start + SLOT_BLOCK_ROWS, len(record_len))
        slots = _Slots(stop - start)
        length = record_len[start:stop]
        slots.constant(np.array([MAGIC], "<u4").tobytes())
        slots.raw(length.astype("<u4").view(np.uint8).reshape(-1, 4), None)
        _map_field_slots(
            slots, 0x0A, _slice(features, start, stop), _layout_slice(feature_layout, start, stop)
        )
        if labels is not None:
            _map_field_slots(
                slots, 0x12, _slice(labels, start, stop), _layout_slice(label_layout, start, stop)
            )
        padding = (-length) % 4
        slots.raw(np.zeros((slots.n, 3), np.uint8), np.arange(3) < padding[:, None])
        parts.append(slots.records())
    return b"".join(part.tobytes() for part in parts)


def _layout_slice(layout: _Layout, start: int, stop: int) -> _Layout:
    return _Layout(*(None if a is None else a[start:stop] for a in vars(layout).values()))


# ---------------------------------------------------------------------------------------------
# encoder, records of a few shapes: templates
#
# Rows with the same number of values and the same key varint widths have the same bytes except
# for the values, keys and label: one layout, one template. FM's one-hot rows come in a handful
# of such classes (2 or 3 values; a user id below 128 takes one key byte). Each class's records
# are written from its template, 4-byte word by word (records start 4-byte aligned), then the
# value, key and label bytes over it: one scatter per word or byte of a record, nothing per
# padding byte, no mask.

MAX_CLASSES = 64  # more shapes than this: the slot or scatter encoder
_MAX_CLASS_VALUES = 8  # rows with more values than this: likewise


def _encode_by_class(features: _Rows, labels: _Rows | None) -> np.ndarray | None:
    """The records, or None where this encoder does not apply (varint values or labels, long
    or many-shaped rows)."""
    n = len(features.counts)
    kmax = int(features.counts.max(initial=0))
    if (
        not n
        or features.keys is None
        or features.kind.dtype == "varint"
        or (labels is not None and labels.kind.dtype == "varint")
        or kmax > _MAX_CLASS_VALUES
    ):
        return None
    key_widths = _padded(varint_length(features.keys), features.counts, np.int64)
    signature = features.counts.astype(np.int64)
    for column in range(kmax):  # widths are 1..10: base 11
        signature = signature * 11 + key_widths[:, column]
    ordered = np.sort(signature)  # np.unique's hashing is far slower on a million int64
    classes = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    if len(classes) > MAX_CLASSES:
        return None
    which = np.searchsorted(classes, signature)
    rows_of = [np.flatnonzero(which == c) for c in range(len(classes))]
    templates = [_encode_rows_by_slots_or_scatter(features, labels, int(r[0])) for r in rows_of]
    lengths = np.array([len(t) for t in templates], np.int64)[which]
    starts = np.cumsum(lengths) - lengths
    out = np.empty(int(lengths.sum()), np.uint8)
    first_value = np.cumsum(features.counts) - features.counts
    for template, rows in zip(templates, rows_of, strict=True):
        _write_class(out, starts[rows], template, features, labels, rows, first_value[rows])
    return out


def _encode_rows_by_slots_or_scatter(features: _Rows, labels: _Rows | None, row: int) -> bytes:
    one = _slice(features, row, row + 1)
    return _encode_rows_generic(one, None if labels is None else _slice(labels, row, row + 1))


def _write_class(out, starts, template, features, labels, rows, first_value) -> None:
    """Records `rows` (all of the template's class) at `starts`, a block of them at a time:
    the template repeated as a (records x words) matrix, their own value, key and label bytes
    copied over it as column blocks, the rows then scattered word by word into place."""
    layout = _layout(_slice(features, int(rows[0]), int(rows[0]) + 1))
    value_at, key_at = _value_and_key_offsets(layout)
    label_at = None
    if labels is not None:
        label_at = 8 + int(layout.field[0]) + _label_value_offset(_layout(_slice(labels, 0, 1)))
    count = int(features.counts[rows[0]])
    template_words = np.frombuffer(template, "<u4")
    word_offsets = np.arange(len(template_words))
    words = out.view("<u4")
    for block in range(0, len(rows), SLOT_BLOCK_ROWS):
        part = slice(block, block + SLOT_BLOCK_ROWS)
        matrix = np.tile(template_words, (len(rows[part]), 1))
        as_bytes = matrix.view(np.uint8)
        values = _class_values(features, first_value[part], count)
        as_bytes[:, value_at : value_at + values.shape[1]] = values
        keys = _class_keys(features, first_value[part], count)
        as_bytes[:, key_at : key_at + keys.shape[1]] = keys
        if labels is not None:
            label = np.ascontiguousarray(labels.values[rows[part]], labels.kind.dtype)
            label = label.view(np.uint8).reshape(len(label), -1)
            as_bytes[:, label_at : label_at + label.shape[1]] = label
        words[starts[part, None] // 4 + word_offsets] = matrix


def _class_values(features: _Rows, first_value: np.ndarray, count: int) -> np.ndarray:
    """(records, count * itemsize) bytes: each record's values (all records of one class)."""
    positions = first_value[:, None] + np.arange(count)
    values = np.ascontiguousarray(features.values[positions], features.kind.dtype)
    return values.view(np.uint8).reshape(len(first_value), -1)


def _class_keys(features: _Rows, first_value: np.ndarray, count: int) -> np.ndarray:
    """(records, key bytes): each record's keys as varints, the widths shared by the class."""
    keys = _as_uint64(features.keys[first_value[:, None] + np.arange(count)])
    widths = varint_length(keys[0]) if len(keys) else np.zeros(count, np.int64)
    columns = []
    for i, width in enumerate(widths):
        for b in range(int(width)):
            more = np.uint8(0x80 if b < width - 1 else 0)
            byte = (keys[:, i] >> np.uint64(7 * b)) & np.uint64(0x7F)
            columns.append(byte.astype(np.uint8) | more)
    if not columns:
        return np.zeros((len(first_value), 0), np.uint8)
    return np.stack(columns, axis=1)


def _value_and_key_offsets(layout: _Layout) -> tuple[int, int]:
    """Where a record's first value byte and first key byte are, from its start (the RecordIO
    frame included): the features field's tags and lengths before them."""
    at = 8 + _label_value_offset(layout)
    key_at = at + int(layout.values[0])
    if layout.keys is not None and layout.keys[0] > 0:
        key_at += 1 + int(varint_length(layout.keys[:1])[0])
    return at, key_at


def _label_value_offset(layout: _Layout) -> int:
    """Bytes of a map field before its first value: tag, entry length, key, value tag, value
    length, tensor tag, tensor length, values tag, values length."""
    lengths = (layout.entry, layout.value, layout.tensor, layout.values)
    return 1 + len(_KEY) + 1 + 1 + 1 + sum(int(varint_length(x[:1])[0]) for x in lengths)


# ---------------------------------------------------------------------------------------------
# public API


def encode_sparse(matrix: sp.spmatrix | sp.sparray, labels: np.ndarray | None = None) -> bytes:
    """One record per row: values, keys (column indices) and shape = [n_columns]."""
    return b"".join(encode_sparse_parts(matrix, labels))


def encode_sparse_parts(matrix: sp.spmatrix | sp.sparray, labels: np.ndarray | None = None) -> list:
    """encode_sparse's records as buffers to write back to back, without joining them into
    one bytes object first (a copy of every byte)."""
    if not sp.issparse(matrix):
        raise TypeError("encode_sparse needs a scipy sparse matrix; use encode_dense for arrays")
    csr = sp.csr_matrix(matrix)
    csr.sort_indices()
    labels = _check_labels(labels, csr.shape[0])
    kind = _TYPES[_resolve_type(csr.dtype)]
    counts = np.diff(csr.indptr).astype(np.int64)
    rows = _Rows(kind, csr.data, counts, csr.indices.astype(np.uint64), csr.shape[1])
    return _encode_parts(rows, labels)


def encode_dense(array: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """One record per row: values only."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"encode_dense needs a 2-D array, got shape {array.shape}")
    labels = _check_labels(labels, array.shape[0])
    kind = _TYPES[_resolve_type(array.dtype)]
    counts = np.full(array.shape[0], array.shape[1], dtype=np.int64)
    return _encode(_Rows(kind, array.reshape(-1), counts), labels)


def _check_labels(labels: np.ndarray | None, n_rows: int) -> _Rows | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(f"labels must be a vector of {n_rows} values, got shape {labels.shape}")
    kind = _TYPES[_resolve_type(labels.dtype)]
    return _Rows(kind, labels, np.ones(n_rows, dtype=np.int64))


def write_shards(
    directory: Path,
    stem: str,
    matrix: sp.spmatrix | np.ndarray,
    labels: np.ndarray | None = None,
    *,
    records_per_shard: int = 1_000_000,
) -> list[Path]:
    """Split rows into files of at most records_per_shard records (ShardedByS3Key channels)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = matrix.shape[0]
    paths = []
    for shard, start in enumerate(range(0, max(n, 1), records_per_shard)):
        stop = min(start + records_per_shard, n)
        part_labels = None if labels is None else labels[start:stop]
        part = matrix[start:stop]
        body = (
            encode_sparse(part, part_labels)
            if sp.issparse(part)
            else encode_dense(part, part_labels)
        )
        path = directory / f"{stem}-{shard:05d}.recordio"
        path.write_bytes(body)
        paths.append(path)
    return paths

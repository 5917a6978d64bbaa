"""RecordIO-protobuf back into a CSR matrix and labels, with numpy and no Python loop per record.

Every record is parsed at once, one protobuf nesting level at a time (Record -> map entry ->
Value -> Tensor): the i-th field of every message at a level is decoded in one numpy step, so
Python loops run per level and per field position, never per record. When every message has the
same tag at a position (always, in the SDK's records) that tag is one number, not an array.
Packed values are gathered straight from the buffer (fixed width) or split at their terminator
bytes (varints).

What protobuf allows beyond the SDK's layout is read as protobuf reads it: fields in any order,
unknown fields skipped, repeated fields (packed or not) concatenated, the last map entry and the
last member of a oneof win. Split records (the continuation flag) and `bytes` values are refused.

No job reads RecordIO (the local account's FM and KNN do, and the tests): it stays beside the
writer in training/recordio.py because one format is kept in one place and tested as a round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

MAGIC = 0xCED7230A
LENGTH_BITS = (1 << 29) - 1  # the top 3 bits of the length word flag the parts of a split record
READ_CHUNK_RECORDS = 65_536  # records parsed per step: the temporaries stay in the CPU's cache

_TENSOR_DTYPES = {2: np.dtype("<f4"), 3: np.dtype("<f8"), 7: np.dtype(np.int32)}  # Value fields
_UNPACKED_WIRE = {2: 5, 3: 1, 7: 0}  # a non-packed element: fixed32, fixed64, varint
_LENGTH, _VARINT, _BAD = -2, -3, -1
# Payload size by wire type: fixed64 and fixed32 carry theirs; groups and 6, 7 are not protobuf 3
_WIRE_SIZE = np.array([_VARINT, 8, _LENGTH, _BAD, _BAD, 4, _BAD, _BAD], np.int64)


class _Fields(NamedTuple):
    """One field in each of many messages: its owner (a record; ascending), tag and payload."""

    owner: np.ndarray
    number: int | np.ndarray  # an int when every owner's field has the same tag
    wire: int | np.ndarray
    start: np.ndarray  # after the tag, and after the length when length-delimited
    end: np.ndarray

    def where(self, chosen: np.ndarray) -> _Fields:
        return _Fields(*(c if isinstance(c, int) else c[chosen] for c in self))

    def numbers(self) -> np.ndarray:
        return np.broadcast_to(self.number, self.owner.shape)

    def require_wire(self, allowed: tuple[int, ...], what: str) -> None:
        wire = self.wire
        ok = wire in allowed if isinstance(wire, int) else np.isin(wire, allowed).all()
        if not ok:
            raise ValueError(f"malformed Record: {what} has the wrong wire type")


_NO_FIELDS = _Fields(np.zeros(0, np.int64), 0, 2, np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass
class _Tensors:
    """Decoded tensors of n records; arrays of length n are indexed by record."""

    values: np.ndarray  # every record's values, record after record
    counts: np.ndarray  # (n,)
    keys: np.ndarray  # the keys of the records that have a keys field, record after record
    has_keys: np.ndarray  # (n,) bool
    key_counts: np.ndarray  # (n,)
    width: np.ndarray  # (n,) shape[0], or -1 without a shape


@dataclass
class _Rows:
    data: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    width: np.ndarray  # columns each record needs
    labels: np.ndarray | None


def read_sparse(source: bytes | Path) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Records back into a CSR matrix (sparse or dense records) and the label vector.

    The matrix is as wide as the widest record (its shape, or its number of values when dense);
    labels are each record's first label value, None when the records carry no label.
    """
    buf = _as_buffer(source)
    starts, lengths = payload_spans(buf)
    if not len(starts):
        return sp.csr_matrix((0, 0), dtype=np.float32), None
    try:
        parts = [
            _read_rows(buf, starts[i : i + READ_CHUNK_RECORDS], lengths[i : i + READ_CHUNK_RECORDS])
            for i in range(0, len(starts), READ_CHUNK_RECORDS)
        ]
    except IndexError:  # a length or tag read past the end of the data
        raise ValueError("truncated protobuf: a field runs past the end of the data") from None
    if len({p.labels is None for p in parts}) > 1:
        raise ValueError("some records have a label and others do not")
    n_columns = int(max(p.width.max() for p in parts))
    indices = np.concatenate([p.indices for p in parts])
    if len(indices) and (indices.max() >= n_columns or indices.min() < 0):
        raise ValueError(f"a key lies outside the records' {n_columns} columns")
    counts = np.concatenate([p.counts for p in parts])
    index_dtype = np.int32 if max(n_columns, int(counts.sum())) < 2**31 else np.int64
    indptr = np.zeros(len(counts) + 1, index_dtype)
    np.cumsum(counts, out=indptr[1:])
    data = np.concatenate([p.data for p in parts])
    matrix = sp.csr_matrix(
        (data, indices.astype(index_dtype, copy=False), indptr), shape=(len(counts), n_columns)
    )
    labels = None
    if parts[0].labels is not None:
        labels = np.concatenate([p.labels for p in parts]).astype(parts[0].labels.dtype)
    return matrix, labels


def read_shards(sources: Iterable[bytes | Path]) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """Several RecordIO objects (a channel's shards) as one matrix, read one at a time so that
    no joined copy of all the bytes is ever held."""
    parts = [read_sparse(source) for source in sources]
    if not parts:
        return read_sparse(b"")
    if len({labels is None for _, labels in parts}) > 1:
        raise ValueError("some shards have labels and others do not")
    width = max(matrix.shape[1] for matrix, _ in parts)
    matrix = sp.vstack([m if m.shape[1] == width else _widen(m, width) for m, _ in parts], "csr")
    labels = None if parts[0][1] is None else np.concatenate([y for _, y in parts])
    return matrix, labels


def _widen(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), (matrix.shape[0], width))


def read_dense(source: bytes | Path) -> tuple[np.ndarray, np.ndarray | None]:
    matrix, labels = read_sparse(source)
    return matrix.toarray(), labels


def _as_buffer(source: bytes | bytearray | memoryview | np.ndarray | Path) -> np.ndarray:
    if isinstance(source, Path):
        source = source.read_bytes()
    return np.frombuffer(source, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# framing


def payload_spans(source: bytes | np.ndarray | Path) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each record's payload, found without a loop per record.

    Candidates are the 4-byte-aligned magic words; a payload may hold the magic too, so the
    records are the chain of lengths from byte 0. When every candidate's length leads to the
    next candidate (always, unless a payload holds the magic) the chain is all of them.
    """
    buf = _as_buffer(source)
    if len(buf) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(buf) % 4 == 0:
        words = buf.view("<u4")
    else:  # the last record's padding is missing; read it as if it were there
        words = np.zeros(len(buf) // 4 + 1, "<u4")
        words.view(np.uint8)[: len(buf)] = buf
    n_words = len(words)
    candidates = np.flatnonzero(words == MAGIC)
    if not len(candidates) or candidates[0] != 0:
        raise ValueError(f"not RecordIO: bad magic {int(words[0]):#x} at byte 0")
    header = words[np.minimum(candidates + 1, n_words - 1)].astype(np.int64)
    header[candidates + 1 >= n_words] = -1  # a magic word at the very end has no length word
    lengths = header & LENGTH_BITS
    following = np.where(header < 0, n_words + 1, candidates + 2 + (lengths + 3) // 4)
    if not ((following[:-1] == candidates[1:]).all() and following[-1] == n_words):
        chain = _follow_chain(candidates, following, n_words, words)
        candidates, lengths, header = candidates[chain], lengths[chain], header[chain]
    split = np.flatnonzero(header >> 29)
    if len(split):
        at = int(candidates[split[0]]) * 4
        raise ValueError(f"the record at byte {at} is split in parts; only whole records are read")
    starts = candidates * 4 + 8
    if starts[-1] + lengths[-1] > len(buf):
        raise ValueError(f"truncated RecordIO: the record at byte {starts[-1] - 8} is cut short")
    return starts, lengths


def _follow_chain(
    candidates: np.ndarray, following: np.ndarray, n_words: int, words: np.ndarray
) -> np.ndarray:
    """The slow path, for payloads that hold the magic: walk the lengths from byte 0."""
    successor = np.searchsorted(candidates, following).clip(max=len(candidates) - 1)
    linked = (candidates[successor] == following).tolist()
    successor_list, following_list = successor.tolist(), following.tolist()
    chain, i = [0], 0
    while following_list[i] != n_words:
        if not linked[i]:
            at = following_list[i]
            if at >= n_words:
                raise ValueError(
                    f"truncated RecordIO: the record at byte {candidates[i] * 4} is cut short"
                )
            raise ValueError(f"not RecordIO: bad magic {int(words[at]):#x} at byte {at * 4}")
        i = successor_list[i]
        chain.append(i)
    return np.array(chain)


# ---------------------------------------------------------------------------------------------
# protobuf, many messages at once


def _varints_at(buf: np.ndarray, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The varint starting at each position and the position after it.

    One byte each (the common case) comes back as uint8; longer ones as int64 (wrapping above
    2^63, which callers that need a size refuse). A first byte past the buffer raises IndexError.
    """
    byte = buf[pos]
    if byte.max(initial=0) < 0x80:
        return byte, pos + 1
    value = (byte & 0x7F).astype(np.int64)
    width = np.ones(len(pos), np.int64)
    more = np.flatnonzero(byte & 0x80)
    for shift in range(7, 70, 7):
        if not len(more):
            return value, pos + width
        at = pos[more] + width[more]
        if (at >= end[more]).any():
            raise ValueError("truncated protobuf: a varint runs past its message")
        byte = buf[at]
        value[more] |= (byte & 0x7F).astype(np.int64) << shift
        width[more] += 1
        more = more[(byte & 0x80) != 0]
    raise ValueError("malformed protobuf: a varint longer than 10 bytes")


def _walk(buf: np.ndarray, messages: _Fields) -> list[_Fields]:
    """Every field of many messages: the first field of each, then the second, and so on."""
    levels = []
    live = messages.start < messages.end
    owner, pos, end = messages.owner[live], messages.start[live], messages.end[live]
    while len(owner):
        byte = buf[pos]
        if byte.max() < 0x80:  # tags of fields 1-15
            pos = pos + 1
            key = int(byte[0]) if byte.min() == byte.max() else byte.astype(np.int64)
        else:
            key, pos = _varints_at(buf, pos, end)
            key = int(key[0]) if key.min() == key.max() else key
        wire, number = key & 7, key >> 3
        size, pos = _payload_sizes(buf, wire, pos, end)
        stop = pos + size
        room = end - stop
        if room.min() < 0:
            raise ValueError("truncated protobuf: a field runs past its message")
        levels.append(_Fields(owner, number, wire, pos, stop))
        more = room > 0
        if more.all():
            pos = stop
        else:
            owner, pos, end = owner[more], stop[more], end[more]
    return levels


def _payload_sizes(
    buf: np.ndarray, wire: int | np.ndarray, pos: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray | int, np.ndarray]:
    """Each field's payload size, and where its payload starts (after a length, if any)."""
    size = _WIRE_SIZE[wire]
    if isinstance(wire, int):
        if size == _LENGTH:
            return _lengths_at(buf, pos, end)
        if size == _VARINT:
            return _varints_at(buf, pos, end)[1] - pos, pos
        if size == _BAD:
            raise ValueError(f"unexpected wire type {wire} in a Record")
        return int(size), pos
    if size.min() == _BAD:
        raise ValueError(f"unexpected wire type {int(wire[size == _BAD][0])} in a Record")
    size, pos = size.copy(), pos.copy()
    delimited = np.flatnonzero(size == _LENGTH)
    if len(delimited):
        size[delimited], pos[delimited] = _lengths_at(buf, pos[delimited], end[delimited])
    varint = np.flatnonzero(size == _VARINT)
    if len(varint):
        size[varint] = _varints_at(buf, pos[varint], end[varint])[1] - pos[varint]
    return size, pos


def _lengths_at(buf: np.ndarray, pos: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length, after = _varints_at(buf, pos, end)
    if length.dtype != np.uint8 and length.min() < 0:
        raise ValueError("malformed protobuf: a length beyond 2^63")
    return length, after


def _select(levels: list[_Fields], numbers: tuple[int, ...], *, last: bool) -> _Fields:
    """The fields with one of these numbers, owners ascending, in document order per owner.

    last: keep only each owner's last one (a singular field, a map entry, a oneof member)."""
    parts = []
    for fields in levels:
        if isinstance(fields.number, int):
            if fields.number in numbers:
                parts.append(fields)
        else:
            chosen = np.isin(fields.number, numbers)
            if chosen.any():
                parts.append(fields.where(chosen))
    if len(parts) <= 1:
        return parts[0] if parts else _NO_FIELDS
    joined = [
        np.concatenate([np.broadcast_to(p[i], p.owner.shape) for p in parts]) for i in range(5)
    ]
    order = np.argsort(joined[0], kind="stable")  # ascending runs: a merge, document order kept
    fields = _Fields(*(column[order] for column in joined))
    if last:
        final = np.ones(len(order), bool)
        final[:-1] = fields.owner[1:] != fields.owner[:-1]
        fields = fields.where(final)
    return fields


def _ranges(start: np.ndarray, counts: np.ndarray, step: int = 1) -> np.ndarray:
    """start[i] + step * arange(counts[i]), concatenated."""
    if len(counts) and counts.min() == counts.max():  # e.g. every record has two values
        return (start[:, None] + np.arange(int(counts[0])) * step).ravel()
    first = np.cumsum(counts) - counts
    return np.repeat(start - first * step, counts) + np.arange(int(counts.sum())) * step


def _per_record(owner: np.ndarray, per_segment: np.ndarray, n: int) -> np.ndarray:
    """Sum per record of a per-segment count."""
    if len(owner) == n and (n == 0 or (owner[1:] != owner[:-1]).all()):  # one for every record
        return per_segment.astype(np.int64, copy=False)
    return np.bincount(owner, weights=per_segment, minlength=n).astype(np.int64)


def _fixed_elements(
    buf: np.ndarray, segments: _Fields, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width elements of the segments, and how many each segment holds."""
    nbytes = segments.end - segments.start
    if (nbytes % dtype.itemsize).any():
        raise ValueError(f"malformed tensor: {dtype} values of a partial width")
    counts = nbytes // dtype.itemsize
    if len(buf) < dtype.itemsize:
        return np.zeros(0, dtype), counts
    # every byte offset as the start of an element: unaligned values gathered in one step
    unaligned = np.ndarray((len(buf) - dtype.itemsize + 1,), dtype, buffer=buf, strides=(1,))
    return unaligned[_ranges(segments.start, counts, dtype.itemsize)], counts


def _varint_elements(buf: np.ndarray, segments: _Fields) -> tuple[np.ndarray, np.ndarray]:
    """Varints of the segments (as uint64), and how many each segment holds."""
    nbytes = segments.end - segments.start
    stream = buf[_ranges(segments.start, nbytes)]
    last = stream < 0x80
    segment_end = np.cumsum(nbytes)
    if not last[segment_end[nbytes > 0] - 1].all():
        raise ValueError("truncated protobuf: a packed varint runs past its field")
    ends = np.flatnonzero(last)
    begins = np.zeros_like(ends)
    begins[1:] = ends[:-1] + 1
    width = ends - begins + 1
    values = (stream[begins] & 0x7F).astype(np.uint64)
    widest = int(width.max(initial=0))
    if widest > 10:
        raise ValueError("malformed protobuf: a varint longer than 10 bytes")
    for byte in range(1, widest):
        longer = np.flatnonzero(width > byte)
        more = (stream[begins[longer] + byte] & 0x7F).astype(np.uint64)
        values[longer] |= more << np.uint64(7 * byte)
    terminators = np.zeros(len(stream) + 1, np.int64)
    np.cumsum(last, out=terminators[1:])
    return values, terminators[segment_end] - terminators[segment_end - nbytes]


# ---------------------------------------------------------------------------------------------
# Record -> rows


def _read_rows(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> _Rows:
    n = len(starts)
    records = _walk(buf, _Fields(np.arange(n), 1, 2, starts, starts + lengths))
    features = _decode(buf, _tensors(buf, records, 1), n, with_keys=True)
    counts, keyed = features.counts, features.has_keys
    if (features.key_counts[keyed] != counts[keyed]).any():
        raise ValueError("malformed Record: a sparse row has more or fewer keys than values")
    if keyed.all():
        indices = features.keys.astype(np.int64)
    else:  # dense rows: column = position
        row_start = np.cumsum(counts) - counts
        indices = np.arange(int(counts.sum())) - np.repeat(row_start, counts)
        indices[_ranges(row_start[keyed], counts[keyed])] = features.keys.astype(np.int64)
    width = np.where(features.width >= 0, features.width, counts)
    return _Rows(features.values, indices, counts, width, _labels(buf, records, n))


def _labels(buf: np.ndarray, records: list[_Fields], n: int) -> np.ndarray | None:
    tensor = _tensors(buf, records, 2)
    if not len(tensor.owner):
        return None
    if len(tensor.owner) != n:
        raise ValueError("some records have a label and others do not")
    label = _decode(buf, tensor, n, with_keys=False)
    if (label.counts == 0).any():
        raise ValueError("a record has an empty label")
    first = np.cumsum(label.counts) - label.counts
    return label.values[first].astype(_TENSOR_DTYPES[int(tensor.numbers()[0])])


def _tensors(buf: np.ndarray, records: list[_Fields], number: int) -> _Fields:
    """The tensor of a Record map field (1 features, 2 label); its number is the tensor type."""
    entry = _select(records, (number,), last=True)
    entry.require_wire((2,), "a map entry")
    value = _select(_walk(buf, entry), (2,), last=True)
    value.require_wire((2,), "a Value")
    members = _walk(buf, value)
    if _select(members, (9,), last=False).owner.size:
        raise ValueError("Record values of type bytes are not supported; use tensors")
    tensor = _select(members, tuple(_TENSOR_DTYPES), last=True)
    tensor.require_wire((2,), "a tensor")
    return tensor


def _decode(buf: np.ndarray, tensor: _Fields, n: int, *, with_keys: bool) -> _Tensors:
    """Values, keys and shape[0] of each record's tensor (records without one: no values)."""
    fields = _walk(buf, tensor)
    values, counts = _values(buf, tensor, _select(fields, (1,), last=False), n)
    keys, has_keys, key_counts = np.zeros(0, np.uint64), np.zeros(n, bool), np.zeros(n, np.int64)
    if with_keys:
        key_segments = _select(fields, (2,), last=False)
        key_segments.require_wire((0, 2), "tensor keys")
        keys, per_segment = _varint_elements(buf, key_segments)
        has_keys[key_segments.owner] = True
        key_counts = _per_record(key_segments.owner, per_segment, n)
    width = np.full(n, -1, np.int64)
    shape = _select(fields, (3,), last=False)
    if len(shape.owner):
        shape.require_wire((0, 2), "a tensor shape")
        first = np.ones(len(shape.owner), bool)
        first[1:] = shape.owner[1:] != shape.owner[:-1]
        first &= shape.end > shape.start  # an empty packed shape says nothing
        if first.any():
            width[shape.owner[first]] = _varints_at(buf, shape.start[first], shape.end[first])[0]
    return _Tensors(values, counts, keys, has_keys, key_counts, width)


def _values(
    buf: np.ndarray, tensor: _Fields, segments: _Fields, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every record's values, record after record, in one dtype, and the count per record."""
    kinds = tensor.numbers()
    present = [int(tensor.number)] if isinstance(tensor.number, int) else np.unique(kinds).tolist()
    types = [_TENSOR_DTYPES[k] for k in present]
    if len(tensor.owner) < n:  # a record without features reads as no float32 values
        types.append(np.dtype("<f4"))
    dtype = np.result_type(*types)
    if len(present) == 1:
        segments.require_wire((2, _UNPACKED_WIRE[present[0]]), "tensor values")
        values, per_segment = _elements(buf, segments, present[0])
        return values.astype(dtype, copy=False), _per_record(segments.owner, per_segment, n)
    segment_kind = kinds[np.searchsorted(tensor.owner, segments.owner)]
    counts = np.zeros(n, np.int64)
    decoded = {}
    for kind in present:
        of_kind = segments.where(segment_kind == kind)
        of_kind.require_wire((2, _UNPACKED_WIRE[kind]), "tensor values")
        decoded[kind], per_segment = _elements(buf, of_kind, kind)
        counts += _per_record(of_kind.owner, per_segment, n)
    values = np.empty(int(counts.sum()), dtype)
    row_start = np.cumsum(counts) - counts
    for kind, part in decoded.items():
        rows = tensor.owner[kinds == kind]
        values[_ranges(row_start[rows], counts[rows])] = part
    return values, counts


def _elements(buf: np.ndarray, segments: _Fields, kind: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == 7:  # Int32Tensor: varints, negative ones as 64-bit two's complement
        raw, counts = _varint_elements(buf, segments)
        return raw.view(np.int64).astype(np.int32), counts
    return _fixed_elements(buf, segments, _TENSOR_DTYPES[kind])

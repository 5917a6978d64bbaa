"""File-level checks shared by the interactions and metadata readers: empty parts, files pandas
cannot parse, and quoted fields that swallow lines.

Why: a new user's export goes wrong in these ways first, and pandas answers each with a message
that names no file ("No columns to parse from file") or with nothing at all (a quote opened and
closed hundreds of lines later makes those lines one row). Each case here is refused with the
file, the line and the fix, or skipped and counted.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

_CHUNK = 1 << 24


def skip_empty(files: list[Path], what: str) -> tuple[list[Path], list[Path]]:
    """(files with data, zero-byte files). Empty parts among good ones are skipped (exports write
    them for empty partitions); a ValueError when every file is empty."""
    empty = [f for f in files if f.stat().st_size == 0]
    if len(empty) == len(files):
        names = ", ".join(f.name for f in empty[:3]) + (" ..." if len(empty) > 3 else "")
        raise ValueError(
            f"{what}: {names} {'is' if len(empty) == 1 else f'({len(empty)} files) are'} empty "
            "(0 bytes): nothing to prepare; check the export wrote the file, and the path in "
            "the config"
        )
    return [f for f in files if f not in set(empty)], empty


def read_csv(path: Path, what: str, **options) -> pd.DataFrame:
    """pd.read_csv, with its parser errors turned into a message naming the file, the line and
    the fix."""
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{what}: {path.name} has no header line (it holds only blank lines): remove it, or "
            "write the column names on its first line"
        ) from None
    except pd.errors.ParserError as err:
        opened = [] if options.get("quoting") == csv.QUOTE_NONE else unclosed_quotes(path)
        if opened:
            start, end = opened[-1]
            if end is None:
                raise ValueError(
                    f"{what}: {path.name} line {start}: a quoted field opens here and is never "
                    f"closed, so every line after it is one field; {_QUOTE_FIX}"
                ) from None
        raise ValueError(f"{what}: {path.name}: {err}") from None


_QUOTE_FIX = (
    'fix the quoting there (a field that starts with " must end with "; a quote inside a '
    'field is written "")'
)


def check_lines_are_rows(
    path: Path,
    frame: pd.DataFrame,
    mapped: list[str],
    skipped: int,
    what: str,
    sep: str = ",",
) -> None:
    """A ValueError when a quoted field swallowed lines: the file's non-blank lines are more than
    its rows (plus the malformed lines pandas skipped), and the extra lines sit in a column the
    job reads, in a skipped line, or in another column but most of them look like rows (as many
    separators as the header). Other quoted newlines (review texts) pass. Costs one newline
    count of the file; the line-by-line scan runs only when the counts differ."""
    lines = _count_lines(path) - 1  # the header
    if lines <= len(frame) + skipped:
        return
    text = [c for c in frame if frame[c].dtype.kind not in "iufb"]
    newlines = {c: frame[c].astype("string").str.count("\n").fillna(0) for c in text}
    blank, records = _scan(path)
    in_mapped = any(newlines[c].any() for c in mapped if c in newlines)
    spanned = sum(int(n.sum()) for n in newlines.values())
    accounted = lines - blank <= len(frame) + skipped + spanned
    if not records or (not in_mapped and accounted and not _rows_inside(frame, newlines, sep)):
        return
    start, end = max(records, key=lambda r: (r[1] or lines + 2) - r[0])
    where = "the end of the file" if end is None else f"line {end}"
    raise ValueError(
        f"{what}: {path.name} line {start}: a quoted field opens here and closes only at {where}, "
        f"so {(end or lines + 1) - start + 1} lines were read as one value "
        f"({len(frame):,} rows from {lines - blank:,} lines); {_QUOTE_FIX}"
    )


def _rows_inside(frame: pd.DataFrame, newlines: dict[str, pd.Series], sep: str) -> bool:
    """True when most lines inside quoted fields have a whole row's separators."""
    folded = [
        line
        for column, counts in newlines.items()
        for value in frame[column][counts.to_numpy() > 0]
        for line in str(value).split("\n")[1:]
    ]
    like_rows = sum(line.count(sep) >= len(frame.columns) - 1 for line in folded)
    return like_rows * 2 > len(folded)


def unclosed_quotes(path: Path) -> list[tuple[int, int | None]]:
    """The quoted fields that span lines: (first line, last line or None when never closed)."""
    return _scan(path)[1]


def _scan(path: Path) -> tuple[int, list[tuple[int, int | None]]]:
    """(blank lines outside quotes, multi-line quoted fields). A line with an odd number of
    quote characters opens or closes a field that spans lines ("" inside a field counts two)."""
    blank, records, inside, start = 0, [], False, 0
    with open(path, encoding="utf-8", errors="replace", newline="") as lines:
        for number, line in enumerate(lines, start=1):
            if not inside and not line.strip():
                blank += 1
            if line.count('"') % 2:
                if inside:
                    records.append((start, number))
                else:
                    start = number
                inside = not inside
    if inside:
        records.append((start, None))
    return blank, records


def _count_lines(path: Path) -> int:
    """Physical lines, the last one counted when it has no newline."""
    count, last = 0, b"\n"
    with open(path, "rb") as data:
        while chunk := data.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")

"""Users and items metadata: read and checked against the config before prep writes anything.

A config that names a column the file lacks, or declares a text column numerical, fails here
with a message naming the config field, the file and the fix, before any output exists (today's
alternatives were a KeyError after half the outputs were written, or a schema declaring `F`/`M`
a float, which Personalize rejects at import, hours into a run). Rows whose id is missing (the
MISSING_TEXT spellings of training.interactions, or a null) are dropped and counted as
"missing USER_ID" (ITEM_ID); of rows that share an id the last is kept, the others counted as
"duplicate USER_ID" (ITEM_ID). Numerical columns are parsed here, so the CSV holds numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training.input_files_checks import check_lines_are_rows, read_csv, skip_empty
from training.interactions import Dropped, input_files, is_missing

CANONICAL_ID = {"users": "USER_ID", "items": "ITEM_ID"}
_EXAMPLES = 5
DUPLICATE_RULE = "the last row of each id is kept (files in name order), the others dropped"


@dataclass
class Metadata:
    """One metadata table, checked: the id column, then the declared columns."""

    kind: str  # "users" or "items"
    frame: pd.DataFrame
    files: list[Path]
    rows_read: int
    dropped: Dropped = field(default_factory=Dropped)
    empty_files: list[Path] = field(default_factory=list)  # 0-byte parts, skipped

    def summary(self) -> dict:
        """What manifest.json says about it."""
        return {
            "files": [str(f) for f in self.files],
            "rows_read": self.rows_read,
            "rows": len(self.frame),
            "dropped": self.dropped.as_dict(),
            "empty_files": [str(f) for f in self.empty_files],
            "duplicate_ids": DUPLICATE_RULE,
        }


def read_metadata(
    kind: str,
    location: Path,
    *,
    fmt: str,
    id_column: str,
    categorical: list[str],
    numerical: list[str],
) -> Metadata:
    """Every file of the table, its columns checked, ids cleaned, numerical columns parsed."""
    files, empty = skip_empty(input_files(location, fmt, what=f"{kind} metadata"), f"data.{kind}")
    declared = [*categorical, *numerical]
    frames = [_read_one(path, kind, fmt, id_column, declared) for path in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if frame.empty:
        raise ValueError(
            f"data.{kind}: 0 rows read from {_names(files)}: the file(s) hold a header line and "
            f"no data; check the export, and data.{kind}.path"
        )
    frame = frame.assign(**{c: _numbers(frame[c], kind, c, files) for c in numerical})
    metadata = Metadata(kind, frame, files, len(frame), empty_files=empty)
    _drop_missing_and_duplicate_ids(metadata, id_column)
    if metadata.frame.empty:
        raise ValueError(
            f"data.{kind}: no rows left in {_names(files)} once rows without a "
            f"{id_column!r} were dropped ({metadata.dropped.as_dict()}); check data.{kind}.path "
            f"and data.{kind}.id_column"
        )
    return metadata


def _read_one(path: Path, kind: str, fmt: str, id_column: str, declared: list[str]) -> pd.DataFrame:
    if fmt == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = read_csv(
            path,
            f"data.{kind}",
            sep="\t" if fmt == "tsv" else ",",
            dtype={id_column: str},  # ids stay text, as the interactions' ids
            keep_default_na=False,  # "NA" is a value; only an empty field is missing
            na_values=[""],
        )
        frame.columns = [str(c).strip() for c in frame.columns]
        check_lines_are_rows(
            path, frame, [id_column, *declared], 0, f"data.{kind}", "\t" if fmt == "tsv" else ","
        )
    present = list(frame.columns)
    if id_column not in present:
        raise ValueError(
            f"data.{kind}.id_column: {id_column!r} is not a column of {path.name}; its columns "
            f"are {present[:20]}; set id_column to the column holding the "
            f"{CANONICAL_ID[kind].lower().replace('_', ' ')}s"
        )
    absent = [c for c in declared if c not in present]
    if absent:
        raise ValueError(
            f"data.{kind}: columns {absent} are listed in categorical/numerical but not in "
            f"{path.name}; its columns are {present[:20]}; remove them from the config or add "
            "them to the file"
        )
    return frame[[id_column, *declared]]


def _numbers(values: pd.Series, kind: str, column: str, files: list[Path]) -> pd.Series:
    """The column as floats, or a ValueError when it holds text that is not a number."""
    if values.dtype.kind in "iufb":
        return values.astype("float64")
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    text = parsed.isna().to_numpy() & ~is_missing(values)
    if text.any():
        examples = list(pd.unique(values[text]))[:_EXAMPLES]
        raise ValueError(
            f"data.{kind}.numerical: column {column!r} of {_names(files)} holds text such as "
            f"{examples} ({int(text.sum()):,} of {len(values):,} rows); a numerical column "
            f"becomes a float field of the Personalize schema: move {column!r} to "
            f"data.{kind}.categorical, or fix its values"
        )
    return parsed


def _drop_missing_and_duplicate_ids(metadata: Metadata, id_column: str) -> None:
    canonical = CANONICAL_ID[metadata.kind]
    frame = metadata.frame
    missing = is_missing(frame[id_column])
    metadata.dropped.add(f"missing {canonical}", missing.sum())
    frame = frame[~missing]
    duplicate = frame[id_column].duplicated(keep="last").to_numpy()
    metadata.dropped.add(f"duplicate {canonical}", duplicate.sum())
    metadata.frame = frame[~duplicate].reset_index(drop=True)


def _names(files: list[Path]) -> str:
    shown = ", ".join(f.name for f in files[:3])
    return shown + (f" and {len(files) - 3} more" if len(files) > 3 else "")

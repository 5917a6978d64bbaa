"""Raw interaction files -> one clean, indexed table.

Canonical columns follow Personalize: USER_ID, ITEM_ID, TIMESTAMP (epoch seconds), and the
optional EVENT_TYPE and EVENT_VALUE. Every row that is dropped is counted with its reason.

A missing id or EVENT_TYPE is an empty field or one of the spellings exports write for null:
exactly the strings in MISSING_TEXT ("", "NULL", "NaN", "nan", "None"), or a null in Parquet.
Such rows are dropped and counted as "missing USER_ID" (ITEM_ID, EVENT_TYPE): nulls and
EVENT_TYPE's spellings when reading, the ids' spellings among the distinct ids once they are
indexed (drop_missing_ids: one lookup per distinct id, not per row). Every other text is a real
value, "NA" or "null" included: text columns are read without pandas' default NA list
(keep_default_na=False), here and wherever a CSV this job wrote is read back.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.input_files_checks import check_lines_are_rows, read_csv
from training.input_formats import MISSING_TEXT, SUFFIXES, is_data_file

CANONICAL = ("USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE")
_BAD_LINE = re.compile(r"Skipping line \d+", re.IGNORECASE)
# Columns whose missing values drop the row: Personalize requires each of them when present.
REQUIRED_TEXT = ("USER_ID", "ITEM_ID", "EVENT_TYPE")


@dataclass
class Dropped:
    """Rows removed on the way, by reason; reported in manifest.json."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str, n: int) -> None:
        if n:
            self.counts[reason] += int(n)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


def is_missing(values: pd.Series) -> np.ndarray:
    """True where a text value is missing (null, or one of MISSING_TEXT); one hashed lookup per
    row, and none for numeric columns (Parquet ids), which only have nulls."""
    missing = values.isna().to_numpy()
    if values.dtype.kind in "iufb":
        return missing
    return missing | values.isin(MISSING_TEXT).to_numpy()


def input_files(location: Path, fmt: str, what: str = "interactions") -> list[Path]:
    """One file, or every file of the format under a folder (a prefix of many objects)."""
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise FileNotFoundError(f"no {what} at {location}")
    found = sorted(p for p in location.rglob("*") if p.is_file() and is_data_file(p.name, fmt))
    if not found:
        raise FileNotFoundError(f"no {fmt} files ({', '.join(SUFFIXES[fmt])}) under {location}")
    return found


def read_interactions(
    files: list[Path],
    fmt: str,
    columns: dict[str, str | None],
    timestamp_unit: str,
    dropped: Dropped,
) -> pd.DataFrame:
    """Read and map columns; malformed lines, null ids, missing event types and bad timestamps
    are counted and dropped (ids spelled as null go in drop_missing_ids)."""
    wanted = {canonical: source for canonical, source in columns.items() if source}
    missing_map = {"USER_ID", "ITEM_ID"} - set(wanted)
    if missing_map:
        raise ValueError(f"the column map must name {sorted(missing_map)}")
    frames = [_read_one(path, fmt, wanted, dropped) for path in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.rename(columns={source: canonical for canonical, source in wanted.items()})
    frame = frame[[c for c in CANONICAL if c in frame.columns]]
    for key in REQUIRED_TEXT:
        if key not in frame:
            continue
        # ids: nulls here, their spellings among the distinct ids (drop_missing_ids)
        missing = is_missing(frame[key]) if key == "EVENT_TYPE" else frame[key].isna().to_numpy()
        if missing.any():
            dropped.add(f"missing {key}", missing.sum())
            frame = frame[~missing]
    if "TIMESTAMP" in frame:
        seconds = _to_epoch_seconds(frame["TIMESTAMP"], timestamp_unit)
        check_timestamp_unit(frame["TIMESTAMP"], seconds, timestamp_unit)
        bad = np.isnan(seconds)
        if bad.any():
            dropped.add("unparseable TIMESTAMP", bad.sum())
            frame, seconds = frame[~bad], seconds[~bad]
        frame = frame.assign(TIMESTAMP=seconds.astype(np.int64))
    if "EVENT_VALUE" in frame:
        value = pd.to_numeric(frame["EVENT_VALUE"], errors="coerce").to_numpy(np.float64)
        bad = np.isnan(value)
        if bad.any():
            dropped.add("non-numeric EVENT_VALUE", bad.sum())
            frame, value = frame[~bad], value[~bad]
        frame = frame.assign(EVENT_VALUE=value)
    return frame.reset_index(drop=True)


def _read_one(path: Path, fmt: str, wanted: dict[str, str], dropped: Dropped) -> pd.DataFrame:
    sources = list(wanted.values())
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        _require_columns(path, frame.columns, sources)
        return frame[sources]
    options = {"sep": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"sep": ","}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_csv(
            path,
            "interactions",
            # ids stay text (leading zeros matter); numbers are parsed natively, and anything
            # unparseable is caught by the conversions in read_interactions
            dtype={wanted[k]: str for k in ("USER_ID", "ITEM_ID", "EVENT_TYPE") if k in wanted},
            on_bad_lines="warn",
            keep_default_na=False,
            na_values=[""],
            **options,
        )
    bad = sum(len(_BAD_LINE.findall(str(w.message))) for w in caught)
    dropped.add("malformed line", bad)
    frame.columns = [c.strip() for c in frame.columns]
    _require_columns(path, frame.columns, sources)
    if fmt == "csv":
        check_lines_are_rows(path, frame, sources, bad, "interactions")
    return frame[sources]


def _require_columns(path: Path, present, needed: list[str]) -> None:
    missing = [c for c in needed if c not in set(present)]
    if missing:
        raise ValueError(
            f"{path.name}: columns {missing} are in the config's column map but not in the file; "
            f"the file has {list(present)[:20]}"
        )


# Event times outside these years are taken as a sign the values were read in the wrong unit.
PLAUSIBLE_FROM = pd.Timestamp("1990-01-01", tz="UTC")
_UNIT_NAMES = {"s": "epoch seconds", "ms": "epoch milliseconds", "date": "dates"}
_SAMPLE = 10_000


def plausible(seconds: np.ndarray) -> np.ndarray:
    """True where epoch seconds fall from 1990 to a year from now (NaN is not plausible)."""
    latest = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=365)).timestamp()
    with np.errstate(invalid="ignore"):
        return (seconds >= PLAUSIBLE_FROM.timestamp()) & (seconds <= latest)


def check_timestamp_unit(values: pd.Series, seconds: np.ndarray, unit: str) -> None:
    """A ValueError naming the unit that fits, when most timestamps are unreadable or outside
    1990..now+1 year in the configured unit and most of them fit another unit (ISO dates read
    as seconds, milliseconds read as seconds). Values that fit no unit (small counters) pass:
    their rows are kept or counted as unparseable, as before."""
    if len(values) == 0 or plausible(seconds).mean() > 0.5:
        return
    sample = values.iloc[:: max(1, len(values) // _SAMPLE)]
    fits = {
        other: plausible(_to_epoch_seconds(sample, other)).mean()
        for other in _UNIT_NAMES
        if other != unit
    }
    best = max(fits, key=fits.get)
    if fits[best] <= 0.5:
        return
    bad = int((~plausible(seconds)).sum())
    shown = [str(v) for v in pd.unique(values.iloc[:3])]
    read = _readable_range(seconds)
    raise ValueError(
        f"timestamp_unit: {bad:,} of {len(values):,} TIMESTAMP values are not plausible "
        f"{_UNIT_NAMES[unit]} ({read}; e.g. {shown}); read as {_UNIT_NAMES[best]}, "
        f"{fits[best]:.0%} of them fall in 1990..now+1 year: set "
        f"data.interactions.timestamp_unit to {best!r} (prep option timestamp_unit)"
    )


def _readable_range(seconds: np.ndarray) -> str:
    read = seconds[~np.isnan(seconds)]
    if not len(read):
        return "none could be read"
    years = [_year(v) for v in (read.min(), read.max())]
    return f"they read as years {years[0]} to {years[1]}"


def _year(seconds: float) -> str:
    return str(int(1970 + seconds / 31_556_952))


def _to_epoch_seconds(values: pd.Series, unit: str) -> np.ndarray:
    """Float seconds since the epoch; NaN where a value cannot be read."""
    if unit == "date":
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        seconds = ((parsed - epoch) // pd.Timedelta(seconds=1)).astype("Float64")
        return seconds.to_numpy(np.float64, na_value=np.nan)
    number = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    return np.floor(number / 1000) if unit == "ms" else np.floor(number)


@dataclass
class Indexed:
    """Interactions with contiguous indices, and the maps back to the original ids.

    Ids are hashed once (index_ids); de-duplication, filtering and re-indexing then work on the
    integer columns `user` and `item`.
    """

    frame: pd.DataFrame  # the canonical columns plus `user` and `item` (int64)
    user_ids: np.ndarray  # user index -> USER_ID, sorted
    item_ids: np.ndarray  # item index -> ITEM_ID, sorted

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def keep(self, rows: np.ndarray) -> Indexed:
        """The rows where `rows` is True, re-indexed so indices stay contiguous (and sorted)."""
        frame = self.frame[rows]
        user_ids, users = _compact(frame["user"].to_numpy(), self.user_ids)
        item_ids, items = _compact(frame["item"].to_numpy(), self.item_ids)
        return Indexed(
            frame.assign(user=users, item=items).reset_index(drop=True), user_ids, item_ids
        )


def _compact(codes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = np.bincount(codes, minlength=len(ids)) > 0
    new_code = np.cumsum(present) - 1
    return ids[present], new_code[codes]


def index_ids(frame: pd.DataFrame) -> Indexed:
    """Contiguous 0-based indices, sorted by id so that the same data gives the same indices."""
    users, user_ids = pd.factorize(frame["USER_ID"], sort=True)
    items, item_ids = pd.factorize(frame["ITEM_ID"], sort=True)
    indexed = frame.assign(user=users.astype(np.int64), item=items.astype(np.int64))
    return Indexed(
        indexed.reset_index(drop=True),
        np.asarray(user_ids, dtype=object),
        np.asarray(item_ids, dtype=object),
    )


def drop_missing_ids(indexed: Indexed, dropped: Dropped) -> Indexed:
    """Rows whose USER_ID or ITEM_ID is one of MISSING_TEXT, found among the distinct ids."""
    bad_user = pd.Index(indexed.user_ids).isin(MISSING_TEXT)
    bad_item = pd.Index(indexed.item_ids).isin(MISSING_TEXT)
    if not (bad_user.any() or bad_item.any()):
        return indexed
    user_rows = bad_user[indexed.frame["user"].to_numpy()]
    item_rows = bad_item[indexed.frame["item"].to_numpy()] & ~user_rows
    dropped.add("missing USER_ID", user_rows.sum())
    dropped.add("missing ITEM_ID", item_rows.sum())
    return indexed.keep(~(user_rows | item_rows))


def deduplicate(indexed: Indexed, dropped: Dropped) -> Indexed:
    """The same event twice (every canonical column equal) counts once."""
    keys = _event_keys(indexed)
    duplicated = (keys if isinstance(keys, pd.DataFrame) else pd.Series(keys)).duplicated()
    duplicated = duplicated.to_numpy()
    if not duplicated.any():
        return indexed
    dropped.add("duplicate row", duplicated.sum())
    return indexed.keep(~duplicated)


def _event_keys(indexed: Indexed) -> np.ndarray | pd.DataFrame:
    """One int64 per row that is equal exactly when every canonical column is: the user-item
    pair and each further column folded in as a code while the product of their ranges fits
    (one hashed column instead of five). Columns that do not fit stay beside it."""
    frame = indexed.frame
    key = frame["user"].to_numpy() * indexed.n_items + frame["item"].to_numpy()
    span = indexed.n_users * indexed.n_items
    beside = {}
    for column in CANONICAL[2:]:
        if column not in frame:
            continue
        if column == "TIMESTAMP":
            values = frame[column].to_numpy(np.int64)
            low = int(values.min(initial=0))
            codes, size = values - low, int(values.max(initial=0)) - low + 1
        else:
            codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
            size = len(uniques)
        if span * max(size, 1) < 2**62:
            key, span = key * size + codes, span * max(size, 1)
        else:
            beside[column] = frame[column].to_numpy()
    return pd.DataFrame({"key": key, **beside}) if beside else key


def filter_long_tail(
    indexed: Indexed,
    min_user: int,
    min_item: int,
    dropped: Dropped,
    *,
    until_stable: bool = False,
) -> Indexed:
    """Drop users and items with too few interactions (once, or repeated until none remain)."""
    while True:
        users = indexed.frame["user"].to_numpy()
        items = indexed.frame["item"].to_numpy()
        rare_user = np.bincount(users)[users] < min_user
        rare_item = (np.bincount(items)[items] < min_item) & ~rare_user
        dropped.add(f"user with < {min_user} interactions", rare_user.sum())
        dropped.add(f"item with < {min_item} interactions", rare_item.sum())
        removed = rare_user | rare_item
        if not removed.any():
            return indexed
        indexed = indexed.keep(~removed)
        if not until_stable:
            return indexed


def user_codes(frame: pd.DataFrame) -> np.ndarray:
    """Integer codes of USER_ID: the indexed `user` column when there is one."""
    if "user" in frame:
        return frame["user"].to_numpy()
    return pd.factorize(frame["USER_ID"].to_numpy())[0]


def days_since_first(frame: pd.DataFrame) -> np.ndarray:
    """Whole days since the user's first interaction: the trend feature of the FM notebooks."""
    codes = user_codes(frame)
    timestamps = frame["TIMESTAMP"].to_numpy(np.int64)
    first = np.full(int(codes.max(initial=-1)) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, codes, timestamps)
    return ((timestamps - first[codes]) // 86_400).astype(np.float32)

"""Raw interaction files -> one clean, indexed table.

Canonical columns follow Personalize: USER_ID, ITEM_ID, TIMESTAMP (epoch seconds), and the
optional EVENT_TYPE and EVENT_VALUE. Every row that is dropped is counted with its reason.
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

CANONICAL = ("USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE")
SUFFIXES = {"csv": (".csv",), "tsv": (".tsv", ".inter", ".txt"), "parquet": (".parquet",)}
_BAD_LINE = re.compile(r"Skipping line \d+", re.IGNORECASE)


@dataclass
class Dropped:
    """Rows removed on the way, by reason; reported in manifest.json."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str, n: int) -> None:
        if n:
            self.counts[reason] += int(n)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


def input_files(location: Path, fmt: str) -> list[Path]:
    """One file, or every file of the format under a folder (a prefix of many objects)."""
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise FileNotFoundError(f"no interactions at {location}")
    found = sorted(p for p in location.rglob("*") if p.is_file() and p.suffix in SUFFIXES[fmt])
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
    """Read and map columns; malformed lines, missing ids and bad timestamps are counted."""
    wanted = {canonical: source for canonical, source in columns.items() if source}
    missing_map = {"USER_ID", "ITEM_ID"} - set(wanted)
    if missing_map:
        raise ValueError(f"the column map must name {sorted(missing_map)}")
    frames = [_read_one(path, fmt, wanted, dropped) for path in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame = frame.rename(columns={source: canonical for canonical, source in wanted.items()})
    frame = frame[[c for c in CANONICAL if c in frame.columns]]
    for key in ("USER_ID", "ITEM_ID"):
        missing = frame[key].isna() | (frame[key].astype(str).str.strip() == "")
        dropped.add(f"missing {key}", missing.sum())
        frame = frame[~missing]
        frame[key] = frame[key].astype(str)
    if "TIMESTAMP" in frame:
        seconds = _to_epoch_seconds(frame["TIMESTAMP"], timestamp_unit)
        dropped.add("unparseable TIMESTAMP", seconds.isna().sum())
        frame = frame.assign(TIMESTAMP=seconds)[seconds.notna()]
        frame["TIMESTAMP"] = frame["TIMESTAMP"].astype(np.int64)
    if "EVENT_VALUE" in frame:
        value = pd.to_numeric(frame["EVENT_VALUE"], errors="coerce")
        dropped.add("non-numeric EVENT_VALUE", value.isna().sum())
        frame = frame.assign(EVENT_VALUE=value.astype(np.float64))[value.notna()]
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
        frame = pd.read_csv(
            path,
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
    return frame[sources]


def _require_columns(path: Path, present, needed: list[str]) -> None:
    missing = [c for c in needed if c not in set(present)]
    if missing:
        raise ValueError(
            f"{path.name}: columns {missing} are in the config's column map but not in the file; "
            f"the file has {list(present)[:20]}"
        )


def _to_epoch_seconds(values: pd.Series, unit: str) -> pd.Series:
    if unit == "date":
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        seconds = (parsed - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)
        return seconds.astype("Float64")
    number = pd.to_numeric(values, errors="coerce")
    return (number // 1000 if unit == "ms" else number).astype("Float64")


def deduplicate(frame: pd.DataFrame, dropped: Dropped) -> pd.DataFrame:
    """The same event twice (every canonical column equal) counts once."""
    duplicated = frame.duplicated(keep="first")
    dropped.add("duplicate row", duplicated.sum())
    return frame[~duplicated].reset_index(drop=True)


def filter_long_tail(
    frame: pd.DataFrame,
    min_user: int,
    min_item: int,
    dropped: Dropped,
    *,
    until_stable: bool = False,
) -> pd.DataFrame:
    """Drop users and items with too few interactions (once, or repeated until none remain)."""
    while True:
        users = pd.factorize(frame["USER_ID"])[0]
        items = pd.factorize(frame["ITEM_ID"])[0]
        rare_user = np.bincount(users)[users] < min_user
        rare_item = (np.bincount(items)[items] < min_item) & ~rare_user
        dropped.add(f"user with < {min_user} interactions", rare_user.sum())
        dropped.add(f"item with < {min_item} interactions", rare_item.sum())
        kept = frame[~(rare_user | rare_item)]
        if not until_stable or len(kept) == len(frame):
            return kept.reset_index(drop=True)
        frame = kept


@dataclass
class Indexed:
    """Interactions with contiguous indices, and the maps back to the original ids."""

    frame: pd.DataFrame  # adds columns `user` and `item` (int32)
    user_ids: np.ndarray  # user index -> USER_ID
    item_ids: np.ndarray  # item index -> ITEM_ID

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def index_ids(frame: pd.DataFrame) -> Indexed:
    """Contiguous 0-based indices, sorted by id so that the same data gives the same indices."""
    users, user_ids = pd.factorize(frame["USER_ID"], sort=True)
    items, item_ids = pd.factorize(frame["ITEM_ID"], sort=True)
    indexed = frame.assign(user=users.astype(np.int32), item=items.astype(np.int32))
    return Indexed(indexed, np.asarray(user_ids, dtype=object), np.asarray(item_ids, dtype=object))


def days_since_first(frame: pd.DataFrame) -> np.ndarray:
    """Whole days since the user's first interaction: the trend feature of the FM notebooks."""
    first = frame.groupby("USER_ID", sort=False)["TIMESTAMP"].transform("min")
    return ((frame["TIMESTAMP"] - first) // 86_400).to_numpy(dtype=np.float32)

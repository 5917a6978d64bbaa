"""Per-user splits. Ties in time are broken by input order, so a split is reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.interactions import user_codes


def _rank_within_user(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each row in its user's history (timestamp, then input order), and the
    user's row count. Equivalent to groupby(user).TIMESTAMP.rank(method='first')."""
    codes = user_codes(frame)
    order = _by_user_then_time(codes, frame["TIMESTAMP"].to_numpy())
    sorted_codes = codes[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    sizes = np.diff(np.r_[group_start, len(order)])
    rank_sorted = np.arange(len(order)) - np.repeat(group_start, sizes) + 1
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = rank_sorted
    counts = np.bincount(codes)[codes]
    return rank, counts


def _by_user_then_time(codes: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Row order by user, then timestamp, then input order: one stable sort of a combined key
    when it fits in 64 bits (three times faster than lexsort on ten million rows)."""
    if not len(codes):
        return np.zeros(0, np.int64)
    timestamps = timestamps.astype(np.int64)
    low = int(timestamps.min())
    span = int(timestamps.max()) - low + 1
    if (int(codes.max()) + 1) * span < 2**62:
        return np.argsort(codes * span + (timestamps - low), kind="stable")
    return np.lexsort((np.arange(len(codes)), timestamps, codes))


def temporal_holdout(frame: pd.DataFrame, fraction: float = 0.1) -> np.ndarray:
    """True for each user's last `fraction` of interactions: rank / count > 1 - fraction.

    The same rule as the AWS temporal-holdout notebook (`rank(pct=True, method='first') > 0.9`),
    so its published figures can be reproduced.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    rank, counts = _rank_within_user(frame)
    return rank / counts > 1.0 - fraction


def leave_last_out(frame: pd.DataFrame) -> np.ndarray:
    """True for each user's last interaction (users with one interaction keep it for training)."""
    rank, counts = _rank_within_user(frame)
    return (rank == counts) & (counts > 1)

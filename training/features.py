"""Labels and the one-hot design matrix for Factorization Machines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Examples:
    """Training examples as index arrays, before one-hot encoding."""

    user: np.ndarray
    item: np.ndarray
    label: np.ndarray  # float32
    extra: np.ndarray | None = None  # float32 feature per example (days_since_first)
    negatives_dropped: int = 0


def regression_target(user, item, rating, extra=None) -> Examples:
    return Examples(user, item, np.asarray(rating, dtype=np.float32), extra)


def binary_target(user, item, rating, threshold: float, extra=None) -> Examples:
    return Examples(user, item, (np.asarray(rating) >= threshold).astype(np.float32), extra)


def implicit_target(
    user: np.ndarray,
    item: np.ndarray,
    n_items: int,
    negatives_per_positive: int,
    *,
    seed: int = 0,
    extra: np.ndarray | None = None,
    max_rounds: int = 10,
) -> Examples:
    """Observed pairs are 1; for each, sampled items the user never touched are 0.

    Sampling is vectorized with rejection: draws that hit an observed pair are redrawn for a few
    rounds; the rare ones still colliding (users who saw almost everything) are dropped and
    counted, never labelled wrongly.
    """
    rng = np.random.default_rng(seed)
    user = np.asarray(user, dtype=np.int64)
    observed = np.unique(user * n_items + np.asarray(item, dtype=np.int64))
    neg_user = np.repeat(user, negatives_per_positive)
    neg_item = rng.integers(0, n_items, len(neg_user))
    for _ in range(max_rounds):
        clash = np.isin(neg_user * n_items + neg_item, observed, assume_unique=False)
        if not clash.any():
            break
        neg_item[clash] = rng.integers(0, n_items, int(clash.sum()))
    clash = np.isin(neg_user * n_items + neg_item, observed)
    neg_user, neg_item = neg_user[~clash], neg_item[~clash]
    neg_extra = None if extra is None else np.repeat(extra, negatives_per_positive)[~clash]
    return Examples(
        user=np.concatenate([user, neg_user]),
        item=np.concatenate([np.asarray(item, dtype=np.int64), neg_item]),
        label=np.concatenate([np.ones(len(user), np.float32), np.zeros(len(neg_user), np.float32)]),
        extra=None if extra is None else np.concatenate([extra, neg_extra]).astype(np.float32),
        negatives_dropped=int(clash.sum()),
    )


def one_hot(examples: Examples, n_users: int, n_items: int) -> sp.csr_matrix:
    """Row i: 1 at column user, 1 at n_users + item, and extra at the last column if given.

    Built straight from index arrays (no per-row loop); feature_dim = n_users + n_items (+1).
    """
    n = len(examples.user)
    columns = [np.asarray(examples.user, np.int64), n_users + np.asarray(examples.item, np.int64)]
    values = [np.ones(n, np.float32), np.ones(n, np.float32)]
    width = n_users + n_items
    if examples.extra is not None:
        columns.append(np.full(n, width, dtype=np.int64))
        values.append(np.asarray(examples.extra, np.float32))
        width += 1
    per_row = len(columns)
    indices = np.stack(columns, axis=1).reshape(-1)
    data = np.stack(values, axis=1).reshape(-1)
    indptr = np.arange(0, per_row * n + 1, per_row, dtype=np.int64)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n, width))
    # A zero feature (a first-day interaction) is not stored, as scipy's lil_matrix would not.
    matrix.eliminate_zeros()
    return matrix

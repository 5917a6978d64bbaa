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


@dataclass
class SeenItems:
    """Each user's observed items, kept so that the items a user has NOT seen can be drawn
    uniformly without rejection: with the user's observed items sorted, o_0 < o_1 < ..., the
    r-th unseen item is r + #{j : o_j - j <= r}, one binary search per draw."""

    n_items: int
    user_start: np.ndarray  # (n_users + 1,): where each user's observed items start
    search_keys: np.ndarray  # user * (n_items + 1) + (o_j - j): ascending

    @classmethod
    def of(cls, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int) -> SeenItems:
        pairs = _sorted_unique(np.asarray(user, np.int64) * n_items + np.asarray(item, np.int64))
        pair_user, pair_item = np.divmod(pairs, n_items)
        user_start = np.searchsorted(pair_user, np.arange(n_users + 1))
        rank = np.arange(len(pairs)) - user_start[pair_user]
        return cls(n_items, user_start, pair_user * (n_items + 1) + (pair_item - rank))

    def unseen(self, user: np.ndarray) -> np.ndarray:
        """How many items each user has not seen."""
        return self.n_items - (self.user_start[user + 1] - self.user_start[user])

    def draw_unseen(self, user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item per entry, uniform over that user's unseen items (users with none: -1)."""
        free = self.unseen(user)
        possible = free > 0
        rank = np.full(len(user), -1, np.int64)
        rank[possible] = rng.integers(0, free[possible])
        query = user * (self.n_items + 1) + rank
        # searching in ascending order walks the keys once instead of jumping across them
        order = np.argsort(query)
        found = np.empty(len(query), np.int64)
        found[order] = np.searchsorted(self.search_keys, query[order], side="right")
        return np.where(possible, rank + found - self.user_start[user], -1)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by one sort: numpy 2.4's hash-based np.unique is ~50x slower on 1M int64."""
    ordered = np.sort(values)
    first = np.ones(len(ordered), bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]


def implicit_target(
    user: np.ndarray,
    item: np.ndarray,
    n_items: int,
    negatives_per_positive: int,
    *,
    seed: int | np.random.Generator = 0,
    extra: np.ndarray | None = None,
    seen: SeenItems | None = None,
) -> Examples:
    """Observed pairs are 1; after each, `negatives_per_positive` items the user never touched,
    labelled 0 and drawn uniformly among those (seen: the pairs to avoid, by default these).

    Each positive is followed by its own negatives, so any slice of the records holds both.
    A user who saw every item gets no negatives; those are counted, never labelled wrongly.
    """
    rng = np.random.default_rng(seed)
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    if seen is None:
        seen = SeenItems.of(user, item, int(user.max(initial=-1)) + 1, n_items)
    per_positive = 1 + negatives_per_positive
    users = np.repeat(user, per_positive).reshape(-1, per_positive)
    items = np.empty_like(users)
    items[:, 0] = item
    items[:, 1:] = seen.draw_unseen(users[:, 1:].ravel(), rng).reshape(len(user), -1)
    labels = np.zeros(users.shape, np.float32)
    labels[:, 0] = 1.0
    kept = (items >= 0).ravel()
    extras = None if extra is None else np.repeat(np.asarray(extra, np.float32), per_positive)
    return Examples(
        user=users.ravel()[kept],
        item=items.ravel()[kept],
        label=labels.ravel()[kept],
        extra=None if extras is None else extras[kept],
        negatives_dropped=int((~kept).sum()),
    )


def one_hot(examples: Examples, n_users: int, n_items: int) -> sp.csr_matrix:
    """Row i: 1 at column user, 1 at n_users + item, and extra at the last column if given.

    Built straight from index arrays (no per-row loop); feature_dim = n_users + n_items (+1).
    """
    n = len(examples.user)
    per_row = 2 if examples.extra is None else 3
    small = max(n_users + n_items + 1, per_row * n) < 2**31
    indices = np.empty((n, per_row), np.int32 if small else np.int64)
    data = np.ones((n, per_row), np.float32)
    indices[:, 0] = examples.user
    indices[:, 1] = examples.item
    indices[:, 1] += n_users
    width = n_users + n_items
    if examples.extra is not None:
        indices[:, 2] = width
        data[:, 2] = examples.extra
        width += 1
    indptr = np.arange(0, per_row * n + 1, per_row, dtype=indices.dtype)
    matrix = sp.csr_matrix((data.reshape(-1), indices.reshape(-1), indptr), shape=(n, width))
    # A zero feature (a first-day interaction) is not stored, as scipy's lil_matrix would not.
    matrix.eliminate_zeros()
    return matrix

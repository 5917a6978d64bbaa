"""Like-for-like candidates for the leaderboard: every recommender is scored the same way.

The rule (issue 11, item 1):

1. Each source is read at its full width: every item its batch output holds (the Personalize
   batch job's `num_results`, the KNN transform's `k`), not cut at the largest K.
2. The candidate width C is the widest list any source supplied (at least the largest K). The
   popularity baseline gets exactly C candidates too; without any other source it keeps
   `DEFAULT_POPULARITY_WIDTH` (4 x the largest K, i.e. 100 at K = 25, the AWS notebook's count).
3. With seen items removed, they are removed from the C candidates *before* cutting to the
   largest K, so a list whose top K were all seen is refilled from its deeper candidates. A user
   whose C candidates hold fewer than K unseen items cannot be refilled: such users (among those
   with a held-out item) are counted per source and reported. Their list is completed the way the
   AWS notebook does, with the seen items at the end in their ranked order, then padding.
4. Ties are broken one way everywhere: score descending, then item index ascending (popularity:
   training count, then item index; KNN: inner product, then item index; Personalize: its score
   when the batch output has one, else the order the service returned). Removing seen items
   keeps that order (a stable sort).

Also here: the cold-start counts (held-out users and items never seen in training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TIE_BREAK = "score descending, then item index ascending"
POPULARITY_WIDTH_FACTOR = 4


def rank_by_score(items: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Items best first: score descending, ties by item index ascending (the documented rule)."""
    items = np.asarray(items, dtype=np.int64)
    return items[np.lexsort((items, -np.asarray(scores, dtype=np.float64)))]


def list_width(recommendations: np.ndarray) -> int:
    """The widest list a source supplied: the most real (non-padding) items in any row."""
    if recommendations.size == 0:
        return 0
    return int((recommendations >= 0).sum(axis=1).max())


def candidate_width(widths: dict[str, int], largest_k: int) -> int:
    """C: the widest list any source supplied, never below the largest K; popularity alone (no
    other source) keeps 4 x the largest K."""
    if not widths:
        return POPULARITY_WIDTH_FACTOR * largest_k
    return max(largest_k, *widths.values())


def remove_seen(
    recommendations: np.ndarray, seen: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unseen items first in their ranked order, then the seen ones, then padding; cut to n.

    `seen` flags each cell. Returns the lists (n wide, or narrower when the source was) and, per user, whether fewer than n
    unseen items were available (the list could not be refilled to n)."""
    padding = recommendations < 0
    group = np.where(padding, 2, seen.astype(np.int8))  # 0 unseen, 1 seen, 2 padding
    order = np.argsort(group, axis=1, kind="stable")
    kept = np.take_along_axis(recommendations, order, axis=1)[:, :n]
    unseen = (group == 0).sum(axis=1)
    return kept, unseen < n


@dataclass
class ColdStart:
    """Held-out users and items that training never saw: no recommender can know them."""

    users: int  # users with a held-out item and no training interaction
    items: int  # distinct held-out items with no training interaction
    interactions: int  # held-out interactions on those items
    eval_users: int
    holdout_items: int
    holdout_interactions: int

    def document(self) -> dict[str, int]:
        return {
            "users": self.users,
            "items": self.items,
            "interactions": self.interactions,
            "evalUsers": self.eval_users,
            "holdoutItems": self.holdout_items,
            "holdoutInteractions": self.holdout_interactions,
        }


def cold_start(
    n_users: int,
    n_items: int,
    train_user: np.ndarray,
    train_item: np.ndarray,
    holdout_user: np.ndarray,
    holdout_item: np.ndarray,
) -> ColdStart:
    """Counts of the holdout that has no training history."""
    trained_users = np.bincount(train_user, minlength=n_users) > 0
    trained_items = np.bincount(train_item, minlength=n_items) > 0
    eval_users = np.unique(holdout_user)
    held_items = np.unique(holdout_item)
    return ColdStart(
        users=int((~trained_users[eval_users]).sum()),
        items=int((~trained_items[held_items]).sum()),
        interactions=int((~trained_items[holdout_item]).sum()),
        eval_users=len(eval_users),
        holdout_items=len(held_items),
        holdout_interactions=len(holdout_item),
    )


@dataclass
class Candidates:
    """How the leaderboard's lists were cut: C, each source's width, and per seen-removed row
    the users whose list could not be refilled to the largest K."""

    width: int
    source_widths: dict[str, int]
    largest_k: int
    unfilled_users: dict[str, int] = field(default_factory=dict)

    def document(self) -> dict:
        return {
            "width": self.width,
            "sourceWidths": dict(self.source_widths),
            "cutTo": self.largest_k,
            "tieBreak": TIE_BREAK,
            "unfilledUsers": dict(self.unfilled_users),
        }

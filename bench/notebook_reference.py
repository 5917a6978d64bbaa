"""The reference notebooks' methods, kept runnable to measure against and to check equality.

These are deliberately the slow ways of ../shared/seeds: iterrows + lil_matrix + the SDK writer
for training data, and a per-user loop that rescans the table for evaluation (metrics.py's
definitions, as spelled out in shared notes/metrics.md).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from scipy.sparse import lil_matrix


def load_dataset(df: pd.DataFrame, n_users: int, n_items: int, regressor: bool = True):
    """Notebook 004's loadDataset: one lil_matrix assignment per row via iterrows."""
    X = lil_matrix((df.shape[0], n_users + n_items)).astype("float32")  # noqa: N806
    Y = []  # noqa: N806
    line = 0
    for _, row in df.iterrows():
        X[line, row["user"]] = 1
        X[line, n_users + row["item"]] = 1
        line += 1  # noqa: SIM113 - the notebook's own loop, kept as written
        if regressor:
            Y.append(row["rating"])
        else:
            Y.append(1 if int(row["rating"]) >= 5 else 0)
    return X, np.array(Y).astype("float32")


def sdk_write_sparse(matrix, labels) -> bytes:
    from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor

    buffer = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buffer, matrix, labels)
    return buffer.getvalue()


# metrics.py of the amazon-personalize-samples temporal-holdout notebook, per shared notes
def mean_reciprocal_rank(r) -> float:
    hits = np.asarray(r).nonzero()[0]
    return 1.0 / (hits[0] + 1) if hits.size else 0.0


def precision_at_k(r, k) -> float:
    return float(np.mean(np.asarray(r)[:k] != 0))


def dcg_at_k(r, k) -> float:
    r = np.asarray(r, dtype=float)[:k]
    if r.size:
        return r[0] + np.sum(r[1:] / np.log2(np.arange(2, r.size + 1)))
    return 0.0


def ndcg_at_k(r, k) -> float:
    dcg_max = dcg_at_k(sorted(r, reverse=True), k)
    if not dcg_max:
        return 0.0
    return dcg_at_k(r, k) / dcg_max


def notebook_evaluation(
    train: pd.DataFrame, holdout: pd.DataFrame, topk: np.ndarray, exclude_seen: bool
):
    """The notebook's loop: per user, rescan the training table for past items."""
    relevance = []
    for user_id, true_items in holdout.groupby("USER_ID").ITEM_ID:
        if exclude_seen:
            past_items = train[user_id == train.USER_ID].ITEM_ID.values
            rec_items = [x for x in topk if x not in past_items]
            if len(rec_items) < 25:
                rec_items.extend([x for x in topk if x not in rec_items])
            rec_items = rec_items[:25]
        else:
            rec_items = topk[:25]
        relevance.append([int(x in true_items.values) for x in rec_items])
    return {
        "aws_mrr": np.mean([mean_reciprocal_rank(r) for r in relevance]),
        **{
            f"precision@{k}": np.mean([precision_at_k(r, k) for r in relevance])
            for k in (5, 10, 25)
        },
        **{f"aws_ndcg@{k}": np.mean([ndcg_at_k(r, k) for r in relevance]) for k in (5, 10, 25)},
    }

"""The FM → KNN workflow's product: top-K per user with the original ids, as a user loads them.

The KNN batch transform answers in index space (float item labels, one line per user row of the
query matrix, neighbours by ascending distance). This writes the same lists with the ids the
data came with, best first, in two files next to each other:

- `recommendations.jsonl`: one line per user in Amazon Personalize's batch-output shape,
  `{"input": {"userId": ...}, "output": {"recommendedItems": [...], "scores": [...]}}`, so code
  that reads Personalize's batch output reads this too;
- `recommendations.csv`: `user_id,rank,item_id,score` (rank 1 is the best).

The lists are the transform's as they are (already-seen items included, as a batch inference
job's without a filter); the leaderboard's "seen removed" rows are computed by evaluate.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

JSONL, CSV = "recommendations.jsonl", "recommendations.csv"


def read_knn_lists(lines: list[str] | str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each transform line's (item indices, scores), largest inner product first."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    items, scores = [], []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        labels = np.asarray(row["labels"], dtype=np.float64).astype(np.int64)
        distances = np.asarray(row["distances"], dtype=np.float64)
        order = np.argsort(-distances, kind="stable")
        items.append(labels[order])
        scores.append(distances[order])
    return items, scores


def write_recommendations(
    directory: Path,
    lines: list[str] | str,
    user_ids: list[str],
    item_ids: list[str],
) -> dict[str, int]:
    """Both files under `directory`; returns the counts it wrote (users, rows)."""
    items, scores = read_knn_lists(lines)
    if len(items) != len(user_ids):
        raise ValueError(
            f"the KNN transform output has {len(items)} lines, the prepared data {len(user_ids)} "
            "users: the transform did not score every user row of fm_to_knn's query matrix"
        )
    directory.mkdir(parents=True, exist_ok=True)
    rows = 0
    with (directory / JSONL).open("w") as jsonl, (directory / CSV).open("w", newline="") as out:
        table = csv.writer(out)
        table.writerow(["user_id", "rank", "item_id", "score"])
        for user, ranked, score in zip(user_ids, items, scores, strict=True):
            ids = [item_ids[i] for i in ranked]
            values = [round(float(s), 6) for s in score]
            record = {"input": {"userId": user}, "output": {"recommendedItems": ids}}
            record["output"]["scores"] = values
            jsonl.write(json.dumps(record) + "\n")
            table.writerows(
                (user, rank, item, value)
                for rank, (item, value) in enumerate(zip(ids, values, strict=True), 1)
            )
            rows += len(ids)
    return {"users": len(user_ids), "rows": rows}

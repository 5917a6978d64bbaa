"""Offline evaluation on the per-user holdout, vectorized over all users at once.

Recommendations are an (n_users, N) matrix of item indices (-1 pads a short list). Relevance is
one `np.isin` over (user, item) keys; every metric is then a weighted row sum. Two sets of
definitions are reported side by side (see shared notes/metrics.md): the standard ones, and those
of the AWS temporal-holdout notebook's metrics.py, labelled `aws_*`, which its published
figures use.

`python -m training.evaluate` scores every recommendation source it finds plus the popularity
baseline, and writes metrics.json and report.html.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Holdout:
    """Held-out and training interactions in index space."""

    n_users: int
    n_items: int
    holdout_user: np.ndarray
    holdout_item: np.ndarray
    train_user: np.ndarray
    train_item: np.ndarray

    @cached_property
    def seen(self) -> PairSet:
        return PairSet(self.n_users, self.n_items, self.train_user, self.train_item)

    @cached_property
    def held(self) -> PairSet:
        return PairSet(self.n_users, self.n_items, self.holdout_user, self.holdout_item)

    @cached_property
    def eval_users(self) -> np.ndarray:
        """Users with at least one held-out item: the ones every metric averages over."""
        return np.unique(self.holdout_user)


class PairSet:
    """Membership of (user, item) pairs: a dense bitmap when it fits, sorted keys otherwise."""

    DENSE_LIMIT = 1 << 28  # cells; 256 MB of booleans at most

    def __init__(self, n_users: int, n_items: int, users: np.ndarray, items: np.ndarray):
        self.n_items = n_items
        if n_users * n_items <= self.DENSE_LIMIT:
            self.dense = np.zeros((n_users, n_items), dtype=bool)
            self.dense[users, items] = True
            self.keys = None
        else:
            self.dense = None
            self.keys = np.unique(np.asarray(users, np.int64) * n_items + items)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Element-wise; negative items (padding) are never members."""
        valid = items >= 0
        safe = np.where(valid, items, 0)
        if self.dense is not None:
            return self.dense[users, safe] & valid
        keys = np.asarray(users, np.int64) * self.n_items + safe
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return (self.keys[at] == keys) & valid


def popularity_ranking(holdout: Holdout, n: int) -> np.ndarray:
    """Items by training count, most first; ties by item index (deterministic)."""
    counts = np.bincount(holdout.train_item, minlength=holdout.n_items)
    order = np.lexsort((np.arange(holdout.n_items), -counts))
    return order[:n]


def broadcast(ranking: np.ndarray, n_users: int) -> np.ndarray:
    """The same list for every user (the popularity baseline)."""
    return np.broadcast_to(ranking, (n_users, len(ranking)))


def exclude_seen(recommendations: np.ndarray, holdout: Holdout, n: int) -> np.ndarray:
    """Drop items the user saw in training, keeping order; refill from the seen ones at the end
    when fewer than n remain (what the AWS notebook does), then keep n."""
    users = np.arange(recommendations.shape[0])[:, None]
    seen = holdout.seen.contains(users, recommendations)
    order = np.argsort(seen, axis=1, kind="stable")  # unseen first, each group in list order
    return np.take_along_axis(recommendations, order, axis=1)[:, :n]


def relevance(recommendations: np.ndarray, holdout: Holdout) -> np.ndarray:
    """(len(eval_users), N) booleans: is the item at rank i held out for that user."""
    users = holdout.eval_users
    return holdout.held.contains(users[:, None], recommendations[users])


def score(recommendations: np.ndarray, holdout: Holdout, k_values: list[int]) -> dict[str, float]:
    """All metrics at every K, averaged over users with a held-out item."""
    rel = relevance(recommendations, holdout).astype(np.float64)
    n_list = rel.shape[1]
    held = np.bincount(holdout.holdout_user, minlength=holdout.n_users)[holdout.eval_users]
    ranks = np.arange(1, n_list + 1)
    any_hit = rel.any(axis=1)
    first_hit = np.where(any_hit, rel.argmax(axis=1) + 1, 0)
    result = {"users": float(len(rel)), "list_length": float(n_list)}
    # AWS notebook: MRR over the whole returned list
    result["aws_mrr"] = float(np.mean(np.where(any_hit, 1.0 / np.maximum(first_hit, 1), 0.0)))
    standard_gain = 1.0 / np.log2(ranks + 1)
    aws_gain = np.r_[1.0, 1.0 / np.log2(ranks[1:])]  # x_1 + sum_{i>=2} x_i / log2(i)
    total_hits = rel.sum(axis=1)
    for k in k_values:
        top = rel[:, :k]
        hits = top.sum(axis=1)
        kk = min(k, n_list)
        result[f"precision@{k}"] = float(np.mean(hits / k))
        result[f"recall@{k}"] = float(np.mean(hits / held))
        result[f"hit@{k}"] = float(np.mean(hits > 0))
        result[f"mrr@{k}"] = float(
            np.mean(np.where((first_hit > 0) & (first_hit <= k), 1.0 / np.maximum(first_hit, 1), 0))
        )
        dcg = top @ standard_gain[:kk]
        ideal_cum = np.cumsum(standard_gain[:kk])
        idcg = ideal_cum[np.minimum(held, kk) - 1]
        result[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
        # AWS "method 0": normalised by the whole list's hits sorted to the top, cut at K
        aws_dcg = top @ aws_gain[:kk]
        aws_cum = np.r_[0.0, np.cumsum(aws_gain[:kk])]
        aws_ideal = aws_cum[np.minimum(total_hits, kk).astype(int)]
        result[f"aws_ndcg@{k}"] = float(
            np.mean(np.divide(aws_dcg, aws_ideal, out=np.zeros_like(aws_dcg), where=aws_ideal > 0))
        )
        result[f"aws_precision@{k}"] = result[f"precision@{k}"]
        result[f"coverage@{k}"] = _coverage(recommendations[:, :k], holdout.n_items)
    return result


def _coverage(recommendations: np.ndarray, n_items: int) -> float:
    recommended = np.unique(recommendations[recommendations >= 0])
    return float(len(recommended) / n_items)


# ---------------------------------------------------------------------------------------------
# readers for what the workflows produce


def read_knn_transform_output(lines: list[str] | str, n: int) -> np.ndarray:
    """KNN batch transform, `application/jsonlines; verbose=true`: one line per input record.

    The service documents ascending distance; with INNER_PRODUCT the best item comes last. Rank
    explicitly by score (largest inner product first) instead of trusting the order.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    out = np.full((len(rows), n), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        labels = np.asarray(row["labels"], dtype=np.float64).astype(np.int64)
        distances = np.asarray(row["distances"], dtype=np.float64)
        best = labels[np.argsort(-distances, kind="stable")][:n]
        out[i, : len(best)] = best
    return out


def read_personalize_batch_output(
    lines: list[str] | str, user_index: dict[str, int], item_index: dict[str, int], n: int
) -> tuple[np.ndarray, int]:
    """Personalize batch inference output (JSON lines of input/output/error).

    Returns the (n_users, n) matrix and how many recommended items were unknown to the
    training catalogue (counted, not silently dropped)."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    out = np.full((len(user_index), n), -1, dtype=np.int64)
    unknown = 0
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("error"):
            continue
        user = user_index.get(str(row["input"]["userId"]))
        if user is None:
            continue
        items = [item_index.get(str(i)) for i in row["output"]["recommendedItems"]]
        known = [i for i in items if i is not None]
        unknown += len(items) - len(known)
        out[user, : min(n, len(known))] = known[:n]
    return out, unknown


# ---------------------------------------------------------------------------------------------
# report


def write_report(
    results: dict[str, dict[str, float]], k_values: list[int], directory: Path
) -> None:
    """metrics.json, and report.html with one bar chart per metric against the baseline."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(results, indent=2))
    metrics = ["aws_mrr"] + [
        f"{m}@{k}"
        for m in ("precision", "recall", "ndcg", "hit", "aws_ndcg", "coverage")
        for k in k_values
    ]
    charts = []
    for metric in metrics:
        top = max((r.get(metric, 0.0) for r in results.values()), default=0.0) or 1.0
        bars = "".join(
            f'<div class="row"><span class="name">{html.escape(name)}</span>'
            f'<span class="bar{" base" if name.startswith("popularity") else ""}" '
            f'style="width:{300 * r.get(metric, 0.0) / top:.1f}px"></span>'
            f'<span class="value">{r.get(metric, 0.0):.4f}</span></div>'
            for name, r in results.items()
        )
        charts.append(f"<h3>{metric}</h3>{bars}")
    page = f"""<!doctype html><meta charset="utf-8"><title>recops evaluation</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}
.row{{display:flex;align-items:center;margin:2px 0}}.name{{width:260px}}
.bar{{display:inline-block;height:14px;background:#3b7dd8;margin-right:6px}}
.base{{background:#999}}.value{{font-family:monospace}}</style>
<h1>Offline evaluation</h1>
<p>Per-user temporal holdout; metrics averaged over users with a held-out item.
Grey bars: the popularity baseline. <code>aws_*</code>: the AWS temporal-holdout notebook's
definitions (not comparable with the standard NDCG).</p>
{"".join(charts)}
"""
    (directory / "report.html").write_text(page)


# ---------------------------------------------------------------------------------------------
# job entry point


def load_holdout(prepared: Path) -> tuple[Holdout, dict[str, int], dict[str, int]]:
    """From prep's outputs: maps, training interactions and the holdout."""
    users = pd.read_csv(prepared / "maps" / "users.csv", dtype={"USER_ID": str})
    items = pd.read_csv(prepared / "maps" / "items.csv", dtype={"ITEM_ID": str})
    user_index = dict(zip(users["USER_ID"], users["index"], strict=True))
    item_index = dict(zip(items["ITEM_ID"], items["index"], strict=True))
    train = pd.read_csv(
        prepared / "personalize" / "interactions.csv", dtype={"USER_ID": str, "ITEM_ID": str}
    )
    held = pd.read_csv(
        prepared / "evaluation" / "holdout.csv", dtype={"USER_ID": str, "ITEM_ID": str}
    )
    holdout = Holdout(
        n_users=len(users),
        n_items=len(items),
        holdout_user=held["USER_ID"].map(user_index).to_numpy(np.int64),
        holdout_item=held["ITEM_ID"].map(item_index).to_numpy(np.int64),
        train_user=train["USER_ID"].map(user_index).to_numpy(np.int64),
        train_item=train["ITEM_ID"].map(item_index).to_numpy(np.int64),
    )
    return holdout, user_index, item_index


def evaluate_sources(
    holdout: Holdout,
    sources: dict[str, np.ndarray],
    k_values: list[int],
    *,
    with_exclude_seen: bool = True,
) -> dict[str, dict[str, float]]:
    """Score each source and the popularity baseline, with and without already-seen items."""
    n = max(k_values)
    candidates = popularity_ranking(holdout, min(holdout.n_items, 4 * n))
    everything = {"popularity": broadcast(candidates[:n], holdout.n_users), **sources}
    results = {}
    for name, recs in everything.items():
        results[name] = score(recs[:, :n], holdout, k_values)
    if with_exclude_seen:
        results["popularity, seen removed"] = score(
            exclude_seen(broadcast(candidates, holdout.n_users), holdout, n), holdout, k_values
        )
        for name, recs in sources.items():
            results[f"{name}, seen removed"] = score(
                exclude_seen(recs, holdout, n), holdout, k_values
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate")
    parser.add_argument("--prepared", type=Path, default=Path("/opt/ml/processing/input/prepared"))
    parser.add_argument("--knn-output", type=Path, action="append", default=[])
    parser.add_argument("--personalize-output", type=Path, action="append", default=[])
    parser.add_argument("--k", type=int, action="append", dest="k_values")
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output"))
    args = parser.parse_args(argv)
    k_values = sorted(set(args.k_values or [5, 10, 25]))
    holdout, user_index, item_index = load_holdout(args.prepared)
    n = max(k_values)
    sources = {}
    for path in args.knn_output:
        text = (
            "".join(p.read_text() for p in sorted(path.glob("*.out")))
            if path.is_dir()
            else path.read_text()
        )
        sources[f"fm-knn ({path.name})"] = read_knn_transform_output(text, n)
    for path in args.personalize_output:
        text = (
            "".join(p.read_text() for p in sorted(path.glob("*.out")))
            if path.is_dir()
            else path.read_text()
        )
        recs, unknown = read_personalize_batch_output(text, user_index, item_index, n)
        if unknown:
            print(
                f"evaluate: {unknown} recommended items from {path.name} are not in the catalogue"
            )
        sources[f"personalize ({path.name})"] = recs
    results = evaluate_sources(holdout, sources, k_values)
    write_report(results, k_values, args.output)
    for name, values in results.items():
        print(
            f"{name:40s} "
            + " ".join(f"{m}={values[m]:.4f}" for m in ("aws_mrr", f"precision@{n}", f"ndcg@{n}"))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

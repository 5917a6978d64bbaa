"""Offline evaluation on the per-user holdout, vectorized over all users at once.

Recommendations are an (n_users, N) matrix of item indices (-1 pads a short list). Relevance is
one `np.isin` over (user, item) keys; every metric is then a weighted row sum. Two sets of
definitions are reported side by side (the functions below define each): the standard ones, and those
of the AWS temporal-holdout notebook's metrics.py, labelled `aws_*`, which its published
figures use.

`python -m training.evaluate` scores every recommendation source it is given plus the popularity
baseline, with and without already-seen items, like for like (training/candidates.py: every
source read at its full width, seen items removed from the same C candidates before cutting to
K, ties by score then item index), and writes metrics.json (version 2: a leaderboard
ranked by NDCG@10, or NDCG at the largest K when 10 is not one; each entry marked whether it beats
the popularity baseline of the same seen-handling) and report.html. With `--run-context run.json`
(written by the workflow) the leaderboard names each Personalize batch job's solution and recipe,
and the report lists what was not scored and what failed, with why; a run with failures is
PARTIAL. Without it, every list is empty and the run is COMPLETE. metrics.json and the report
also say how the lists were cut (C, each source's width, the users whose list could not be
refilled to K) and how much of the holdout is cold start.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from training import candidates, recommendations


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
    def cold_start(self) -> candidates.ColdStart:
        """Held-out users and items training never saw."""
        return candidates.cold_start(
            self.n_users,
            self.n_items,
            self.train_user,
            self.train_item,
            self.holdout_user,
            self.holdout_item,
        )

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
    return exclude_seen_counted(recommendations, holdout, n)[0]


def exclude_seen_counted(
    recommendations: np.ndarray, holdout: Holdout, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """`exclude_seen`, and per user whether fewer than n unseen candidates were left."""
    users = np.arange(recommendations.shape[0])[:, None]
    seen = holdout.seen.contains(users, recommendations)
    return candidates.remove_seen(recommendations, seen, n)


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


def read_knn_transform_output(lines: list[str] | str, n: int | None = None) -> np.ndarray:
    """KNN batch transform, `application/jsonlines; verbose=true`: one line per input record.

    The service documents ascending distance; with INNER_PRODUCT the best item comes last. Rank
    explicitly by score (largest inner product first, ties by item index) instead of trusting
    the order. n=None keeps every neighbour (the transform's k): the like-for-like rule needs
    the full width.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    ranked = []
    for line in lines:
        if line.strip():
            row = json.loads(line)
            labels = np.asarray(row["labels"], dtype=np.float64).astype(np.int64)
            ranked.append(candidates.rank_by_score(labels, row["distances"])[:n])
    return _matrix(ranked, n)


def _matrix(rows: list[np.ndarray | list[int]], n: int | None) -> np.ndarray:
    """Rows of item indices as an (len(rows), n) matrix padded with -1; n=None: the widest row."""
    width = max((len(row) for row in rows), default=0) if n is None else n
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def read_personalize_batch_output(
    lines: list[str] | str,
    user_index: dict[str, int],
    item_index: dict[str, int],
    n: int | None = None,
) -> tuple[np.ndarray, int]:
    """Personalize batch inference output (JSON lines of input/output/error).

    Returns the (n_users, n) matrix (n=None: the widest list, the job's `num_results`) and how
    many recommended items were unknown to the training catalogue (counted, not silently
    dropped). With `scores` in the output, items are ranked by score then item index (the
    leaderboard's one tie-break); without, in the order the service returned."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    rows: list[np.ndarray | list[int]] = [[] for _ in user_index]
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
        known, unknown_here = _known_ranked(row["output"], item_index)
        unknown += unknown_here
        rows[user] = known[:n]
    return _matrix(rows, n), unknown


def _known_ranked(output: dict, item_index: dict[str, int]) -> tuple[np.ndarray, int]:
    """One user's recommended items that the catalogue knows, ranked; and how many it did not."""
    items = [item_index.get(str(i)) for i in output["recommendedItems"]]
    keep = [i for i, item in enumerate(items) if item is not None]
    known = np.asarray([items[i] for i in keep], dtype=np.int64)
    scores = output.get("scores")
    if scores is not None and len(scores) == len(items):
        known = candidates.rank_by_score(known, [scores[i] for i in keep])
    return known, len(items) - len(keep)


# ---------------------------------------------------------------------------------------------
# report


BASELINE = "popularity"
SEEN_REMOVED = ", seen removed"
REPORT_METRICS = ("ndcg", "precision", "recall")  # per K, in the leaderboard table


@dataclass(frozen=True)
class Source:
    """What produced a list of recommendations, as the leaderboard names it."""

    name: str
    source: str  # "personalize", "fm-knn" or "popularity"
    solution: str | None = None
    recipe: str | None = None


@dataclass
class RunContext:
    """run.json, written by the workflow before evaluation (recops' issue-9 interfaces): the
    batch jobs that produced output, what was not scored and why, what failed, and
    Personalize's own solution metrics (another split: reported beside, never ranked)."""

    run: str | None = None
    batch_jobs: list[dict] = field(default_factory=list)
    not_scored: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    solution_metrics: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path | None) -> RunContext:
        """The file's context; an empty one without a file (a run outside the workflow)."""
        if path is None:
            return cls()
        raw = json.loads(path.read_text())
        return cls(
            raw.get("run"),
            list(raw.get("batchJobs", [])),
            list(raw.get("notScored", [])),
            list(raw.get("failed", [])),
            dict(raw.get("solutionMetrics", {})),
        )

    def personalize_source(self, batch_key: str) -> Source:
        job = next((j for j in self.batch_jobs if j.get("batchJob") == batch_key), {})
        return Source(
            f"personalize ({batch_key})", "personalize", job.get("solution"), job.get("recipe")
        )


def ranked_by(k_values: list[int]) -> str:
    """NDCG@10, the usual headline figure, when 10 is a K; else NDCG at the largest K."""
    return "ndcg@10" if 10 in k_values else f"ndcg@{max(k_values)}"


def leaderboard(
    results: dict[str, dict[str, float]], sources: dict[str, Source], metric: str
) -> list[dict]:
    """Every scored list, best first by `metric`; each against the popularity baseline of the
    same seen-handling (a list with seen items removed only competes with a baseline that had
    them removed too)."""
    entries = []
    for name, metrics in results.items():
        seen_removed = name.endswith(SEEN_REMOVED)
        base = name.removesuffix(SEEN_REMOVED)
        source = Source(BASELINE, BASELINE) if base == BASELINE else sources[base]
        baseline = results.get(BASELINE + SEEN_REMOVED if seen_removed else BASELINE, {})
        entries.append(
            {
                "name": name,
                "source": source.source,
                "solution": source.solution,
                "recipe": source.recipe,
                "seenRemoved": seen_removed,
                "metrics": metrics,
                "beatsBaseline": base != BASELINE
                and metrics.get(metric, 0.0) > baseline.get(metric, 0.0),
            }
        )
    return sorted(entries, key=lambda e: -e["metrics"].get(metric, 0.0))


def metrics_document(
    results: dict[str, dict[str, float]],
    k_values: list[int],
    sources: dict[str, Source],
    context: RunContext,
    cut: candidates.Candidates | None = None,
    cold: candidates.ColdStart | None = None,
) -> dict:
    """metrics.json, version 2; `results` keeps the version-1 map (name -> metrics). With them,
    `candidates` says how the lists were cut and `coldStart` what training never saw."""
    metric = ranked_by(k_values)
    # the headline baseline: the stronger one, seen items removed, whenever it was scored
    baseline = BASELINE + SEEN_REMOVED if BASELINE + SEEN_REMOVED in results else BASELINE
    return {
        "version": 2,
        "run": context.run,
        "status": "PARTIAL" if context.failed else "COMPLETE",
        "kValues": list(k_values),
        "rankedBy": metric,
        "baseline": baseline,
        "leaderboard": leaderboard(results, sources, metric),
        "notScored": context.not_scored,
        "failed": context.failed,
        "solutionMetrics": context.solution_metrics,
        "results": results,
        "candidates": cut.document() if cut is not None else None,
        "coldStart": cold.document() if cold is not None else None,
    }


def write_report(document: dict, directory: Path) -> None:
    """metrics.json, and report.html: the leaderboard, what was not scored, what failed, then
    one bar chart per metric against the baseline."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(document, indent=2))
    page = f"""<!doctype html><meta charset="utf-8"><title>recops evaluation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
td.text,th.text{{text-align:left}}.ranked{{font-weight:bold}}
.row{{display:flex;align-items:center;margin:2px 0}}.name{{width:260px}}
.bar{{display:inline-block;height:14px;background:#3b7dd8;margin-right:6px}}
.base{{background:#999}}.value{{font-family:monospace}}</style>
<h1>Offline evaluation</h1>
<p>Run {html.escape(str(document["run"] or "outside a workflow"))}: {document["status"]}.
Per-user temporal holdout; metrics averaged over users with a held-out item.
Ranked by {document["rankedBy"]}; &#10003;: beats the popularity baseline of the same
seen-handling. Grey bars: the popularity baseline. <code>aws_*</code>: the AWS temporal-holdout
notebook's definitions (not comparable with the standard NDCG).</p>
{_leaderboard_table(document)}
{_candidates_section(document.get("candidates"))}
{_cold_start_section(document.get("coldStart"))}
{_not_scored_section(document["notScored"])}
{_failed_section(document["failed"])}
<h2>Every metric</h2>
{_charts(document["results"], document["kValues"])}
{_solution_metrics_section(document["solutionMetrics"])}
"""
    (directory / "report.html").write_text(page)


def _leaderboard_table(document: dict) -> str:
    metric = document["rankedBy"]
    columns = [f"{m}@{k}" for k in document["kValues"] for m in REPORT_METRICS]
    columns = [c for c in columns if c != metric]
    head = "".join(f"<th>{c}</th>" for c in [metric, *columns])
    rows = []
    for rank, entry in enumerate(document["leaderboard"], 1):
        values = entry["metrics"]
        mark = "baseline" if entry["source"] == BASELINE else "&#10003;" * entry["beatsBaseline"]
        rows.append(
            f'<tr><td>{rank}</td><td class="text">{html.escape(entry["name"])}</td>'
            f'<td class="text">{html.escape(entry["recipe"] or "")}</td>'
            f'<td class="ranked">{values.get(metric, 0.0):.4f}</td>'
            + "".join(f"<td>{values.get(c, 0.0):.4f}</td>" for c in columns)
            + f'<td class="text">{mark}</td></tr>'
        )
    return (
        '<h2>Leaderboard</h2><table><tr><th>rank</th><th class="text">name</th>'
        f'<th class="text">recipe</th>{head}<th class="text">beats baseline</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _candidates_section(cut: dict | None) -> str:
    """How every list was cut, and the users whose list could not be refilled to K."""
    if cut is None:
        return ""
    widths = ", ".join(f"{html.escape(n)} {w}" for n, w in cut["sourceWidths"].items())
    unfilled = "".join(
        f"<li>{html.escape(name)}: {count:,}</li>" for name, count in cut["unfilledUsers"].items()
    )
    return (
        "<h2>Candidates</h2><p>Every source read at its full width "
        f"({widths or 'popularity only'}); seen items removed from the same "
        f"{cut['width']} candidates before the cut to {cut['cutTo']}; ties: "
        f"{html.escape(cut['tieBreak'])}.</p><p>Users whose list could not be refilled to "
        f"{cut['cutTo']} unseen items:</p><ul>{unfilled or '<li>none</li>'}</ul>"
    )


def _cold_start_section(cold: dict | None) -> str:
    if cold is None:
        return ""
    return f"<h2>Cold start</h2><p>{cold_start_line(cold)}: no recommender trained on them.</p>"


def cold_start_line(cold: dict) -> str:
    """The holdout's cold start in one sentence."""
    return (
        f"{cold['users']:,} of {cold['evalUsers']:,} holdout users and {cold['items']:,} of "
        f"{cold['holdoutItems']:,} held-out items ({cold['interactions']:,} of "
        f"{cold['holdoutInteractions']:,} interactions) never seen in training"
    )


def _listing(title: str, entries: list[dict], describe) -> str:
    items = "".join(f"<li>{describe(e)}</li>" for e in entries) or "<li>none</li>"
    return f"<h2>{title}</h2><ul>{items}</ul>"


def _not_scored_section(entries: list[dict]) -> str:
    return _listing(
        "Not scored",
        entries,
        lambda e: (
            f"<b>{html.escape(str(e.get('solution')))}</b> "
            f"({html.escape(str(e.get('recipe')))}): {html.escape(str(e.get('why')))}"
        ),
    )


def _failed_section(entries: list[dict]) -> str:
    return _listing(
        "Failed",
        entries,
        lambda e: (
            f"<b>{html.escape(str(e.get('solution')))}</b>: "
            f"{html.escape(str(e.get('error')))}: {html.escape(str(e.get('cause')))}"
        ),
    )


def _charts(results: dict[str, dict[str, float]], k_values: list[int]) -> str:
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
            f'<span class="bar{" base" if name.startswith(BASELINE) else ""}" '
            f'style="width:{300 * r.get(metric, 0.0) / top:.1f}px"></span>'
            f'<span class="value">{r.get(metric, 0.0):.4f}</span></div>'
            for name, r in results.items()
        )
        charts.append(f"<h3>{metric}</h3>{bars}")
    return "".join(charts)


def _solution_metrics_section(solution_metrics: dict[str, dict]) -> str:
    if not solution_metrics:
        return ""
    rows = "".join(
        f"<li><b>{html.escape(name)}</b>: "
        + ", ".join(f"{html.escape(k)}={v:.4f}" for k, v in sorted(values.items()))
        + "</li>"
        for name, values in solution_metrics.items()
    )
    return (
        "<h2>Personalize's own solution metrics</h2><p>From GetSolutionMetrics, on Personalize's "
        "own split (not this holdout): not comparable with the table above.</p>"
        f"<ul>{rows}</ul>"
    )


def print_leaderboard(document: dict) -> None:
    """The leaderboard in the job's log: the standard figures and the AWS-definition ones (the
    published temporal-holdout table's), then how lists were cut and the cold start."""
    metric = document["rankedBy"]
    k = metric.split("@")[1]
    shown = [f"precision@{k}", "aws_mrr", f"aws_precision@{k}", f"aws_ndcg@{k}"]
    print(f"evaluate: {document['status']}, ranked by {metric}")
    for rank, entry in enumerate(document["leaderboard"], 1):
        mark = (
            "baseline" if entry["source"] == BASELINE else "beats baseline" * entry["beatsBaseline"]
        )
        values = entry["metrics"]
        figures = "  ".join(f"{m}={values.get(m, 0.0):.4f}" for m in [metric, *shown])
        print(f"{rank:3d}  {entry['name']:48s} {entry['recipe'] or '':32s} {figures}  {mark}")
    _print_candidates(document.get("candidates"), document.get("coldStart"))
    for entry in document["notScored"]:
        print(f"not scored: {entry.get('solution')} ({entry.get('recipe')}): {entry.get('why')}")
    for entry in document["failed"]:
        print(f"failed: {entry.get('solution')}: {entry.get('error')}: {entry.get('cause')}")


def _print_candidates(cut: dict | None, cold: dict | None) -> None:
    if cut is not None:
        widths = ", ".join(f"{n} {w}" for n, w in cut["sourceWidths"].items())
        print(
            f"candidates: {cut['width']} for every list ({widths or 'popularity only'}), seen "
            f"items removed before the cut to {cut['cutTo']}; ties: {cut['tieBreak']}"
        )
        for name, count in cut["unfilledUsers"].items():
            if count:
                print(f"not refilled to {cut['cutTo']}: {name}: {count:,} users")
    if cold is not None:
        print(f"cold start: {cold_start_line(cold)}")


# ---------------------------------------------------------------------------------------------
# job entry point


def load_holdout(
    prepared: Path, interactions: Path | None = None
) -> tuple[Holdout, dict[str, int], dict[str, int]]:
    """From prep's outputs: maps, training interactions (the Personalize import file, by default
    where prep writes it under its output) and the holdout. Ids are read as the text prep wrote,
    without pandas' NA list: an id "NA" stays "NA" (prep drops the ids it treats as missing)."""
    users = _read_ids(prepared / "maps" / "users.csv", "index", "USER_ID")
    items = _read_ids(prepared / "maps" / "items.csv", "index", "ITEM_ID")
    user_index = dict(zip(users["USER_ID"], users["index"], strict=True))
    item_index = dict(zip(items["ITEM_ID"], items["index"], strict=True))
    pairs = ("USER_ID", "ITEM_ID")
    train = _read_ids(interactions or prepared / "personalize" / "interactions.csv", *pairs)
    held = _read_ids(prepared / "evaluation" / "holdout.csv", *pairs)
    holdout = Holdout(
        n_users=len(users),
        n_items=len(items),
        holdout_user=held["USER_ID"].map(user_index).to_numpy(np.int64),
        holdout_item=held["ITEM_ID"].map(item_index).to_numpy(np.int64),
        train_user=train["USER_ID"].map(user_index).to_numpy(np.int64),
        train_item=train["ITEM_ID"].map(item_index).to_numpy(np.int64),
    )
    return holdout, user_index, item_index


def _read_ids(path: Path, *columns: str) -> pd.DataFrame:
    text = {c: str for c in columns if c != "index"}
    return pd.read_csv(path, usecols=list(columns), dtype=text, keep_default_na=False)


def evaluate_sources(
    holdout: Holdout,
    sources: dict[str, np.ndarray],
    k_values: list[int],
    *,
    with_exclude_seen: bool = True,
) -> dict[str, dict[str, float]]:
    """Score each source and the popularity baseline, with and without already-seen items."""
    return evaluate_like_for_like(holdout, sources, k_values, with_exclude_seen=with_exclude_seen)[
        0
    ]


def evaluate_like_for_like(
    holdout: Holdout,
    sources: dict[str, np.ndarray],
    k_values: list[int],
    *,
    with_exclude_seen: bool = True,
) -> tuple[dict[str, dict[str, float]], candidates.Candidates]:
    """`evaluate_sources`, and how the lists were cut. Each source at its full width; popularity
    gets the same C candidates; seen items leave the C candidates before the cut to the largest
    K (training/candidates.py); unfillable users are counted among the users scored."""
    n = max(k_values)
    widths = {name: candidates.list_width(recs) for name, recs in sources.items()}
    cut = candidates.Candidates(candidates.candidate_width(widths, n), widths, n)
    ranking = popularity_ranking(holdout, min(holdout.n_items, cut.width))
    everything = {BASELINE: broadcast(ranking, holdout.n_users), **sources}
    results = {}
    for name, recs in everything.items():
        results[name] = score(recs[:, :n], holdout, k_values)
    if with_exclude_seen:
        for name, recs in everything.items():
            kept, unfilled = exclude_seen_counted(recs[:, : cut.width], holdout, n)
            results[name + SEEN_REMOVED] = score(kept, holdout, k_values)
            cut.unfilled_users[name + SEEN_REMOVED] = int(unfilled[holdout.eval_users].sum())
    return results, cut


def _read_outputs(path: Path) -> str | None:
    """A batch output file, or every `*.out` file of a folder; None when there is none."""
    if path.is_file():
        return path.read_text()
    files = sorted(path.glob("*.out")) if path.is_dir() else []
    # one record per line: a file without a final newline must not merge into the next
    return "".join(p.read_text().rstrip("\n") + "\n" for p in files) if files else None


def collect_sources(
    args: argparse.Namespace,
    context: RunContext,
    user_index: dict[str, int],
    item_index: dict[str, int],
    n: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Source], list[dict]]:
    """Each given output read as an (n_users, n) matrix (n=None: at its full width, as the
    like-for-like rule needs), with what produced it. A batch job of the run context without
    output (none given, or no file) is a failure, not a row of zeros."""
    lists, sources, failed = {}, {}, []
    for path in args.knn_output:
        single = len(args.knn_output) == 1
        source = Source("fm-knn" if single else f"fm-knn ({path.name})", "fm-knn")
        text = _read_outputs(path)
        if text is None:  # a failed row, as a batch job without output: the others still rank
            failed.append(_no_output(source, f"no KNN batch transform output (*.out) under {path}"))
            continue
        recs = read_knn_transform_output(text, n)
        if len(recs) != len(user_index):
            failed.append(
                _no_output(
                    source,
                    f"the KNN transform output has {len(recs)} lines for {len(user_index)} "
                    "users: the transform did not score every user row",
                )
            )
            continue
        lists[source.name], sources[source.name] = recs, source
    given = {path.name for path in args.personalize_output}
    for path in args.personalize_output:
        source = context.personalize_source(path.name)
        text = _read_outputs(path)
        if text is None:
            failed.append(_no_output(source, f"no batch inference output (*.out) under {path}"))
            continue
        recs, unknown = read_personalize_batch_output(text, user_index, item_index, n)
        if unknown:
            print(
                f"evaluate: {unknown} recommended items from {path.name} are not in the catalogue"
            )
        lists[source.name], sources[source.name] = recs, source
    for job in context.batch_jobs:
        if job.get("batchJob") not in given:
            source = context.personalize_source(job.get("batchJob"))
            failed.append(_no_output(source, "its output was not given to evaluate"))
    return lists, sources, failed


def _no_output(source: Source, cause: str) -> dict:
    return {"solution": source.solution or source.name, "error": "NoBatchOutput", "cause": cause}


def publish_recommendations(
    args: argparse.Namespace, user_index: dict[str, int], item_index: dict[str, int]
) -> None:
    """The FM → KNN product output: every neighbour the transform returned, with original ids."""
    if len(args.knn_output) != 1:
        raise ValueError("--recommendations-output needs exactly one --knn-output")
    text = _read_outputs(args.knn_output[0]) or ""
    users = sorted(user_index, key=user_index.__getitem__)
    items = sorted(item_index, key=item_index.__getitem__)
    counts = recommendations.write_recommendations(args.recommendations_output, text, users, items)
    print(
        f"evaluate: top-K of {counts['users']:,} users ({counts['rows']:,} rows) written to "
        f"{args.recommendations_output}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    processing = Path("/opt/ml/processing")
    parser = argparse.ArgumentParser(prog="python -m training.evaluate")
    parser.add_argument("--prepared", type=Path, default=processing / "input" / "prepared")
    parser.add_argument(
        "--interactions",
        type=Path,
        help="the training interactions (default: <prepared>/personalize/interactions.csv)",
    )
    parser.add_argument("--knn-output", type=Path, action="append", default=[])
    parser.add_argument(
        "--recommendations-output",
        type=Path,
        help="write the KNN output's top-K with the original ids here (training.recommendations)",
    )
    parser.add_argument(
        "--personalize-output",
        type=Path,
        action="append",
        default=[],
        help="one batch job's output folder, named by its batch key (repeat per job)",
    )
    parser.add_argument(
        "--run-context", type=Path, help="run.json: batch jobs, not scored, failed, metrics"
    )
    parser.add_argument("--k", type=int, action="append", dest="k_values")
    parser.add_argument("--output", type=Path, default=processing / "output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"evaluate failed: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    k_values = sorted(set(args.k_values or [5, 10, 25]))
    context = RunContext.read(args.run_context)
    holdout, user_index, item_index = load_holdout(args.prepared, args.interactions)
    lists, sources, missing = collect_sources(args, context, user_index, item_index, None)
    context.failed = [*context.failed, *missing]
    scored_knn = any(source.source == "fm-knn" for source in sources.values())
    if args.recommendations_output is not None and scored_knn:
        publish_recommendations(args, user_index, item_index)
    results, cut = evaluate_like_for_like(holdout, lists, k_values)
    document = metrics_document(results, k_values, sources, context, cut, holdout.cold_start)
    write_report(document, args.output)
    print_leaderboard(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the `recops` command shows a run: leaderboard, status and cost, with rich.

Functions take the data (metrics.json, DescribeExecution, a priced run) and a rich Console, so
what the command prints is decided here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from recops.prices import RunCost, usd
from recops.runs import readable_cause

# The per-user metrics (notes/metrics.md) shown beside the ranking one, at its K, so a table
# fits a terminal; coverage, the AWS-notebook variants (aws_*) and the other Ks are in
# metrics.json (`recops report --json`) and report.html.
METRIC_ORDER = ("ndcg", "precision", "recall", "hit", "mrr")


def shown_metrics(metrics: dict[str, Any]) -> list[str]:
    """The ranking metric first, then the other standard metrics at the same K."""
    ranked_by = metrics.get("rankedBy") or "ndcg@10"
    k = ranked_by.rpartition("@")[2]
    present = {m for entry in metrics.get("leaderboard", []) for m in entry.get("metrics", {})}
    others = [f"{m}@{k}" for m in METRIC_ORDER if f"{m}@{k}" in present]
    return [ranked_by] + [m for m in others if m != ranked_by]


def leaderboard(console: Console, metrics: dict[str, Any]) -> None:
    """metrics.json v2: the leaderboard, then what was not scored and what failed."""
    metrics = as_v2(metrics)
    columns = shown_metrics(metrics)
    title = (
        f"Leaderboard, run {metrics.get('run') or '?'} ({metrics.get('status', '?')}): "
        f"ranked by {columns[0]}; baseline: {metrics.get('baseline') or 'none'}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    for header in ("name", "recipe"):
        table.add_column(header, overflow="fold")  # wrapped, never cut short
    for header in columns:
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for header in ("seen removed", "beats baseline"):
        table.add_column(header, max_width=8)  # yes/no/baseline: the header wraps instead
    for rank, entry in enumerate(metrics["leaderboard"], start=1):
        values = entry.get("metrics", {})
        table.add_row(
            str(rank),
            entry["name"],
            entry.get("recipe") or entry.get("source") or "",
            *(f"{values[m]:.4f}" if m in values else "" for m in columns),
            "yes" if entry.get("seenRemoved") else "no",
            _beats(entry),
        )
    console.print(table)
    for item in metrics.get("notScored", []):
        console.print(f"not scored: {item['solution']} ({item['recipe']}): {item['why']}")
    for item in metrics.get("failed", []):
        console.print(f"failed: {item['solution']}: {item['error']}: {item.get('cause', '')}")


def _beats(entry: dict[str, Any]) -> str:
    if entry.get("source") == "popularity":
        return "baseline"
    beats = entry.get("beatsBaseline")
    return "" if beats is None else ("yes" if beats else "no")


def as_v2(metrics: dict[str, Any]) -> dict[str, Any]:
    """A v1 metrics.json (only `results`) read as a v2 leaderboard ranked by ndcg@10."""
    if metrics.get("version") == 2:
        return metrics
    results = metrics.get("results", {})
    ranked_by = "ndcg@10"
    board = sorted(results, key=lambda n: results[n].get(ranked_by, 0.0), reverse=True)
    return {
        **metrics,
        "rankedBy": ranked_by,
        "leaderboard": [{"name": n, "metrics": results[n]} for n in board],
    }


def execution(console: Console, described: dict[str, Any], run: str, running: list[str]) -> None:
    """Status, times, running states and the failure of a DescribeExecution."""
    rows = [
        ("execution", described["executionArn"]),
        ("run", run),
        ("status", described["status"]),
        ("started", _when(described.get("startDate"))),
        ("stopped", _when(described.get("stopDate"))),
    ]
    if described["status"] == "RUNNING":
        rows.append(("running", ", ".join(running) or "(between states)"))
    if described.get("error"):
        rows.append(("error", described["error"]))
    if described.get("cause"):
        rows.append(("cause", readable_cause(described["cause"])))
    for key, value in rows:
        console.print(f"{key:<10} {value}", soft_wrap=True, highlight=False)


def child(console: Console, described: dict[str, Any], running: list[str]) -> None:
    """One line for the FM → KNN execution a Personalize run started: its status, the states
    running now or the failure, and its ARN."""
    status = described["status"]
    if status == "RUNNING":
        status += f", running {', '.join(running) or '(between states)'}"
    failure = ": ".join(
        part
        for part in (described.get("error"), readable_cause(described.get("cause") or ""))
        if part
    )
    if failure:
        status += f": {failure}"
    console.print(
        f"{'fm-knn':<10} {status} ({described['executionArn']})", soft_wrap=True, highlight=False
    )


def quantity(value: float) -> str:
    """Whole numbers with thousands separators, fractions to four significant digits."""
    if float(value).is_integer() or value >= 100:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "-"


def cost(console: Console, priced: RunCost, title: str, notes: list[str], note_title: str) -> None:
    """A priced run: its lines, total, what bills by the hour, notes and where prices come from."""
    table = Table(title=title, title_justify="left")
    for header, justify in (("item", "left"), ("quantity", "right"), ("USD", "right")):
        table.add_column(header, justify=justify)
    for line in priced.lines:
        mark = "" if line.price.confirmed else " *"
        table.add_row(line.label, f"{quantity(line.quantity)} {line.unit}", usd(line.usd) + mark)
    table.add_row("total", "", usd(priced.total), end_section=True)
    console.print(table)
    for line in priced.hourly:
        console.print(
            f"billed every hour while they exist: {line.label}, {line.quantity:g} {line.unit}: "
            f"{usd(line.usd)}/hour"
        )
    for item in priced.unpriced:
        console.print(f"not priced (no price in recops/prices.json): {item}")
    if notes:
        console.print(f"{note_title}:")
        for note in notes:
            console.print(f"  - {note}", soft_wrap=True)
    table_info = priced.table
    console.print(
        f"{table_info.region} list prices in {table_info.currency}, read {table_info.read} "
        "(recops/prices.json); * = figure not confirmed on its page",
        soft_wrap=True,
    )
    for source in sorted({line.price.source for line in priced.lines + priced.hourly}):
        console.print(f"  source: {source}", soft_wrap=True)

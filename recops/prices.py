"""What a run costs, priced from one table (`prices.json`) that every consumer shares.

`recops cost`, the README's "What a run costs" and the run notifications all price usage here,
so a figure is written once, with its source and the day it was read. This module is pure and
standard-library only (no boto3, no pydantic): a Lambda step can bundle it and call
`describe_run_cost(Usage.from_json(...))` for a one-line summary, and tests need no account.

Usage is given in the units AWS bills (training hours, GB, recommendations, instance seconds);
measuring it from an execution or estimating it from a config is `recops.costs`'s job.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
JOB_KINDS = ("processing", "training", "transform")
V2_SUFFIX = "-v2"  # recipes billed per interaction and per recommendation, not per hour


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    per: str
    source: str
    read: str
    confirmed: bool
    note: str = ""
    seen_in: str = ""


@dataclass(frozen=True)
class PriceTable:
    region: str
    currency: str
    read: str
    prices: dict[str, Price]

    def sagemaker(self, kind: str, instance_type: str) -> Price | None:
        return self.prices.get(f"sagemaker.{kind}.{instance_type}")


@functools.cache
def load(path: Path = PRICES_FILE) -> PriceTable:
    """The price table; cached, it is read-only data."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    prices = {key: Price(key=key, **entry) for key, entry in raw["prices"].items()}
    return PriceTable(raw["region"], raw["currency"], raw["read"], prices)


def is_v2(recipe: str) -> bool:
    """User-Personalization-v2 and Personalized-Ranking-v2 are billed by volume, not by hour."""
    return recipe.rsplit("/", 1)[-1].endswith(V2_SUFFIX)


# --- usage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SageMakerJob:
    """One SageMaker job: its instances ran `seconds` each (billed per second)."""

    name: str
    kind: str  # one of JOB_KINDS
    instance_type: str
    instance_count: int
    seconds: float


@dataclass(frozen=True)
class Usage:
    """What one run used, in billed units. Plain numbers so it travels as JSON."""

    ingested_gb: float = 0.0
    training_hours: float = 0.0
    v2_training_interactions: int = 0
    batch_recommendations: int = 0
    v2_recommendations: int = 0
    campaign_tps_hours: float = 0.0
    recommender_requests: int = 0
    sagemaker_jobs: tuple[SageMakerJob, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["sagemaker_jobs"] = tuple(SageMakerJob(**j) for j in data.get("sagemaker_jobs", ()))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Standing:
    """What is billed every hour while it exists, whatever the runs do (campaigns, recommenders)."""

    campaign_tps: float = 0.0  # minProvisionedTPS of campaigns on recipes other than -v2
    v2_campaign_tps: float = 0.0  # minProvisionedTPS of campaigns on -v2 recipes
    recommender_rps: float = 0.0  # min_recommendation_requests_per_second of recommenders


# Each usage field: the price that bills it, the quantity one price unit holds, label, unit.
USAGE_LINES = (
    ("ingested_gb", "personalize.ingestion", 1, "Personalize data ingestion", "GB"),
    ("training_hours", "personalize.training_hour", 1, "Personalize training", "training hours"),
    (
        "v2_training_interactions",
        "personalize.v2_training",
        1000,
        "Personalize training, -v2 recipes",
        "interactions",
    ),
    (
        "batch_recommendations",
        "personalize.batch",
        1000,
        "Personalize batch recommendations",
        "recommendations",
    ),
    (
        "v2_recommendations",
        "personalize.v2_requests",
        1000,
        "Personalize recommendations, -v2 recipes",
        "recommendations",
    ),
    (
        "campaign_tps_hours",
        "personalize.campaign_tps_hour",
        1,
        "Personalize campaigns",
        "TPS-hours",
    ),
    (
        "recommender_requests",
        "personalize.recommender_requests",
        1000,
        "Personalize recommenders",
        "requests",
    ),
)
SECONDS_PER_HOUR = 3600
# Each standing field: the price, the price units one unit of it uses per hour, label, unit.
STANDING_LINES = (
    ("campaign_tps", "personalize.campaign_tps_hour", 1, "campaigns", "TPS"),
    (
        "v2_campaign_tps",
        "personalize.v2_requests",
        SECONDS_PER_HOUR / 1000,
        "campaigns, -v2",
        "TPS",
    ),
    (
        "recommender_rps",
        "personalize.recommender_requests",
        SECONDS_PER_HOUR / 1000,
        "recommenders",
        "requests/s",
    ),
)


# --- pricing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    label: str
    quantity: float
    unit: str
    usd: float
    price: Price


@dataclass(frozen=True)
class RunCost:
    lines: list[Line]
    hourly: list[Line]  # USD per hour while they exist
    unpriced: list[str]  # what the table has no price for
    table: PriceTable = field(repr=False)

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def per_hour(self) -> float:
        return sum(line.usd for line in self.hourly)

    @property
    def confirmed(self) -> bool:
        return all(line.price.confirmed for line in self.lines + self.hourly)


def price_run(
    usage: Usage, standing: Standing | None = None, table: PriceTable | None = None
) -> RunCost:
    """Price what a run used (and what stands billed by the hour) with the table."""
    table = table or load()
    lines = []
    for name, key, per, label, unit in USAGE_LINES:
        quantity = getattr(usage, name)
        if quantity:
            price = table.prices[key]
            lines.append(Line(label, quantity, unit, quantity / per * price.usd, price))
    unpriced = []
    for job in usage.sagemaker_jobs:
        price = table.sagemaker(job.kind, job.instance_type)
        hours = job.seconds / SECONDS_PER_HOUR * job.instance_count
        if price is None:
            unpriced.append(f"SageMaker {job.kind} on {job.instance_type} ({job.name})")
            continue
        label = f"SageMaker {job.kind} {job.name} ({job.instance_count} x {job.instance_type})"
        lines.append(Line(label, hours, "instance-hours", hours * price.usd, price))
    hourly = []
    for name, key, price_units, label, unit in STANDING_LINES:
        quantity = getattr(standing or Standing(), name)
        if quantity:
            price = table.prices[key]
            hourly.append(Line(label, quantity, unit, quantity * price_units * price.usd, price))
    return RunCost(lines, hourly, unpriced, table)


def usd(amount: float) -> str:
    """Dollars to the cent; a cost too small to show in cents still shows as one."""
    if 0 < amount < 0.005:
        return "<$0.01"
    return f"${amount:,.2f}"


def provenance(cost: RunCost) -> str:
    table = cost.table
    checked = "" if cost.confirmed else ", some figures unconfirmed"
    return f"{table.region} list prices read {table.read}{checked}"


def describe_run_cost(
    usage: Usage, standing: Standing | None = None, table: PriceTable | None = None
) -> str:
    """One line for a notification: the total, its largest parts, and what bills by the hour."""
    cost = price_run(usage, standing, table)
    parts = sorted(cost.lines, key=lambda line: line.usd, reverse=True)
    shown = ", ".join(f"{line.label} {usd(line.usd)}" for line in parts[:3])
    rest = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    text = f"{usd(cost.total)} ({shown or 'nothing billed'}{rest}; {provenance(cost)})"
    if cost.hourly:
        text += (
            f", plus {usd(cost.per_hour)}/hour while "
            + " and ".join(line.label for line in cost.hourly)
            + " exist"
        )
    if cost.unpriced:
        text += f"; not priced: {', '.join(cost.unpriced)}"
    return text


def markdown_table(table: PriceTable | None = None) -> str:
    """The price table as the README shows it (a test checks the README carries this text)."""
    table = table or load()
    rows = [
        f"| `{p.key}` | {p.usd:g} | {p.per} | [{_link_text(p.source)}]({p.source}), read {p.read} "
        f"| {'yes' if p.confirmed else 'no'} |"
        for p in table.prices.values()
    ]
    header = [
        f"| priced unit | {table.currency} ({table.region}) | per | source | figure confirmed |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(header + rows)


def _link_text(url: str) -> str:
    """`personalize/pricing` for https://aws.amazon.com/personalize/pricing/."""
    return url.split("//", 1)[-1].partition("/")[2].strip("/") or url


README_MARK = "<!-- python -m recops.prices prints this block; tests/test_prices.py checks it -->"


def readme_block() -> str:
    """The README's price table and the demo config's estimate, from the table and the model."""
    from recops import costs  # the config model (pydantic) is needed only here
    from recops.config import load_config

    demo = Path(__file__).resolve().parents[1] / "config" / "movielens-demo.json"
    estimate = costs.estimate(load_config(demo))
    assumptions = "\n".join(f"- {line}" for line in estimate.notes)
    return (
        f"{README_MARK}\n{markdown_table()}\n\n"
        "One run of the demo config (`recops cost`, estimated before anything runs):\n\n"
        f"```\n{describe_run_cost(estimate.usage, estimate.standing)}\n```\n\n"
        f"assuming\n\n{assumptions}\n"
    )


if __name__ == "__main__":
    print(readme_block(), end="")

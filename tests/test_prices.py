"""The price table and what it prices: arithmetic, estimates, the README and notification text."""

import json
import re
import subprocess
import sys

import pytest

from recops import costs, prices
from recops.config import FactorizationMachinesConfig, KnnConfig, load_config, parse_config
from tests.conftest import DEMO_CONFIG, REPO

TABLE = prices.load()


@pytest.fixture
def toy_table(tmp_path):
    """Round figures, so the arithmetic is checked apart from the real ones."""
    entry = {"per": "unit", "source": "https://example.com/p", "read": "2026-01-01"}
    keys = {
        "personalize.ingestion": 1.0,
        "personalize.training_hour": 2.0,
        "personalize.v2_training": 3.0,
        "personalize.batch": 4.0,
        "personalize.v2_requests": 5.0,
        "personalize.campaign_tps_hour": 6.0,
        "personalize.recommender_requests": 7.0,
        "sagemaker.training.ml.c5.xlarge": 8.0,
    }
    raw = {
        "region": "us-east-1",
        "currency": "USD",
        "read": "2026-01-01",
        "prices": {k: {**entry, "usd": v, "confirmed": True} for k, v in keys.items()},
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(raw))
    return prices.load(path)


def test_every_price_names_its_page_its_day_and_whether_it_was_confirmed():
    for price in TABLE.prices.values():
        assert price.usd > 0, price.key
        assert re.fullmatch(
            r"https://aws\.amazon\.com/(personalize|sagemaker)/pricing/", price.source
        )
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price.read)
        assert isinstance(price.confirmed, bool)
        if not price.confirmed:
            assert price.note, f"{price.key}: say why the figure is unconfirmed"
    assert TABLE.region == "us-east-1"
    assert TABLE.currency == "USD"


def test_the_table_prices_the_instance_types_the_config_defaults_use():
    fm, knn = FactorizationMachinesConfig(), KnnConfig()
    for kind, instance_type in (
        ("processing", fm.processing_instance_type),
        ("training", fm.training_instance_type),
        ("training", knn.instance_type),
        ("transform", knn.transform_instance_type),
    ):
        assert TABLE.sagemaker(kind, instance_type), f"no price for {kind} {instance_type}"


def test_the_table_prices_every_personalize_usage_kind():
    keys = {key for _, key, *_ in prices.USAGE_LINES + prices.STANDING_LINES}
    assert keys <= set(TABLE.prices)


def test_a_run_is_priced_unit_by_unit(toy_table):
    usage = prices.Usage(
        ingested_gb=0.5,
        training_hours=3,
        v2_training_interactions=2000,
        batch_recommendations=3000,
        v2_recommendations=1000,
        campaign_tps_hours=2,
        recommender_requests=4000,
        sagemaker_jobs=(prices.SageMakerJob("fm", "training", "ml.c5.xlarge", 2, 1800),),
    )
    cost = prices.price_run(usage, table=toy_table)
    by_label = {line.label: line.usd for line in cost.lines}
    assert by_label == {
        "Personalize data ingestion": 0.5 * 1,
        "Personalize training": 3 * 2,
        "Personalize training, -v2 recipes": 2 * 3,
        "Personalize batch recommendations": 3 * 4,
        "Personalize recommendations, -v2 recipes": 1 * 5,
        "Personalize campaigns": 2 * 6,
        "Personalize recommenders": 4 * 7,
        "SageMaker training fm (2 x ml.c5.xlarge)": 1.0 * 8,  # 2 instances x half an hour
    }
    assert cost.total == pytest.approx(sum(by_label.values()))
    assert cost.hourly == []
    assert cost.confirmed


def test_standing_resources_are_priced_per_hour(toy_table):
    standing = prices.Standing(campaign_tps=2, v2_campaign_tps=1, recommender_rps=1)
    cost = prices.price_run(prices.Usage(), standing, table=toy_table)
    assert [(line.label, line.usd) for line in cost.hourly] == [
        ("campaigns", 2 * 6),
        ("campaigns, -v2", 3.6 * 5),  # 1 TPS = 3,600 requests an hour
        ("recommenders", 3.6 * 7),
    ]
    assert cost.total == 0
    assert cost.per_hour == pytest.approx(12 + 18 + 25.2)


def test_an_instance_type_without_a_price_is_named_not_guessed():
    job = prices.SageMakerJob("prep", "processing", "ml.banana.xlarge", 1, 60)
    cost = prices.price_run(prices.Usage(sagemaker_jobs=(job,)))
    assert cost.lines == []
    assert cost.unpriced == ["SageMaker processing on ml.banana.xlarge (prep)"]
    assert "not priced: SageMaker processing on ml.banana.xlarge (prep)" in (
        prices.describe_run_cost(prices.Usage(sagemaker_jobs=(job,)))
    )


def test_the_notification_line_is_one_line_with_total_parts_and_provenance(toy_table):
    usage = prices.Usage(training_hours=1, ingested_gb=1, v2_recommendations=1000)
    text = prices.describe_run_cost(usage, prices.Standing(campaign_tps=1), table=toy_table)
    assert "\n" not in text
    assert text == (
        "$8.00 (Personalize recommendations, -v2 recipes $5.00, Personalize training $2.00, "
        "Personalize data ingestion $1.00; us-east-1 list prices read 2026-01-01), "
        "plus $6.00/hour while campaigns exist"
    )


def test_the_line_says_when_figures_are_unconfirmed():
    text = prices.describe_run_cost(prices.Usage(training_hours=1))
    assert text == (
        f"{prices.usd(TABLE.prices['personalize.training_hour'].usd)} (Personalize training "
        f"{prices.usd(TABLE.prices['personalize.training_hour'].usd)}; us-east-1 list prices "
        f"read {TABLE.read}, some figures unconfirmed)"
    )


def test_usage_travels_as_json():
    usage = prices.Usage(
        training_hours=1.5,
        sagemaker_jobs=(prices.SageMakerJob("prep", "processing", "ml.m5.xlarge", 1, 90.0),),
    )
    assert prices.Usage.from_json(json.loads(json.dumps(usage.to_json()))) == usage


def test_cents_and_less():
    assert prices.usd(1234.5) == "$1,234.50"
    assert prices.usd(0.004) == "<$0.01"
    assert prices.usd(0) == "$0.00"


def test_v2_recipes_are_told_apart_by_name_or_arn():
    assert prices.is_v2("aws-user-personalization-v2")
    assert prices.is_v2("arn:aws:personalize:::recipe/aws-personalized-ranking-v2")
    assert not prices.is_v2("arn:aws:personalize:::recipe/aws-user-personalization")


# --- estimates ----------------------------------------------------------------------------------


def test_the_demo_estimate_follows_its_solutions_batch_jobs_and_jobs():
    assumptions = costs.Assumptions(interactions=50_000, users=900, training_hours_per_solution=2)
    estimate = costs.estimate(load_config(DEMO_CONFIG), assumptions)
    usage = estimate.usage
    # user-personalization is -v2; popularity and similar-items train by the hour
    assert usage.v2_training_interactions == 50_000
    assert usage.training_hours == 4
    assert usage.v2_recommendations == 900  # the user-personalization batch job
    assert usage.batch_recommendations == 900  # the popularity batch job
    assert usage.ingested_gb == pytest.approx(50_000 * 40 / 1e9)
    assert [(j.name, j.kind, j.instance_type) for j in usage.sagemaker_jobs] == [
        ("prep", "processing", "ml.m5.xlarge"),
        ("fm", "training", "ml.c5.xlarge"),
        ("fm-to-knn", "processing", "ml.m5.xlarge"),
        ("knn", "training", "ml.m5.large"),
        ("knn-transform", "transform", "ml.m5.large"),
        ("evaluate", "processing", "ml.m5.xlarge"),
    ]
    assert {j.seconds for j in usage.sagemaker_jobs} == {600}
    assert estimate.standing == prices.Standing()
    assert prices.price_run(usage, estimate.standing).unpriced == []
    assert estimate.notes == assumptions.describe()


def test_campaigns_and_recommenders_are_estimated_per_hour():
    raw = json.loads(DEMO_CONFIG.read_text())
    raw["personalize"]["campaigns"] = [
        {"name": "live", "solution": "user-personalization", "min_provisioned_tps": 2},
        {"name": "popular", "solution": "popularity"},
    ]
    raw["factorization_machines"]["enabled"] = False
    estimate = costs.estimate(parse_config(raw))
    assert estimate.standing == prices.Standing(campaign_tps=1, v2_campaign_tps=2)
    assert [j.name for j in estimate.usage.sagemaker_jobs] == ["prep", "evaluate"]


def test_the_readme_shows_the_table_and_the_demo_estimate():
    readme = (REPO / "README.md").read_text()
    block = prices.readme_block()
    assert block in readme, "README is stale: paste `python -m recops.prices` into it"
    for price in TABLE.prices.values():
        assert f"| `{price.key}` | {price.usd:g} |" in block


def test_pricing_and_measuring_need_no_pydantic():
    """A Lambda step can bundle prices.py, costs.py and names.py with boto3 alone."""
    code = (
        "import sys, recops.costs, recops.prices; "
        "assert 'pydantic' not in sys.modules, 'pydantic imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)

"""Personalize tagging and metric attributions (teardown finds resources by their tags)."""

from __future__ import annotations

from tests.localaws.fidelity import Behaviour, refused, rows, until
from tests.test_localaws_personalize import ROLE

API = "https://docs.aws.amazon.com/personalize/latest/dg"


def _active_group(account, name: str, **extra) -> str:
    p = account.client("personalize")
    arn = p.create_dataset_group(name=name, **extra)["datasetGroupArn"]
    until(
        account,
        lambda: p.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]["status"],
        lambda status: status in ("ACTIVE", "CREATE FAILED"),
    )
    return arn


def tags_round_trip(account) -> None:
    p = account.client("personalize")
    arn = _active_group(
        account, "recops-fidelity-tags", tags=[{"tagKey": "recops:stack", "tagValue": "demo"}]
    )
    try:
        assert p.list_tags_for_resource(resourceArn=arn)["tags"] == [
            {"tagKey": "recops:stack", "tagValue": "demo"}
        ]
        p.tag_resource(resourceArn=arn, tags=[{"tagKey": "owner", "tagValue": "ml"}])
        p.untag_resource(resourceArn=arn, tagKeys=["recops:stack"])
        assert p.list_tags_for_resource(resourceArn=arn)["tags"] == [
            {"tagKey": "owner", "tagValue": "ml"}
        ]
        too_many = [{"tagKey": f"k{i}", "tagValue": "v"} for i in range(50)]
        refused(lambda: p.tag_resource(resourceArn=arn, tags=too_many), "TooManyTagsException")
    finally:
        p.delete_dataset_group(datasetGroupArn=arn)
    missing = arn.replace("recops-fidelity-tags", "recops-fidelity-none")
    refused(lambda: p.list_tags_for_resource(resourceArn=missing), "ResourceNotFoundException")


def metric_attributions_one_per_group(account) -> None:
    p = account.client("personalize")
    group = _active_group(account, "attributed")
    config = {"s3DataDestination": {"path": "s3://bucket/metrics/"}, "roleArn": ROLE}
    metric = {"eventType": "watch", "expression": "SUM(DatasetType.INTERACTIONS.EVENT_VALUE)"}
    arn = p.create_metric_attribution(
        name="ma",
        datasetGroupArn=group,
        metrics=[{**metric, "metricName": "WATCHES"}],
        metricsOutputConfig=config,
    )["metricAttributionArn"]
    refused(
        lambda: p.create_metric_attribution(
            name="ma2",
            datasetGroupArn=group,
            metrics=[{**metric, "metricName": "OTHER"}],
            metricsOutputConfig=config,
        ),
        "LimitExceededException",
    )
    listed = p.list_metric_attributions(datasetGroupArn=group)["metricAttributions"]
    assert [m["metricAttributionArn"] for m in listed] == [arn]
    refused(lambda: p.delete_dataset_group(datasetGroupArn=group), "ResourceInUseException")
    account.clock.advance(120)
    assert p.describe_metric_attribution(metricAttributionArn=arn)["metricAttribution"][
        "status"
    ] == ("ACTIVE")
    metrics = p.list_metric_attribution_metrics(metricAttributionArn=arn)["metrics"]
    assert [m["metricName"] for m in metrics] == ["WATCHES"]
    p.delete_metric_attribution(metricAttributionArn=arn)
    account.clock.advance(120)
    p.delete_dataset_group(datasetGroupArn=group)


@rows(
    Behaviour(
        "personalize-tags",
        f"{API}/API_TagResource.html; {API}/tagging-resources.html (50 tags per resource)",
        tags_round_trip,
        aws=True,
    ),
    Behaviour(
        "personalize-metric-attribution",
        f"{API}/API_CreateMetricAttribution.html; {API}/limits.html (one per dataset group)",
        metric_attributions_one_per_group,
    ),
)
def test_personalize_tags_and_attributions(behaviour, account):
    behaviour.check(account)


def list_filters_answers_under_filters(account) -> None:
    p = account.client("personalize")
    group = _active_group(account, "recops-fidelity-filters")
    try:
        arn = p.create_filter(
            name="recops-fidelity-filter",
            datasetGroupArn=group,
            filterExpression='EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")',
        )["filterArn"]
        listed = p.list_filters(datasetGroupArn=group)["Filters"]  # the model's capital F
        assert [f["filterArn"] for f in listed] == [arn]
        until(
            account,
            lambda: p.describe_filter(filterArn=arn)["filter"]["status"],
            lambda status: status in ("ACTIVE", "CREATE FAILED"),
        )
        p.delete_filter(filterArn=arn)
        until(account, lambda: p.list_filters(datasetGroupArn=group)["Filters"], lambda f: not f)
    finally:
        p.delete_dataset_group(datasetGroupArn=group)


@rows(
    Behaviour(
        "personalize-list-filters-member",
        f"{API}/API_ListFilters.html (response member Filters)",
        list_filters_answers_under_filters,
        aws=True,
    ),
)
def test_personalize_lists(behaviour, account):
    behaviour.check(account)

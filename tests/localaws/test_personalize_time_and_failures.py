"""Personalize in the local account: time passes as in the service, failures end as in it."""

from __future__ import annotations

import json

from tests.localaws.fidelity import Behaviour, refused, rows
from tests.test_localaws_personalize import ROLE, SCHEMA, _group_with_interactions, _synthetic_csv

API = "https://docs.aws.amazon.com/personalize/latest/dg"


def _status(p, kind: str, arn: str) -> str:
    call = getattr(p, f"describe_{kind}")
    key = "".join(w.capitalize() if i else w for i, w in enumerate(kind.split("_")))
    return call(**{f"{key}Arn": arn})[key]["status"]


def lifecycle_follows_the_clock(account) -> None:
    p = account.client("personalize")
    arn = p.create_dataset_group(name="clocked")["datasetGroupArn"]
    for _ in range(5):  # looking does not move anything
        assert _status(p, "dataset_group", arn) == "CREATE PENDING"
    assert p.list_dataset_groups()["datasetGroups"][0]["status"] == "CREATE PENDING"
    account.clock.advance(20)
    assert _status(p, "dataset_group", arn) == "CREATE IN_PROGRESS"
    assert p.list_dataset_groups()["datasetGroups"][0]["status"] == "CREATE IN_PROGRESS"
    account.clock.advance(60)
    assert _status(p, "dataset_group", arn) == "ACTIVE"


def deletes_take_time(account) -> None:
    p = account.client("personalize")
    arn = p.create_dataset_group(name="deleting")["datasetGroupArn"]
    account.clock.advance(120)
    p.delete_dataset_group(datasetGroupArn=arn)
    for _ in range(3):
        assert _status(p, "dataset_group", arn) == "DELETE PENDING"
    assert p.list_dataset_groups()["datasetGroups"][0]["status"] == "DELETE PENDING"
    refused(lambda: p.create_dataset_group(name="deleting"), "ResourceAlreadyExistsException")
    account.clock.advance(61)
    refused(lambda: _status(p, "dataset_group", arn), "ResourceNotFoundException")
    assert p.list_dataset_groups()["datasetGroups"] == []


def a_parent_not_yet_active_refuses_children(account) -> None:
    p = account.client("personalize")
    group = p.create_dataset_group(name="young")["datasetGroupArn"]
    schema = p.create_schema(name="young-schema", schema=SCHEMA)["schemaArn"]
    refused(
        lambda: p.create_dataset(
            name="d", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema
        ),
        "ResourceInUseException",
        "CREATE PENDING",
    )
    account.clock.advance(120)
    p.create_dataset(name="d", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema)


def training_takes_about_an_hour(account) -> None:
    p = account.client("personalize")
    group, *_ = _group_with_interactions(account, _synthetic_csv(), name="hour")
    solution = p.create_solution(
        name="s",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
        performAutoTraining=False,
    )["solutionArn"]
    account.clock.advance(60)
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    account.clock.advance(30 * 60)
    assert _status(p, "solution_version", version) == "CREATE IN_PROGRESS"
    latest = p.describe_solution(solutionArn=solution)["solution"]["latestSolutionVersion"]
    assert latest["solutionVersionArn"] == version
    assert latest["status"] == "CREATE IN_PROGRESS"
    account.clock.advance(40 * 60)
    assert _status(p, "solution_version", version) == "ACTIVE"
    latest = p.describe_solution(solutionArn=solution)["solution"]["latestSolutionVersion"]
    assert latest["status"] == "ACTIVE"


def stopping_training_takes_time(account) -> None:
    p = account.client("personalize")
    group, *_ = _group_with_interactions(account, _synthetic_csv(), name="stop")
    solution = p.create_solution(
        name="s", datasetGroupArn=group, recipeArn="arn:aws:personalize:::recipe/aws-sims"
    )["solutionArn"]
    account.clock.advance(60)
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    p.stop_solution_version_creation(solutionVersionArn=version)
    assert _status(p, "solution_version", version) == "CREATE STOPPING"
    account.clock.advance(300)
    assert _status(p, "solution_version", version) == "CREATE STOPPED"
    refused(
        lambda: p.stop_solution_version_creation(solutionVersionArn=version),
        "ResourceInUseException",
    )


def an_import_from_a_missing_bucket_fails_the_job(account) -> None:
    p = account.client("personalize")
    _, _, dataset, _ = _group_with_interactions(account, _synthetic_csv(), name="nob")
    job = p.create_dataset_import_job(
        jobName="from-nowhere",
        datasetArn=dataset,
        roleArn=ROLE,
        dataSource={"dataLocation": "s3://no-such-bucket/interactions.csv"},
    )["datasetImportJobArn"]
    account.clock.advance(3600)
    described = p.describe_dataset_import_job(datasetImportJobArn=job)["datasetImportJob"]
    assert described["status"] == "CREATE FAILED"
    assert "s3://no-such-bucket/interactions.csv" in described["failureReason"]


def _serving_campaign(account, name: str) -> tuple[str, str, str]:
    """A popularity solution, its trained version and an ACTIVE campaign on it (ARNs)."""
    p = account.client("personalize")
    group, *_ = _group_with_interactions(account, _synthetic_csv(), name=name)
    solution = p.create_solution(
        name="s",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
    )["solutionArn"]
    account.clock.advance(60)
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    account.clock.advance(2 * 3600)
    campaign = p.create_campaign(name="c", solutionVersionArn=version)["campaignArn"]
    account.clock.advance(3600)
    return solution, version, campaign


def recommendations_need_the_id_the_recipe_takes(account) -> None:
    runtime = account.client("personalize-runtime")
    _, _, campaign = _serving_campaign(account, "rt")
    refused(
        lambda: runtime.get_recommendations(campaignArn=campaign, itemId="1"),
        "InvalidInputException",
        "userId",
    )
    items = runtime.get_recommendations(campaignArn=campaign, userId="1", numResults=3)
    assert len(items["itemList"]) == 3


PERSONALIZE_TIME = [
    Behaviour(
        "personalize-lifecycle-follows-time",
        f"{API}/API_DescribeDatasetGroup.html (status CREATE PENDING > CREATE IN_PROGRESS > ACTIVE)",
        lifecycle_follows_the_clock,
    ),
    Behaviour(
        "personalize-delete-pending-then-gone",
        f"{API}/API_DeleteDatasetGroup.html; {API}/API_DatasetGroup.html (DELETE PENDING)",
        deletes_take_time,
    ),
    Behaviour(
        "personalize-parent-must-be-active",
        f"{API}/API_CreateDataset.html (ResourceInUseException)",
        a_parent_not_yet_active_refuses_children,
    ),
    Behaviour(
        "personalize-training-takes-time-latest-version",
        f"{API}/API_Solution.html (latestSolutionVersion); {API}/creating-a-solution-version.html",
        training_takes_about_an_hour,
    ),
    Behaviour(
        "personalize-stop-training-takes-time",
        f"{API}/API_StopSolutionVersionCreation.html (CREATE STOPPING > CREATE STOPPED)",
        stopping_training_takes_time,
    ),
    Behaviour(
        "personalize-import-missing-bucket-fails-job",
        f"{API}/API_DatasetImportJob.html (CREATE FAILED with failureReason)",
        an_import_from_a_missing_bucket_fails_the_job,
    ),
    Behaviour(
        "personalize-runtime-needs-the-recipes-id",
        f"{API}/API_RS_GetRecommendations.html (userId required for USER_PERSONALIZATION)",
        recommendations_need_the_id_the_recipe_takes,
    ),
]


@rows(*PERSONALIZE_TIME)
def test_personalize(behaviour, account):
    behaviour.check(account)


def test_faults_reach_a_running_server(server):
    """https://docs.aws.amazon.com/personalize/latest/dg/API_Operations.html (ThrottlingException
    is what a throttled call raises); injected through the CLI, as an end-to-end run would."""
    import boto3
    from botocore.config import Config

    module, env = server
    assert module.main(["faults", "personalize", "throttle", "calls=1"]) == 0
    p = boto3.client(
        "personalize",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="localaws",
        aws_secret_access_key="localaws",
        config=Config(retries={"total_max_attempts": 1}),
    )
    refused(p.list_dataset_groups, "ThrottlingException")
    assert p.list_dataset_groups()["datasetGroups"] == []
    before = p.create_dataset_group(name="timed")["datasetGroupArn"]
    assert module.main(["clock", "advance", "seconds=120"]) == 0
    assert p.describe_dataset_group(datasetGroupArn=before)["datasetGroup"]["status"] == "ACTIVE"
    assert module.main(["faults", "personalize", "no_such_fault"]) == 2


def test_the_fault_cli_lists_what_it_offers(server, capsys):
    module, _ = server
    assert module.main(["faults", "personalize"]) == 0
    offered = json.loads(capsys.readouterr().out)
    assert {"throttle", "fail_next_solution_version", "slow_next"} <= set(offered)
    assert module.main(["faults", "sagemaker"]) == 0
    assert "fail_next" in json.loads(capsys.readouterr().out)


def campaign_updates_have_their_own_lifecycle(account) -> None:
    p = account.client("personalize")
    solution, first, campaign = _serving_campaign(account, "upd")
    second = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    refused(
        lambda: p.update_campaign(campaignArn=campaign, solutionVersionArn=second),
        "ResourceInUseException",
    )
    account.clock.advance(2 * 3600)
    p.update_campaign(campaignArn=campaign, solutionVersionArn=second, minProvisionedTPS=2)
    described = p.describe_campaign(campaignArn=campaign)["campaign"]
    assert described["status"] == "ACTIVE"  # still serving the old version meanwhile
    assert described["solutionVersionArn"] == first
    assert described["latestCampaignUpdate"]["status"] == "CREATE PENDING"
    assert described["latestCampaignUpdate"]["solutionVersionArn"] == second
    refused(
        lambda: p.update_campaign(campaignArn=campaign, minProvisionedTPS=3),
        "ResourceInUseException",
    )
    account.clock.advance(3600)
    described = p.describe_campaign(campaignArn=campaign)["campaign"]
    assert described["latestCampaignUpdate"]["status"] == "ACTIVE"
    assert (described["solutionVersionArn"], described["minProvisionedTPS"]) == (second, 2)


PERSONALIZE_UPDATES = [
    Behaviour(
        "personalize-campaign-update-lifecycle",
        f"{API}/API_UpdateCampaign.html; {API}/API_CampaignUpdateSummary.html",
        campaign_updates_have_their_own_lifecycle,
    ),
]


@rows(*PERSONALIZE_UPDATES)
def test_personalize_updates(behaviour, account):
    behaviour.check(account)

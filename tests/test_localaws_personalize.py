"""Personalize in the local account: lifecycle, errors as the service raises them, faults,
import validation, recipe stand-ins, batch inference, runtime, and Step Functions calling it."""

import json

import boto3
import pytest
from botocore.config import Config
from moto.personalize.responses import PersonalizeResponse

from bench.datasets import synthetic_interactions
from localaws import LocalAccount, clock
from localaws.personalize import backend_for

ROLE = "arn:aws:iam::123456789012:role/personalize"
SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Interactions",
        "namespace": "com.amazonaws.personalize.schema",
        "fields": [
            {"name": "USER_ID", "type": "string"},
            {"name": "ITEM_ID", "type": "string"},
            {"name": "TIMESTAMP", "type": "long"},
        ],
        "version": "1.0",
    }
)


def active(describe, key: str, arn_field: str, arn: str, limit: int = 200) -> dict:
    """Poll as a workflow would, a virtual minute apart."""
    for _ in range(limit):
        resource = describe(**{arn_field: arn})[key]
        if resource["status"] in ("ACTIVE", "CREATE FAILED"):
            return resource
        clock.advance(60)
    raise AssertionError(f"{arn} never became ACTIVE")


@pytest.fixture
def account():
    with LocalAccount() as local:
        yield local


def _group_with_interactions(account, csv_body: bytes, name: str = "dg"):
    p, s3 = account.client("personalize"), account.client("s3")
    group = p.create_dataset_group(name=name)["datasetGroupArn"]
    active(p.describe_dataset_group, "datasetGroup", "datasetGroupArn", group)
    schema = p.create_schema(name=f"{name}-schema", schema=SCHEMA)["schemaArn"]
    dataset = p.create_dataset(
        name=f"{name}-ds", datasetGroupArn=group, datasetType="Interactions", schemaArn=schema
    )["datasetArn"]
    active(p.describe_dataset, "dataset", "datasetArn", dataset)
    s3.create_bucket(Bucket=f"{name}-data")
    s3.put_object(Bucket=f"{name}-data", Key="import/interactions.csv", Body=csv_body)
    job = p.create_dataset_import_job(
        jobName=f"{name}-import",
        datasetArn=dataset,
        roleArn=ROLE,
        dataSource={"dataLocation": f"s3://{name}-data/import/interactions.csv"},
    )["datasetImportJobArn"]
    imported = active(p.describe_dataset_import_job, "datasetImportJob", "datasetImportJobArn", job)
    return group, schema, dataset, imported


def _synthetic_csv() -> bytes:
    frame = synthetic_interactions(n_users=200, n_items=120, n_interactions=6000, seed=5)
    return (
        frame.rename(
            columns={"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
        )[["USER_ID", "ITEM_ID", "TIMESTAMP"]]
        .to_csv(index=False)
        .encode()
    )


def test_the_pinned_moto_has_only_schemas():
    assert hasattr(PersonalizeResponse, "create_schema")
    assert not hasattr(PersonalizeResponse, "create_dataset_group")


def test_lifecycle_follows_the_clock_not_the_describes(account):
    p = account.client("personalize")
    arn = p.create_dataset_group(name="g")["datasetGroupArn"]

    def status() -> tuple[str, str]:
        described = p.describe_dataset_group(datasetGroupArn=arn)["datasetGroup"]["status"]
        (listed,) = [g["status"] for g in p.list_dataset_groups()["datasetGroups"]]
        return described, listed

    assert [status() for _ in range(3)] == [("CREATE PENDING", "CREATE PENDING")] * 3
    account.clock.advance(20)
    assert status() == ("CREATE IN_PROGRESS", "CREATE IN_PROGRESS")
    account.clock.advance(60)
    assert status() == ("ACTIVE", "ACTIVE")
    p.delete_dataset_group(datasetGroupArn=arn)
    assert status() == ("DELETE PENDING", "DELETE PENDING")
    account.clock.advance(61)
    with pytest.raises(p.exceptions.ResourceNotFoundException):
        p.describe_dataset_group(datasetGroupArn=arn)
    assert p.list_dataset_groups()["datasetGroups"] == []


def test_errors_as_the_service_raises_them(account):
    p = account.client("personalize")
    arn = p.create_dataset_group(name="g")["datasetGroupArn"]
    with pytest.raises(p.exceptions.ResourceInUseException, match="CREATE PENDING"):
        p.delete_dataset_group(datasetGroupArn=arn)
    with pytest.raises(p.exceptions.ResourceAlreadyExistsException):
        p.create_dataset_group(name="g")
    with pytest.raises(p.exceptions.ResourceNotFoundException):
        p.describe_solution(solutionArn="arn:aws:personalize:us-east-1:123456789012:solution/none")
    for i in range(4):
        p.create_dataset_group(name=f"g{i}")
    with pytest.raises(p.exceptions.LimitExceededException):
        p.create_dataset_group(name="one-too-many")
    unvalidated = boto3.client(
        "personalize", region_name="us-east-1", config=Config(parameter_validation=False)
    )
    with pytest.raises(  # AWS's wording (Coral validation), not botocore's client-side one
        unvalidated.exceptions.InvalidInputException,
        match="Value null at 'datasetGroupArn' failed to satisfy constraint: Member must not be null",
    ):
        unvalidated.create_solution(name="s", recipeArn="arn:aws:personalize:::recipe/aws-sims")


def test_out_of_order_delete_is_refused(account):
    p = account.client("personalize")
    group, schema, dataset, _ = _group_with_interactions(account, _synthetic_csv())
    with pytest.raises(p.exceptions.ResourceInUseException, match="delete that first"):
        p.delete_dataset_group(datasetGroupArn=group)
    with pytest.raises(p.exceptions.ResourceInUseException):
        p.delete_schema(schemaArn=schema)
    p.delete_dataset(datasetArn=dataset)
    with pytest.raises(p.exceptions.ResourceInUseException, match="DELETE PENDING"):
        p.delete_dataset_group(datasetGroupArn=group)  # the dataset is still being deleted
    assert p.list_datasets(datasetGroupArn=group)["datasets"][0]["status"] == "DELETE PENDING"
    account.clock.advance(60)
    with pytest.raises(p.exceptions.ResourceNotFoundException):
        p.describe_dataset(datasetArn=dataset)
    p.delete_schema(schemaArn=schema)
    p.delete_dataset_group(datasetGroupArn=group)


def test_import_checks_the_csv_against_the_schema(account):
    _, _, _, job = _group_with_interactions(account, b"USER_ID,ITEM_ID\nu1,i1\n")
    assert job["status"] == "CREATE FAILED"
    assert "missing the following columns: ['TIMESTAMP']" in job["failureReason"]
    _, _, _, job = _group_with_interactions(
        account, b"USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,yesterday\n", name="g2"
    )
    assert "Column TIMESTAMP must be long" in job["failureReason"]


def test_throttling_and_failed_solution_versions_can_be_injected(account):
    p = boto3.client(
        "personalize", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
    )
    faults = backend_for().faults
    faults.throttle(2)
    for _ in range(2):
        with pytest.raises(p.exceptions.ClientError, match="ThrottlingException"):
            p.list_dataset_groups()
    assert p.list_dataset_groups()["datasetGroups"] == []
    group, *_ = _group_with_interactions(account, _synthetic_csv())
    solution = p.create_solution(
        name="s",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
    )["solutionArn"]
    active(p.describe_solution, "solution", "solutionArn", solution)
    faults.fail_next_solution_version("injected: out of capacity")
    version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
    failed = active(p.describe_solution_version, "solutionVersion", "solutionVersionArn", version)
    assert failed["status"] == "CREATE FAILED"
    assert failed["failureReason"] == "injected: out of capacity"


def test_recipes_train_serve_and_batch(account):
    p, runtime, s3 = (
        account.client("personalize"),
        account.client("personalize-runtime"),
        account.client("s3"),
    )
    group, *_ = _group_with_interactions(account, _synthetic_csv())
    versions = {}
    for recipe in ("aws-user-personalization-v2", "aws-similar-items", "aws-popularity-count"):
        solution = p.create_solution(
            name=recipe,
            datasetGroupArn=group,
            recipeArn=f"arn:aws:personalize:::recipe/{recipe}",
            performAutoTraining=False,
        )["solutionArn"]
        assert p.describe_solution(solutionArn=solution)["solution"]["performAutoTraining"] is False
        active(p.describe_solution, "solution", "solutionArn", solution)
        version = p.create_solution_version(solutionArn=solution)["solutionVersionArn"]
        assert (
            active(p.describe_solution_version, "solutionVersion", "solutionVersionArn", version)[
                "status"
            ]
            == "ACTIVE"
        )
        versions[recipe] = version
    metrics = p.get_solution_metrics(solutionVersionArn=versions["aws-user-personalization-v2"])[
        "metrics"
    ]
    assert set(metrics) >= {"coverage", "mean_reciprocal_rank_at_25", "precision_at_10"}
    s3.put_object(
        Bucket="dg-data", Key="batch/in/users.json", Body=b'{"userId": "u1"}\n{"userId": "u2"}\n'
    )
    job = p.create_batch_inference_job(
        jobName="batch",
        solutionVersionArn=versions["aws-popularity-count"],
        roleArn=ROLE,
        numResults=7,
        jobInput={"s3DataSource": {"path": "s3://dg-data/batch/in/"}},
        jobOutput={"s3DataDestination": {"path": "s3://dg-data/batch/out/"}},
    )["batchInferenceJobArn"]
    assert (
        active(p.describe_batch_inference_job, "batchInferenceJob", "batchInferenceJobArn", job)[
            "status"
        ]
        == "ACTIVE"
    )
    lines = (
        s3.get_object(Bucket="dg-data", Key="batch/out/users.json.out")["Body"]
        .read()
        .decode()
        .splitlines()
    )
    first = json.loads(lines[0])
    assert first["input"] == {"userId": "u1"}
    assert len(first["output"]["recommendedItems"]) == 7
    assert first["error"] is None
    assert first["localStandIn"] == "popularity count"
    campaign = p.create_campaign(name="c", solutionVersionArn=versions["aws-similar-items"])[
        "campaignArn"
    ]
    active(p.describe_campaign, "campaign", "campaignArn", campaign)
    similar = runtime.get_recommendations(campaignArn=campaign, itemId="i3", numResults=5)[
        "itemList"
    ]
    assert len(similar) == 5
    assert "i3" not in [i["itemId"] for i in similar]
    ranked_campaign = p.create_campaign(
        name="r", solutionVersionArn=versions["aws-user-personalization-v2"]
    )["campaignArn"]
    active(p.describe_campaign, "campaign", "campaignArn", ranked_campaign)
    ranking = runtime.get_personalized_ranking(
        campaignArn=ranked_campaign, userId="u1", inputList=["i1", "i2", "i3"]
    )
    assert sorted(r["itemId"] for r in ranking["personalizedRanking"]) == ["i1", "i2", "i3"]
    scores = [r["score"] for r in ranking["personalizedRanking"]]
    assert scores == sorted(scores, reverse=True)


def test_step_functions_drive_personalize(account):
    from tests.test_localaws_stepfunctions import run

    definition = {
        "StartAt": "Create",
        "States": {
            "Create": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:createDatasetGroup",
                "Parameters": {"Name.$": "$.name"},
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:personalize:describeDatasetGroup",
                "Parameters": {"DatasetGroupArn.$": "$.DatasetGroupArn"},
                "ResultPath": "$.described",
                "Next": "Ready?",
            },
            "Ready?": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.described.DatasetGroup.Status",
                        "StringEquals": "ACTIVE",
                        "Next": "Done",
                    }
                ],
                "Default": "Wait",
            },
            "Wait": {"Type": "Wait", "Seconds": 30, "Next": "Describe"},
            "Done": {"Type": "Succeed"},
        },
    }
    result = run(account, definition, {"name": "from-sfn"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert json.loads(result["output"])["described"]["DatasetGroup"]["Name"] == "from-sfn"

"""The synthesized stack deployed on the local account, its Personalize workflow run end to end on
a slice of MovieLens-100K: a complete run, a re-run that creates nothing new (with throttling on
the way), a run where one recipe fails, and a poll that runs out.

One deployment serves the module; each test starts its own execution.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import pytest

from bench.datasets import movielens_path
from infra.workflows.core import LONG
from localaws import LocalAccount
from localaws.personalize import backend_for
from tests.conftest import REPO
from tests.localaws.machines import finished, history

pytestmark = [pytest.mark.slow, pytest.mark.network]
SLICE_ROWS = 20_000  # ~20% of MovieLens-100K: every recipe trains, the run stays quick


class Deployed:
    def __init__(self, account: LocalAccount, outputs: dict[str, str]) -> None:
        self.account, self.outputs = account, outputs
        self.sfn = account.client("stepfunctions")
        self.s3 = account.client("s3")
        self.personalize = account.client("personalize")
        self.sqs = account.client("sqs")
        self.queue = self._subscribe()

    def _subscribe(self) -> str:
        """A queue on the notification topic, to read what a subscriber is told."""
        url = self.sqs.create_queue(QueueName="notifications")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        self.account.client("sns").subscribe(
            TopicArn=self.outputs["NotificationTopicArn"],
            Protocol="sqs",
            Endpoint=arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def run(
        self,
        payload: dict | None = None,
        timeout: float = 600,
        machine: str = "PersonalizeStateMachineArn",
    ) -> dict:
        started = self.sfn.start_execution(
            stateMachineArn=self.outputs[machine],
            input=json.dumps(payload or {}),
        )
        return finished(self.account, started["executionArn"], timeout)

    def notifications(self, execution: dict, timeout: float = 30, drain: bool = False) -> list[str]:
        """What subscribers were told about this execution's run (delivery is asynchronous);
        `drain`: keep reading until the timeout, to count every message."""
        run = execution["executionArn"].rsplit(":", 1)[1][-12:]
        deadline, found = time.monotonic() + timeout, []
        while (drain or not found) and time.monotonic() < deadline:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
            found += [m["Body"] for m in messages if run in m["Body"]]
        return found

    def report(self, execution: dict) -> dict:
        run = execution["executionArn"].rsplit(":", 1)[1][-12:]
        body = self.s3.get_object(
            Bucket=self.outputs["ArtifactsBucketName"], Key=f"reports/{run}/metrics.json"
        )["Body"].read()
        return json.loads(body)

    def config_owned(self) -> dict[str, list[str]]:
        group = self.personalize.list_dataset_groups()["datasetGroups"]
        found = {"list_dataset_groups": sorted(g["datasetGroupArn"] for g in group)}
        found["list_schemas"] = sorted(
            s["schemaArn"] for s in self.personalize.list_schemas()["schemas"]
        )
        for call, member in (("list_solutions", "solutions"), ("list_datasets", "datasets")):
            listed = getattr(self.personalize, call)(datasetGroupArn=group[0]["datasetGroupArn"])
            found[call] = sorted(
                next(v for k, v in s.items() if k.endswith("Arn")) for s in listed[member]
            )
        return found


@contextlib.contextmanager
def deployed_with_slice(assembly, kind: type[Deployed] = Deployed) -> Iterator[Deployed]:
    """The synthesized stack on a new local account, the MovieLens slice uploaded."""
    lines = movielens_path("ml-100k").read_text().splitlines()
    with LocalAccount() as account:
        outputs = account.deploy(assembly.outdir, assembly.stack_name)
        account.client("s3").put_object(
            Bucket=outputs["DataBucketName"],
            Key="raw/ml-100k/ml-100k.inter",
            Body="\n".join(lines[: SLICE_ROWS + 1]) + "\n",
        )
        yield kind(account, outputs)


@pytest.fixture(scope="module")
def deployed(demo_assembly):
    with deployed_with_slice(demo_assembly) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def first_run(deployed) -> dict:
    started = time.monotonic()
    execution = deployed.run()
    execution["realSeconds"] = time.monotonic() - started
    return execution


def test_a_run_trains_every_recipe_and_ranks_them_against_popularity(deployed, first_run):
    assert first_run["status"] == "SUCCEEDED", first_run.get("cause")
    output = json.loads(first_run["output"])
    assert output["status"] == "COMPLETE"
    report = deployed.report(first_run)
    assert report["status"] == "COMPLETE"
    assert report["failed"] == []
    names = [row["name"] for row in report["leaderboard"]]
    assert "personalize (user-personalization), seen removed" in names
    assert "popularity, seen removed" in names
    assert "fm-knn, seen removed" in names  # the child FM → KNN run, on the same leaderboard
    leader = report["leaderboard"][0]
    assert leader["name"] == "personalize (user-personalization), seen removed"
    assert leader["beatsBaseline"] is True
    assert [n["solution"] for n in report["notScored"]] == ["similar-items"]
    artifacts = deployed.outputs["ArtifactsBucketName"]
    html = deployed.s3.get_object(Bucket=artifacts, Key=f"reports/{output['run']}/report.html")
    assert b"similar-items" in html["Body"].read()  # listed as not scored, with why
    told = deployed.notifications(first_run)
    assert len(told) == 1
    assert "COMPLETE" in told[0]
    assert leader["name"] in told[0]


def test_history_stays_far_below_the_limit(deployed, first_run):
    events = history(deployed.account, first_run["executionArn"])
    assert len(events) < 2_500  # AWS ends an execution at 25,000 events


def test_a_second_run_creates_nothing_new_and_rides_out_throttling(deployed, first_run):
    before = deployed.config_owned()
    versions_before = len(deployed.personalize.list_solution_versions()["solutionVersions"])
    faults = backend_for(region=deployed.account.region).faults
    # 8 throttled DescribeDatasetGroup calls: the Lambda step's botocore gives up after 6, so
    # the state machine's Retry re-runs the step, whose first 2 calls are throttled again
    faults.throttle(8, "DescribeDatasetGroup")
    second = deployed.run()
    assert second["status"] == "SUCCEEDED", second.get("cause")
    assert faults.throttle_next == 0  # every throttled request happened and was retried
    retried = [
        e
        for e in history(deployed.account, second["executionArn"])
        if e["type"] == "TaskFailed"
        and e["taskFailedEventDetails"]["error"] == "ThrottlingException"
    ]
    assert len(retried) == 1
    assert deployed.config_owned() == before
    versions = deployed.personalize.list_solution_versions()["solutionVersions"]
    assert len(versions) == versions_before + 3  # run-owned: one new version per solution
    ensured = [
        json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
        for e in history(deployed.account, second["executionArn"])
        if e["type"] == "TaskSucceeded"
        and e["taskSucceededEventDetails"]["resource"] == "invoke"
        and "created" in e["taskSucceededEventDetails"]["output"]
    ]
    config_owned = [p for p in ensured if ":solution/" in p["arn"] and p["arn"].count("/") == 1]
    assert config_owned
    assert not any(p["created"] for p in config_owned)
    assert len(deployed.notifications(second)) == 1


def test_a_configured_campaign_serves_the_version_this_run_trained(deployed, first_run):
    """Campaigns only when the config lists them; `{"config": ...}` is what `recops start
    --config` sends."""
    config = json.loads((REPO / "config" / "movielens-demo.json").read_text())
    config["personalize"]["campaigns"] = [{"name": "live", "solution": "user-personalization"}]
    run = deployed.run({"config": config})
    assert run["status"] == "SUCCEEDED", run.get("cause")
    [campaign] = deployed.personalize.list_campaigns()["campaigns"]
    described = deployed.personalize.describe_campaign(campaignArn=campaign["campaignArn"])
    assert described["campaign"]["name"] == "recops-demo--live"
    assert described["campaign"]["status"] == "ACTIVE"
    assert described["campaign"]["minProvisionedTPS"] == 1
    version = described["campaign"]["solutionVersionArn"]
    run_id = run["executionArn"][-12:]
    assert deployed.personalize.describe_solution_version(solutionVersionArn=version)[
        "solutionVersion"
    ]["name"].endswith(run_id)
    assert len(deployed.notifications(run)) == 1


def test_one_failing_recipe_leaves_a_partial_leaderboard_and_says_which(deployed, first_run):
    faults = backend_for(region=deployed.account.region).faults
    faults.fail_next_solution_version("AlgorithmError: the model diverged")
    run = deployed.run()
    assert run["status"] == "FAILED"
    assert run["error"] == "RecipesFailed"
    assert "AlgorithmError: the model diverged" in run["cause"]
    report = deployed.report(run)
    assert report["status"] == "PARTIAL"
    [failed] = report["failed"]
    assert "the model diverged" in failed["cause"]
    scored = {row["solution"] for row in report["leaderboard"] if row["solution"]}
    assert failed["solution"] not in scored
    assert len(scored | {failed["solution"]} | {"similar-items"}) == 3
    [told] = deployed.notifications(run)
    assert "PARTIAL" in told
    assert failed["solution"] in told
    assert "the model diverged" in told


def test_a_poll_that_runs_out_fails_naming_the_resource(deployed, first_run):
    faults = backend_for(region=deployed.account.region).faults
    faults.slow_next("datasetImportJob", 60 * 3600)  # longer than the import poll's budget
    run = deployed.run()
    assert run["status"] == "FAILED"
    assert run["error"] == "PollExhausted"
    assert "DatasetImportJob arn:aws:personalize:" in run["cause"]
    assert f"is still CREATE IN_PROGRESS after {LONG.max_polls} polls" in run["cause"]
    assert LONG.budget_hours() < 60
    [told] = deployed.notifications(run)
    assert "FAILED" in told
    assert "PollExhausted" in told


def test_an_uploaded_config_starts_one_run(deployed, first_run):
    """S3 → EventBridge → the trigger Lambda → StartExecution, with the uploaded config."""
    sfn, machine = deployed.sfn, deployed.outputs["PersonalizeStateMachineArn"]
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    config = json.loads((REPO / "config" / "movielens-demo.json").read_text())
    deployed.s3.put_object(
        Bucket=deployed.outputs["DataBucketName"],
        Key="train/movielens.json",
        Body=json.dumps(config).encode(),
    )
    deadline, started = time.monotonic() + 60, []
    while not started and time.monotonic() < deadline:  # the event reaches the trigger async
        time.sleep(0.2)
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        started = [e for e in listed if e["executionArn"] not in before]
    assert len(started) == 1
    run_input = json.loads(sfn.describe_execution(executionArn=started[0]["executionArn"])["input"])
    assert run_input["configObject"]["key"] == "train/movielens.json"
    run = finished(deployed.account, started[0]["executionArn"], 600)
    assert run["status"] == "SUCCEEDED", run.get("cause")
    assert len(deployed.notifications(run)) == 1

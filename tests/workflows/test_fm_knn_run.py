"""The synthesized FM → KNN machine deployed on the local account and run end to end on a slice
of MovieLens-100K (the local account's SageMaker runs the processing entrypoints in the image's
environment, trains the local FM and an exact KNN): top-K for every user and a leaderboard; a
failing training job; a second run that leaves the first intact; and the same machine run as the
Personalize run's child, on one leaderboard.

One deployment serves the module; each test starts its own execution.
"""

from __future__ import annotations

import json

import pytest

from localaws.sagemaker import FAULTS
from tests.conftest import REPO
from tests.workflows.test_personalize_run import Deployed, deployed_with_slice

pytestmark = [pytest.mark.slow, pytest.mark.network]
EPOCHS = 5  # a few epochs on the slice: the run stays quick, FM still beats popularity


def small_config() -> dict:
    config = json.loads((REPO / "config" / "movielens-demo.json").read_text())
    config["factorization_machines"]["epochs"] = EPOCHS
    return config


class FmDeployed(Deployed):
    def run_fm(self, payload: dict | None = None, timeout: float = 600) -> dict:
        return self.run(
            payload or {"config": small_config()}, timeout, machine="FmKnnStateMachineArn"
        )

    def keys(self, prefix: str) -> dict[str, str]:
        """{key: ETag} under the artifacts bucket's prefix."""
        listed = self.s3.list_objects_v2(Bucket=self.outputs["ArtifactsBucketName"], Prefix=prefix)
        return {o["Key"]: o["ETag"] for o in listed.get("Contents", [])}

    def text(self, key: str) -> str:
        body = self.s3.get_object(Bucket=self.outputs["ArtifactsBucketName"], Key=key)["Body"]
        return body.read().decode()


@pytest.fixture(scope="module")
def deployed(demo_assembly):
    with deployed_with_slice(demo_assembly, FmDeployed) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def first_run(deployed) -> dict:
    return deployed.run_fm()


def test_a_run_scores_every_user_and_puts_fm_knn_on_the_leaderboard(deployed, first_run):
    assert first_run["status"] == "SUCCEEDED", first_run.get("cause")
    output = json.loads(first_run["output"])
    run = output["run"]
    manifest = json.loads(
        deployed.s3.get_object(
            Bucket=deployed.outputs["DataBucketName"], Key=f"prepared/{run}/manifest.json"
        )["Body"].read()
    )
    lines = deployed.text(f"predictions/{run}/fm-knn/recommendations.jsonl").splitlines()
    assert len(lines) == manifest["users"]
    first = json.loads(lines[0])
    assert len(first["output"]["recommendedItems"]) == 100  # knn.k of the demo config
    assert first["output"]["scores"] == sorted(first["output"]["scores"], reverse=True)
    users = {json.loads(line)["input"]["userId"] for line in lines}
    assert len(users) == manifest["users"]
    header, *rows = deployed.text(f"predictions/{run}/fm-knn/recommendations.csv").splitlines()
    assert header == "user_id,rank,item_id,score"
    assert len(rows) == 100 * manifest["users"]
    report = deployed.report(first_run)
    assert report["status"] == "COMPLETE"
    board = {row["name"]: row for row in report["leaderboard"]}
    assert board["fm-knn, seen removed"]["beatsBaseline"] is True
    assert set(report["solutionMetrics"]["fm-knn"]) >= {"test:binary_classification_accuracy"}
    training = json.loads(deployed.text(f"runs/{run}/fm-training.json"))
    assert training["job"] == f"recops-demo--fm-{run}"
    assert training["metrics"] == report["solutionMetrics"]["fm-knn"]
    assert training["model"].endswith(f"/models/{run}/fm/recops-demo--fm-{run}/output/model.tar.gz")
    [told] = deployed.notifications(first_run)
    assert "COMPLETE" in told
    assert "fm-knn, seen removed" in told
    assert f"predictions/{run}/fm-knn/recommendations.jsonl" in told
    sagemaker = deployed.account.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []  # scored by batch transform only


def test_a_failing_training_job_fails_the_run_naming_the_job_and_its_reason(deployed, first_run):
    FAULTS.fail_next("training", "ClientError: feature_dim does not match the data")
    run = deployed.run_fm()
    run_id = run["executionArn"][-12:]
    assert run["status"] == "FAILED"
    assert f"Train FM: SageMaker job recops-demo--fm-{run_id} failed: ClientError" in run["cause"]
    assert "feature_dim does not match the data" in run["cause"]
    [told] = deployed.notifications(run)
    assert "FAILED" in told
    assert "Train FM" in told
    assert f"recops-demo--fm-{run_id}" in told
    assert "feature_dim does not match the data" in told
    failure = json.loads(deployed.text(f"runs/{run_id}/fm-knn-failure.json"))
    assert failure["state"] == "Train FM"


def test_a_second_run_writes_its_own_prefix_and_leaves_the_first_intact(deployed, first_run):
    first = json.loads(first_run["output"])["run"]
    before = deployed.keys(f"predictions/{first}/") | deployed.keys(f"reports/{first}/")
    second = deployed.run_fm()
    assert second["status"] == "SUCCEEDED", second.get("cause")
    other = json.loads(second["output"])["run"]
    assert other != first
    assert deployed.keys(f"predictions/{first}/") | deployed.keys(f"reports/{first}/") == before
    assert f"predictions/{other}/fm-knn/recommendations.jsonl" in deployed.keys(
        f"predictions/{other}/"
    )


def test_a_personalize_run_prepares_once_and_ranks_fm_knn_on_its_leaderboard(deployed, first_run):
    config = small_config()
    config["personalize"]["batch_inference"] = [{"solution": "popularity"}]
    config["personalize"]["solutions"] = [{"name": "popularity", "recipe": "aws-popularity-count"}]
    run = deployed.run({"config": config})
    assert run["status"] == "SUCCEEDED", run.get("cause")
    run_id = json.loads(run["output"])["run"]
    fm_runs = deployed.sfn.list_executions(stateMachineArn=deployed.outputs["FmKnnStateMachineArn"])
    [child] = [e for e in fm_runs["executions"] if e["name"].startswith(run_id)]
    assert child["status"] == "SUCCEEDED"
    jobs = deployed.account.client("sagemaker").list_processing_jobs()["ProcessingJobSummaries"]
    preps = [j for j in jobs if j["ProcessingJobName"] == f"recops-demo--prep-{run_id}"]
    assert len(preps) == 1  # prep ran once, for both workflows
    report = deployed.report(run)
    names = {row["name"] for row in report["leaderboard"]}
    assert {"fm-knn, seen removed", "personalize (popularity), seen removed"} <= names
    assert len(deployed.notifications(run)) == 1


def test_a_failing_child_leaves_the_personalize_run_partial(deployed, first_run):
    config = small_config()
    config["personalize"]["batch_inference"] = [{"solution": "popularity"}]
    config["personalize"]["solutions"] = [{"name": "popularity", "recipe": "aws-popularity-count"}]
    FAULTS.fail_next("transform", "ClientError: the model could not be loaded")
    run = deployed.run({"config": config})
    assert run["status"] == "FAILED"
    assert run["error"] == "RecipesFailed"
    assert "fm-knn" in run["cause"]
    report = deployed.report(run)
    assert report["status"] == "PARTIAL"
    [failed] = report["failed"]
    assert failed["solution"] == "fm-knn"
    assert "the model could not be loaded" in failed["cause"]
    assert "personalize (popularity), seen removed" in {r["name"] for r in report["leaderboard"]}
    told = deployed.notifications(run, timeout=5, drain=True)
    assert len(told) == 1  # the parent's PARTIAL; the child's failure is not announced apart
    assert "PARTIAL" in told[0]


def test_a_failing_parent_stops_its_child(deployed, first_run):
    """Nothing trains on for nobody: the parent's failure path stops the FM → KNN child. The
    parent's import fails minutes after it started its child, while the child's FM trains."""
    import time

    from localaws.personalize import backend_for

    faults = backend_for(region=deployed.account.region).faults
    faults.fail_next("datasetImportJob", "Input CSV is missing the ITEM_ID column")
    run = deployed.run({"config": small_config()})
    assert run["status"] == "FAILED"
    assert run["error"] == "ResourceFailed"
    assert "missing the ITEM_ID column" in run["cause"]
    run_id = run["executionArn"][-12:]
    machine = deployed.outputs["FmKnnStateMachineArn"]
    deadline, child = time.monotonic() + 30, None
    while time.monotonic() < deadline:  # a stopped execution ends asynchronously
        listed = deployed.sfn.list_executions(stateMachineArn=machine)["executions"]
        [child] = [e for e in listed if e["name"].startswith(run_id)]
        if child["status"] != "RUNNING":
            break
        time.sleep(0.2)
    assert child["status"] == "ABORTED"
    described = deployed.sfn.describe_execution(executionArn=child["executionArn"])
    assert "its parent run failed" in described["cause"]

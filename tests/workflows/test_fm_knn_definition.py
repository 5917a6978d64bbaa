"""Assertions on the FM → KNN state machine the stack synthesizes (not a hand-written copy):
the order of its states, each job's request, Retry/Catch on every Task, and the IAM its role
gets for the `.sync` integrations."""

from __future__ import annotations

import json

import jsonata
import pytest

from tests.workflows.definitions import jsonata_expressions, machines, states
from tests.workflows.test_personalize_definition import FAILURE_PATH, THROTTLING
from tests.workflows.test_workflow_iam import as_list, policies

RECORDIO = "application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def definition(demo_assembly) -> dict:
    [found] = [d for k, d in machines(demo_assembly.template).items() if k.startswith("FmKnn")]
    return found


@pytest.fixture(scope="module")
def by_name(definition) -> dict[str, dict]:
    return dict(states(definition))


def path(by_name: dict, start: str, choose: dict[str, str] | None = None) -> list[str]:
    """The states visited from `start`, following Next (and `choose` at a Choice)."""
    seen, name = [], start
    while name and name not in seen:
        seen.append(name)
        state = by_name[name]
        if state["Type"] == "Choice":
            name = (choose or {}).get(name, state.get("Default"))
        else:
            name = state.get("Next")
    return seen


def test_a_run_alone_prepares_trains_extracts_indexes_scores_and_evaluates(definition, by_name):
    scored = by_name["Scored?"]["Choices"][0]
    assert scored["Condition"] == "{% $report.status = 'COMPLETE' %}"
    visited = path(by_name, definition["StartAt"], choose={"Scored?": scored["Next"]})
    ordered = [
        "Plan the run",
        "Lay out the run",
        "Write the prep options",
        "Prepare the data",
        "Read the prep manifest",
        "Train FM",
        "Write the FM training metrics",
        "Extract the KNN index",
        "Train KNN",
        "Create the KNN model",
        "Batch transform",
        "Write the run context",
        "Evaluate",
        "Read the leaderboard",
        "Finished: notify",
        "Run complete",
    ]
    assert [s for s in visited if s in ordered] == ordered


def test_a_child_run_skips_plan_prep_and_evaluation(definition, by_name):
    first = by_name[definition["StartAt"]]
    assert first["Type"] == "Choice"
    child = path(
        by_name,
        definition["StartAt"],
        choose={
            definition["StartAt"]: first["Choices"][0]["Next"],
            "Data prepared by the parent?": by_name["Data prepared by the parent?"]["Choices"][0][
                "Next"
            ],
            "Evaluated by the parent?": by_name["Evaluated by the parent?"]["Choices"][0]["Next"],
        },
    )
    assert "parentRun" in first["Choices"][0]["Condition"]
    assert not {"Plan the run", "Prepare the data", "Evaluate"} & set(child)
    assert child[-1] == "Back to the Personalize run"
    assert {"Train FM", "Train KNN", "Batch transform"} <= set(child)


def test_fm_training_request(by_name):
    state = by_name["Train FM"]
    assert state["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    args = state["Arguments"]
    image = args["AlgorithmSpecification"]["TrainingImage"]
    assert image.startswith("<FindInMap:ImagesUris")
    assert image.endswith(".<Ref:AWS::Region>.fm>")
    assert "fromManifest" in args["HyperParameters"]  # feature_dim from prep's manifest
    assert "sagemaker.fm" in args["HyperParameters"]
    channels = {c["ChannelName"]: c for c in args["InputDataConfig"]}
    assert set(channels) == {"train", "test"}
    assert all(c["ContentType"] == RECORDIO for c in channels.values())
    assert "fm/train/" in channels["train"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == (
        "ShardedByS3Key"
    )
    assert args["OutputDataConfig"]["S3OutputPath"] == "{% $paths.fmModels %}"
    assert "spot.enabled" in args["EnableManagedSpotTraining"]
    assert "MaxWaitTimeInSeconds" in args["StoppingCondition"]
    assert "FinalMetricDataList" in state["Assign"]["fm"]


def test_knn_training_and_transform_requests(by_name):
    knn = by_name["Train KNN"]["Arguments"]
    assert knn["AlgorithmSpecification"]["TrainingImage"].endswith(".<Ref:AWS::Region>.knn>")
    assert "sagemaker.knn" in knn["HyperParameters"]
    [train] = knn["InputDataConfig"]
    assert "knnInput" in train["DataSource"]["S3DataSource"]["S3Uri"]
    model = by_name["Create the KNN model"]
    assert model["Resource"].endswith(":states:::sagemaker:createModel")
    assert model["Arguments"]["PrimaryContainer"]["ModelDataUrl"] == "{% $knnModel %}"
    transform = by_name["Batch transform"]
    assert transform["Resource"].endswith(":states:::sagemaker:createTransformJob.sync")
    args = transform["Arguments"]
    assert args["TransformInput"]["SplitType"] == "RecordIO"
    assert args["TransformInput"]["ContentType"] == RECORDIO
    assert args["TransformOutput"]["Accept"] == "application/jsonlines; verbose=true"
    assert args["TransformOutput"]["S3OutputPath"] == "{% $paths.transform %}"
    assert "users/" in args["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    # the name the model state made (a redrive re-runs only the transform, with a new suffix)
    model_state = by_name["Create the KNN model"]
    assert args["ModelName"] == "{% $knnModelName %}"
    assert model_state["Assign"]["knnModelName"] == model_state["Arguments"]["ModelName"]


def test_outputs_land_under_the_artifacts_buckets_run_prefix(by_name):
    lay_out = by_name["Lay out the run"]["Assign"]["paths"]
    for key, prefix in {
        "fmModels": "models/",
        "knnInput": "models/",
        "knnModels": "models/",
        "transform": "predictions/",
        "recommendations": "predictions/",
    }.items():
        [expression] = [p for p in lay_out.split(", '") if p.startswith(f"{key}'")]
        assert "storageartifacts" in expression.lower() or "Artifacts" in expression, expression
        assert f"/{prefix}' & $run.runId" in expression, expression


def test_job_names_are_per_run_and_count_redrives(by_name):
    for name in ("Train FM", "Train KNN", "Batch transform", "Extract the KNN index"):
        args = by_name[name]["Arguments"]
        job = next(v for k, v in args.items() if k.endswith("JobName"))
        assert "$run.runId" in job, name
        assert "RedriveCount" in job, name


def test_every_task_retries_throttling_and_catches_everything(by_name):
    found = {n: s for n, s in by_name.items() if s["Type"] == "Task"}
    assert len(found) >= 15
    for name, state in found.items():
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        caught = {e for c in state.get("Catch", []) for e in c["ErrorEquals"]}
        assert "States.ALL" in caught, name
        if name not in FAILURE_PATH:
            assert retried >= THROTTLING, name
            assert all(any(k.endswith("failure") for k in c["Assign"]) for c in state["Catch"])


def test_every_jsonata_expression_parses(definition):
    found = list(jsonata_expressions(definition))
    assert len(found) > 40
    for expression in found:
        jsonata.Jsonata(expression)


def test_the_role_may_run_only_this_stacks_jobs(demo_assembly):
    statements = [
        s
        for logical_id, s in policies(demo_assembly.template)
        if logical_id.startswith("FmKnnWorkflowRole")
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    for kind in ("Processing", "Training", "Transform"):
        assert {f"sagemaker:Create{kind}Job", f"sagemaker:Describe{kind}Job"} <= actions
        [rule] = [
            s
            for s in statements
            if "events:PutRule" in as_list(s["Action"])
            and f"SageMaker{kind}JobsRule" in json.dumps(s["Resource"])
        ]
        assert set(as_list(rule["Action"])) == {
            "events:PutTargets",
            "events:PutRule",
            "events:DescribeRule",
        }
    for statement in statements:
        text = json.dumps(statement["Resource"])
        if any(a.startswith("sagemaker:") for a in as_list(statement["Action"])):
            assert "recops-demo--*" in text, statement
    passes = [s for s in statements if "iam:PassRole" in as_list(s["Action"])]
    assert passes
    for statement in passes:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }


def test_the_personalize_machine_starts_and_polls_only_the_fm_machine(demo_assembly):
    statements = [
        s
        for logical_id, s in policies(demo_assembly.template)
        if logical_id.startswith("PersonalizeWorkflowRole")
    ]
    start = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
    describe = [s for s in statements if "states:DescribeExecution" in as_list(s["Action"])]
    assert start
    assert describe
    assert all("FmKnnWorkflowMachine" in json.dumps(s["Resource"]) for s in start + describe)

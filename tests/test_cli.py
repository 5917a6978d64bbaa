"""The `recops` command against a local account with a stand-in stack.

The stack is a real CloudFormation stack in `LocalAccount()` with the outputs the product's
stack declares: two buckets, a role and a small state machine as PersonalizeStateMachineArn
(it waits an hour of virtual time, as training does, and writes a v2 metrics.json for its
run the way the evaluation does). The command gets the account's boto3 session as `obj`.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

import boto3
import pytest
from typer.testing import CliRunner

from localaws import LocalAccount
from recops import costs, kms_policy, prices, runs
from recops.cli import app
from tests.conftest import DEMO_CONFIG, REPO
from tests.localaws.sagemaker_jobs import processing, settle
from tests.test_localaws_personalize import ROLE, SCHEMA, _synthetic_csv, active
from tests.workflows.definitions import rendered

STACK = "recops-cli"
DATA_BUCKET = f"{STACK}-data"
ARTIFACTS_BUCKET = f"{STACK}-artifacts"
RUN_OF_EXECUTION = "$substring($states.context.Execution.Name, -12)"

METRICS = {
    "version": 2,
    "run": "RUN",
    "status": "PARTIAL",
    "kValues": [5, 10, 25],
    "rankedBy": "ndcg@10",
    "baseline": "popularity, seen removed",
    "leaderboard": [
        {
            "name": "user-personalization, seen removed",
            "source": "personalize",
            "solution": "user-personalization",
            "recipe": "aws-user-personalization-v2",
            "seenRemoved": True,
            "metrics": {
                "ndcg@10": 0.3125,
                "precision@10": 0.1432,
                "aws_ndcg@10": 0.4,
                "ndcg@5": 0.2,
            },
            "beatsBaseline": True,
        },
        {
            "name": "popularity, seen removed",
            "source": "popularity",
            "solution": None,
            "recipe": None,
            "seenRemoved": True,
            "metrics": {"ndcg@10": 0.1409, "precision@10": 0.0560},
            "beatsBaseline": False,
        },
        {
            "name": "fm-knn",
            "source": "fm-knn",
            "solution": None,
            "recipe": None,
            "seenRemoved": False,
            "metrics": {"ndcg@10": 0.0987, "precision@10": 0.0401},
            "beatsBaseline": False,
        },
    ],
    "notScored": [
        {
            "solution": "similar-items",
            "recipe": "aws-similar-items",
            "why": "aws-similar-items recommends items related to an item",
        }
    ],
    "failed": [
        {
            "solution": "popularity",
            "error": "Personalize.ResourceInUseException",
            "cause": "the solution version failed: not enough interactions",
        }
    ],
    "solutionMetrics": {},
    "results": {},
}


def machine(*states: tuple[str, dict]) -> dict:
    """A JSONata state machine of the given states, in order."""
    names = [name for name, _ in states]
    body = {}
    for (name, state), following in zip(states, [*names[1:], None], strict=True):
        body[name] = {**state, **({"Next": following} if following else {"End": True})}
    if states[-1][1]["Type"] in ("Fail", "Succeed"):
        body[names[-1]].pop("End")
    return {"QueryLanguage": "JSONata", "StartAt": names[0], "States": body}


def writes_metrics(metrics: dict = METRICS) -> dict:
    """A Task that puts metrics.json for the execution's run, as the evaluation does."""
    before, after = json.dumps(metrics).split('"RUN"')
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Arguments": {
            "Bucket": ARTIFACTS_BUCKET,
            "Key": f"{{% 'reports/' & {RUN_OF_EXECUTION} & '/metrics.json' %}}",
            "Body": f"{{% '{before}\"' & {RUN_OF_EXECUTION} & '\"{after}' %}}",
        },
    }


TRAINS_AND_REPORTS = machine(
    ("Plan", {"Type": "Pass"}),
    ("Train", {"Type": "Wait", "Seconds": 3600}),
    ("Evaluate", writes_metrics()),
)
REJECTS_THE_DATA = machine(
    ("Plan", {"Type": "Pass"}),
    (
        "Refused",
        {
            "Type": "Fail",
            "Error": "DataRejectedError",
            "Cause": "data.interactions: 12 interactions; Personalize needs at least 1,000",
        },
    ),
)


def deploy(
    account: LocalAccount, definition: dict, fm_definition: dict | None = None
) -> dict[str, str]:
    """The stand-in stack; its outputs once CREATE_COMPLETE. With `fm_definition`, the stack of
    a recops with both machines (FmKnnStateMachineArn); without, one of an older recops."""
    template = {
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": DATA_BUCKET}},
            "Artifacts": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": ARTIFACTS_BUCKET},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "states.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps(definition),
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                },
            },
        },
        "Outputs": {
            "DataBucketName": {"Value": {"Ref": "Data"}},
            "ArtifactsBucketName": {"Value": {"Ref": "Artifacts"}},
            "PersonalizeStateMachineArn": {"Value": {"Ref": "Machine"}},
            "PersonalizeRoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
            "SageMakerRoleArn": {"Value": "arn:aws:iam::123456789012:role/recops-cli-sagemaker"},
        },
    }
    if fm_definition is not None:
        template["Resources"]["FmMachine"] = {
            **template["Resources"]["Machine"],
            "Properties": {
                **template["Resources"]["Machine"]["Properties"],
                "DefinitionString": json.dumps(fm_definition),
            },
        }
        template["Outputs"]["FmKnnStateMachineArn"] = {"Value": {"Ref": "FmMachine"}}
    cfn = account.client("cloudformation")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    for _ in range(400):
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.02)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


@pytest.fixture
def account():
    with LocalAccount() as local:
        yield local


@pytest.fixture
def outputs(account):
    return deploy(account, TRAINS_AND_REPORTS)


def recops(*args: str):
    """Run the command in-process with the local account's session; wide, uncoloured output."""
    result = CliRunner().invoke(
        app,
        [str(a) for a in args],
        obj=boto3.Session(region_name="us-east-1"),
        env={"COLUMNS": "220"},
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cells(line: str, bar: str) -> list[str]:
    """The cells of one line of a rich table."""
    return [cell.strip() for cell in line.split(bar)[1:-1]]


def executions(account, outputs) -> list[dict]:
    sfn = account.client("stepfunctions")
    machine_arn = outputs["PersonalizeStateMachineArn"]
    return sfn.list_executions(stateMachineArn=machine_arn)["executions"]


def finished(account, arn: str) -> dict:
    sfn = account.client("stepfunctions")
    for _ in range(500):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{arn} still RUNNING")


def started(account, outputs, payload: str = "{}") -> dict:
    """An execution started and run to its end (what `recops start` would have started)."""
    sfn = account.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=outputs["PersonalizeStateMachineArn"], input=payload)
    return finished(account, arn["executionArn"])


# --- the console script -------------------------------------------------------------------------


def test_the_project_installs_a_recops_script_that_runs(tmp_path):
    """What `make install` does (pip, --no-build-isolation, from pyproject.toml), into a folder."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "pyproject.toml", project)
    shutil.copytree(
        REPO / "recops", project / "recops", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "installed"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "--target", str(target), str(project)),
        ],
        check=True,
        capture_output=True,
    )
    script = target / "bin" / "recops"
    assert script.exists()
    shown = subprocess.run(
        [str(script), "--help"],
        env={**os.environ, "PYTHONPATH": str(target), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("start", "status", "report", "cost", "kms-policy"):
        assert command in shown.stdout
    assert (target / "recops" / "prices.json").exists()  # data ships with the package


def test_the_makefile_installs_the_script_with_the_venv():
    makefile = (REPO / "Makefile").read_text()
    assert "install: $(VENV)/.installed $(VENV)/bin/recops" in makefile
    assert "-m pip install --quiet --no-deps --no-build-isolation -e ." in makefile


def test_the_package_pins_what_the_requirements_pin():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"recops": "recops.cli:main"}
    pinned = dict(
        line.split("==")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for requirement in project["dependencies"]:
        name, version = requirement.split("==")
        assert pinned[name] == version, f"{name}: pyproject {version}, constraints {pinned[name]}"


# --- start --------------------------------------------------------------------------------------


def test_start_starts_the_deployed_config_and_prints_where_to_follow_it(account, outputs):
    result = recops("start", "--stack", STACK)
    assert result.exit_code == 0, result.output
    (execution,) = executions(account, outputs)
    arn, run = execution["executionArn"], execution["name"][-12:]
    assert result.output.splitlines() == [
        f"execution  {arn}",
        f"run        {run}",
        "console    https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{arn}",
    ]
    sfn = account.client("stepfunctions")
    assert json.loads(sfn.describe_execution(executionArn=arn)["input"]) == {}


def test_start_with_a_config_sends_the_file_and_names_the_stack_by_its_prefix(
    account, outputs, tmp_path
):
    raw = json.loads(DEMO_CONFIG.read_text())
    raw["prefix"] = STACK
    config = tmp_path / "mine.json"
    config.write_text(json.dumps(raw))
    result = recops("start", "--config", config)
    assert result.exit_code == 0, result.output
    (execution,) = executions(account, outputs)
    described = account.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {"config": raw}


def test_a_refused_config_starts_nothing(account, outputs, tmp_path):
    raw = json.loads(DEMO_CONFIG.read_text())
    raw["prefix"] = STACK
    raw["personalize"]["solutions"][0]["recipe"] = "aws-hrnn"
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(raw))
    result = recops("start", "--config", config)
    assert result.exit_code == 2
    assert f"recops: {config}: 1 problem(s) in the pipeline config:" in result.output
    assert "personalize.solutions.0.recipe: Input should be" in result.output
    assert "(got 'aws-hrnn')" in result.output
    assert executions(account, outputs) == []


def test_a_missing_config_file_starts_nothing(account, outputs, tmp_path):
    result = recops("start", "--config", tmp_path / "nowhere.json", "--stack", STACK)
    assert result.exit_code == 2
    assert result.output.strip() == f"recops: {tmp_path / 'nowhere.json'}: no such config file"
    assert executions(account, outputs) == []


def test_a_config_for_another_stack_starts_nothing(account, outputs):
    result = recops("start", "--config", DEMO_CONFIG, "--stack", STACK)
    assert result.exit_code == 2
    assert "prefix 'recops-demo' is not the stack 'recops-cli'" in result.output
    assert executions(account, outputs) == []


def test_a_stack_that_is_not_there_is_named(account):
    result = recops("start")  # the demo config's stack, not deployed here
    assert result.exit_code == 1
    assert "recops: stack 'recops-demo' does not exist in this account and region" in result.output


def test_start_wait_follows_the_states_and_ends_with_the_leaderboard(account, outputs):
    result = recops("start", "--stack", STACK, "--wait", "--poll-seconds", "0.02")
    assert result.exit_code == 0, result.output
    (execution,) = executions(account, outputs)
    run = execution["name"][-12:]
    lines = result.output.splitlines()
    progress = [line for line in lines if line.startswith("+")]
    assert progress == [  # Plan is a Pass state: bookkeeping, not shown
        "+0:00:00  > Train",
        "+1:00:00  ok Train",
        "+1:00:00  > Evaluate",
        "+1:00:00  ok Evaluate",
    ]
    assert "status     SUCCEEDED" in lines
    assert f"run        {run}" in lines
    assert (
        f"Leaderboard, run {run} (PARTIAL): ranked by ndcg@10; baseline: popularity, seen removed"
        in result.output
    )
    assert "user-personalization, seen removed" in result.output


def test_start_wait_exits_1_with_the_failure(account):
    deploy(account, REJECTS_THE_DATA)
    result = recops("start", "--stack", STACK, "--wait", "--poll-seconds", "0.02")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "status     FAILED" in lines
    assert "error      DataRejectedError" in lines
    assert (
        "cause      data.interactions: 12 interactions; Personalize needs at least 1,000" in lines
    )
    assert any(line.startswith("+0:00:00  !! ExecutionFailed: DataRejectedError") for line in lines)
    assert "does not exist (the run is FAILED)" in result.output


# --- status -------------------------------------------------------------------------------------


def test_status_shows_the_states_running_now(account, outputs):
    sfn = account.client("stepfunctions")
    with account.clock.holding():  # time stands still: the hour's Wait does not end
        arn = sfn.start_execution(stateMachineArn=outputs["PersonalizeStateMachineArn"])[
            "executionArn"
        ]
        for _ in range(200):
            if any(e["type"] == "WaitStateEntered" for e in runs.new_events(sfn, arn)):
                break
            time.sleep(0.02)
        result = recops("status", "--stack", STACK)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [f"execution  {arn}", f"run        {arn[-12:]}", "status     RUNNING"]
    assert "stopped    -" in lines
    assert "running    Train" in lines
    assert "Leaderboard" not in result.output


def test_status_of_a_finished_run_shows_its_leaderboard(account, outputs):
    done = started(account, outputs)
    result = recops("status", "--stack", STACK)
    assert result.exit_code == 0, result.output
    assert "status     SUCCEEDED" in result.output
    assert f"Leaderboard, run {done['name'][-12:]} (PARTIAL)" in result.output


def test_status_of_a_failed_run_shows_error_and_cause(account):
    failing = deploy(account, REJECTS_THE_DATA)
    done = started(account, failing)
    result = recops("status", done["executionArn"], "--stack", STACK)
    assert result.exit_code == 0, result.output
    assert "status     FAILED" in result.output
    assert "error      DataRejectedError" in result.output


# --- report -------------------------------------------------------------------------------------


def test_report_prints_the_leaderboard_then_not_scored_and_failed(account, outputs):
    done = started(account, outputs)
    result = recops("report", "--stack", STACK)
    assert result.exit_code == 0, result.output
    header_lines = [cells(line, "┃") for line in result.output.splitlines() if line[:1] == "┃"]
    header = [" ".join(filter(None, parts)) for parts in zip(*header_lines, strict=True)]
    rows = [cells(line, "│") for line in result.output.splitlines() if line[:1] == "│"]
    assert header == [
        "#",
        "name",
        "recipe",
        "ndcg@10",
        "precision@10",
        "seen removed",
        "beats baseline",
    ]
    assert rows == [
        [
            "1",
            "user-personalization, seen removed",
            "aws-user-personalization-v2",
            "0.3125",
            "0.1432",
            "yes",
            "yes",
        ],
        ["2", "popularity, seen removed", "popularity", "0.1409", "0.0560", "yes", "baseline"],
        ["3", "fm-knn", "fm-knn", "0.0987", "0.0401", "no", "no"],
    ]
    assert (
        "not scored: similar-items (aws-similar-items): aws-similar-items recommends items "
        "related to an item" in result.output
    )
    assert (
        "failed: popularity: Personalize.ResourceInUseException: the solution version failed: "
        "not enough interactions" in result.output
    )
    assert f"run {done['name'][-12:]}" in result.output


def test_report_json_prints_the_file(account, outputs):
    done = started(account, outputs)
    result = recops("report", done["name"][-12:], "--stack", STACK, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {**METRICS, "run": done["name"][-12:]}


def test_report_picks_the_execution_asked_for(account, outputs):
    first, second = started(account, outputs), started(account, outputs)
    s3 = account.client("s3")
    s3.delete_object(Bucket=ARTIFACTS_BUCKET, Key=runs.metrics_key(second["name"][-12:]))
    assert recops("report", "--stack", STACK).exit_code == 1  # the newest has none
    by_name = recops("report", first["name"], "--stack", STACK, "--json")
    by_arn = recops("report", first["executionArn"], "--stack", STACK, "--json")
    assert (
        json.loads(by_name.output)["run"] == json.loads(by_arn.output)["run"] == first["name"][-12:]
    )


def test_a_run_without_a_report_says_so(account):
    failing = deploy(account, REJECTS_THE_DATA)
    done = started(account, failing)
    result = recops("report", "--stack", STACK)
    assert result.exit_code == 1
    run = done["name"][-12:]
    assert result.output.strip() == (
        f"recops: run {run} has no report yet: s3://{ARTIFACTS_BUCKET}/reports/{run}/metrics.json "
        "does not exist (the run is FAILED)"
    )


def test_no_executions_yet_is_said(account, outputs):
    result = recops("report", "--stack", STACK)
    assert result.exit_code == 1
    assert "has no executions yet: start one with `recops start`" in result.output


# --- cost ---------------------------------------------------------------------------------------


def test_cost_without_an_execution_estimates_the_config_and_says_what_it_assumes(account):
    result = recops("cost", "--config", DEMO_CONFIG, "--users", "943", "--job-minutes", "5")
    assert result.exit_code == 0, result.output
    from recops.config import load_config

    assumptions = costs.Assumptions(users=943, job_minutes=5)
    estimate = costs.estimate(load_config(DEMO_CONFIG), assumptions)
    priced = prices.price_run(estimate.usage, estimate.standing)
    total = next(line for line in result.output.splitlines() if "│ total" in line)
    assert total.split("│")[3].strip() == prices.usd(priced.total)
    assert "assuming:" in result.output
    for note in assumptions.describe():
        assert f"  - {note}" in result.output
    assert "SageMaker training fm (1 x ml.c5.xlarge)" in result.output
    assert "source: https://aws.amazon.com/personalize/pricing/" in result.output


def test_the_estimate_uses_the_transform_instances_and_says_spot_is_priced_on_demand():
    from recops.config import parse_config

    raw = json.loads(DEMO_CONFIG.read_text())
    raw["factorization_machines"] |= {"spot": True, "knn": {"transform_instance_count": 3}}
    estimate = costs.estimate(parse_config(raw), costs.Assumptions(job_minutes=10))
    (transform,) = [job for job in estimate.usage.sagemaker_jobs if job.kind == "transform"]
    assert (transform.instance_type, transform.instance_count) == ("ml.m5.large", 3)
    assert estimate.notes[-1] == (
        "FM and KNN train on managed spot, priced here at the on-demand rate (an upper bound: "
        "`recops cost RUN` prices the BillableTimeInSeconds each job reports)"
    )
    assert costs.estimate(parse_config(json.loads(DEMO_CONFIG.read_text()))).notes == (
        costs.Assumptions().describe()
    )


def _run_resources(account, run: str) -> dict:
    """What the run's steps would have created in Personalize and SageMaker, named for the run."""
    p, s3, sm = account.client("personalize"), account.client("s3"), account.client("sagemaker")
    interactions = _synthetic_csv()
    s3.put_object(
        Bucket=DATA_BUCKET, Key=f"personalize/import/{run}/interactions.csv", Body=interactions
    )
    s3.put_object(
        Bucket=DATA_BUCKET,
        Key=f"prepared/{run}/manifest.json",
        Body=json.dumps({"personalize": {"interactions": 5400}}),
    )
    users = "".join(json.dumps({"userId": str(u)}) + "\n" for u in range(150))
    batch_input = f"personalize/batch-input/{run}/users.json"
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=batch_input, Body=users)
    group = p.create_dataset_group(name=f"{STACK}--group")["datasetGroupArn"]
    active(p.describe_dataset_group, "datasetGroup", "datasetGroupArn", group)
    schema = p.create_schema(name=f"{STACK}--interactions-0123456789", schema=SCHEMA)["schemaArn"]
    dataset = p.create_dataset(
        name=f"{STACK}--interactions",
        datasetGroupArn=group,
        datasetType="Interactions",
        schemaArn=schema,
    )["datasetArn"]
    active(p.describe_dataset, "dataset", "datasetArn", dataset)
    job = p.create_dataset_import_job(
        jobName=f"{STACK}--interactions-{run}",
        datasetArn=dataset,
        roleArn=ROLE,
        dataSource={"dataLocation": f"s3://{DATA_BUCKET}/personalize/import/{run}/"},
    )["datasetImportJobArn"]
    active(p.describe_dataset_import_job, "datasetImportJob", "datasetImportJobArn", job)
    solution = p.create_solution(
        name=f"{STACK}--user-personalization",
        datasetGroupArn=group,
        recipeArn="arn:aws:personalize:::recipe/aws-user-personalization-v2",
        performAutoTraining=False,
    )["solutionArn"]
    active(p.describe_solution, "solution", "solutionArn", solution)
    version = p.create_solution_version(
        name=f"{STACK}--user-personalization-{run}", solutionArn=solution
    )["solutionVersionArn"]
    active(p.describe_solution_version, "solutionVersion", "solutionVersionArn", version)
    batch = p.create_batch_inference_job(
        jobName=f"{STACK}--user-personalization-{run}",
        solutionVersionArn=version,
        roleArn=ROLE,
        numResults=100,
        jobInput={"s3DataSource": {"path": f"s3://{ARTIFACTS_BUCKET}/{batch_input}"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{ARTIFACTS_BUCKET}/batch-output/{run}/"}},
    )["batchInferenceJobArn"]
    active(p.describe_batch_inference_job, "batchInferenceJob", "batchInferenceJobArn", batch)
    processing(sm, f"{STACK}--prep-{run}", ["python3", "-c", "pass"], inputs=[])
    prep = settle(account, "processing", f"{STACK}--prep-{run}")
    assert prep["ProcessingJobStatus"] == "Completed", prep.get("FailureReason")
    seconds = (prep["ProcessingEndTime"] - prep["ProcessingStartTime"]).total_seconds()
    return {"imported": len(interactions), "users": 150, "prep_seconds": seconds}


def test_cost_of_an_execution_prices_what_its_resources_used(account, outputs):
    done = started(account, outputs)
    run = done["name"][-12:]
    used = _run_resources(account, run)
    # another run's resource of the same stack, and another stack's, are not this run's
    account.client("personalize").create_dataset_group(name="recops-other--group")
    result = recops("cost", run, "--stack", STACK)
    assert result.exit_code == 0, result.output
    expected = prices.Usage(
        ingested_gb=used["imported"] / 1e9,
        v2_training_interactions=5400,  # prep's manifest: what Personalize trained on
        v2_recommendations=used["users"],  # one per line of the batch job's input
        sagemaker_jobs=(
            prices.SageMakerJob(
                f"{STACK}--prep-{run}", "processing", "ml.m5.large", 1, used["prep_seconds"]
            ),
        ),
    )
    priced = prices.price_run(expected)
    rows = {
        cells[1].strip(): (cells[2].strip(), cells[3].strip())
        for line in result.output.splitlines()
        if line.startswith("│") and len(cells := line.split("│")) > 3
    }
    assert rows["Personalize training, -v2 recipes"] == (
        "5,400 interactions",
        prices.usd(0.0108) + " *",
    )
    assert rows["Personalize recommendations, -v2 recipes"][0] == "150 recommendations"
    assert rows["Personalize data ingestion"][0].endswith(" GB")
    assert rows[f"SageMaker processing {STACK}--prep-{run} (1 x ml.m5.large)"][0].endswith(
        "instance-hours"
    )
    assert rows["total"] == ("", prices.usd(priced.total))
    assert f"Cost of run {run} (SUCCEEDED)" in result.output


def test_measured_usage_counts_only_the_runs_resources(account, outputs):
    done = started(account, outputs)
    run = done["name"][-12:]
    used = _run_resources(account, run)
    scope = costs.RunScope(
        personalize=account.client("personalize"),
        sagemaker=account.client("sagemaker"),
        s3=account.client("s3"),
        stack=STACK,
        run="aaaaaaaaaaaa",  # another run of the same stack
        started=done["startDate"],
        now=done["stopDate"],
        data_bucket=DATA_BUCKET,
    )
    assert costs.measure(scope).usage == prices.Usage()
    scope.run = run
    measured = costs.measure(scope)
    assert measured.usage.v2_recommendations == used["users"]
    assert measured.notes == []
    # what a notification quotes: the same pricing, one line
    assert costs.describe(scope) == prices.describe_run_cost(measured.usage, measured.standing)
    s3 = account.client("s3")
    s3.delete_object(Bucket=DATA_BUCKET, Key=f"prepared/{run}/manifest.json")
    assert costs.describe(scope).endswith(
        f"; not counted: s3://{DATA_BUCKET}/prepared/{run}/manifest.json missing: -v2 training "
        "not counted"
    )


# --- workflows: the Personalize machine and the FM → KNN machine -------------------------------

STACK_CONFIG = {**json.loads(DEMO_CONFIG.read_text()), "prefix": STACK}
FM_ONLY = {**STACK_CONFIG, "personalize": {**STACK_CONFIG["personalize"], "enabled": False}}


def plans_with(config: dict) -> tuple[str, dict]:
    """The first state as the product's machines have it: the deployed config in its request."""
    return "Plan", {"Type": "Pass", "Assign": {"request": {"deployedConfig": config}}}


def puts_model(name: str) -> dict:
    """A Task standing for a SageMaker job of the run: it writes under models/<run>/."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Arguments": {
            "Bucket": ARTIFACTS_BUCKET,
            "Key": f"{{% 'models/' & {RUN_OF_EXECUTION} & '/{name}' %}}",
            "Body": "x",
        },
    }


def personalize_machine(config: dict) -> dict:
    return machine(
        plans_with(config),
        ("Train", {"Type": "Wait", "Seconds": 3600}),
        ("Evaluate", writes_metrics()),
    )


def fm_knn_machine(config: dict) -> dict:
    """The FM → KNN machine's states, by name (training waits half an hour of virtual time)."""
    return machine(
        plans_with(config),
        ("Train FM", {"Type": "Wait", "Seconds": 1800}),
        ("Extract the KNN index", puts_model("knn-input/manifest.json")),
        ("Batch transform", puts_model("transform.out")),
        ("Evaluate", writes_metrics()),
    )


def deploy_both(account, config: dict = STACK_CONFIG) -> dict[str, str]:
    return deploy(account, personalize_machine(config), fm_knn_machine(config))


def inputs_of(account, outputs, key: str) -> list[dict]:
    """The inputs of the executions of the machine the output `key` names."""
    sfn = account.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=outputs[key])["executions"]
    return [
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in listed
    ]


@pytest.mark.parametrize(
    ("deployed", "machine_key"),
    [(STACK_CONFIG, runs.PERSONALIZE_MACHINE), (FM_ONLY, runs.FM_KNN_MACHINE)],
    ids=["personalize-enabled", "fm-only"],
)
def test_start_chooses_the_machine_by_the_deployed_config(account, deployed, machine_key):
    outputs = deploy_both(account, deployed)
    result = recops("start", "--stack", STACK)
    assert result.exit_code == 0, result.output
    assert inputs_of(account, outputs, machine_key) == [{}]  # the deployed config, as deployed
    other = ({runs.PERSONALIZE_MACHINE, runs.FM_KNN_MACHINE} - {machine_key}).pop()
    assert inputs_of(account, outputs, other) == []


def test_workflow_personalize_runs_the_deployed_config_without_fm_knn(account):
    outputs = deploy_both(account)
    result = recops("start", "--stack", STACK, "--workflow", "personalize")
    assert result.exit_code == 0, result.output
    without_fm = {
        **STACK_CONFIG,
        "factorization_machines": {**STACK_CONFIG["factorization_machines"], "enabled": False},
    }
    assert inputs_of(account, outputs, runs.PERSONALIZE_MACHINE) == [{"config": without_fm}]
    assert inputs_of(account, outputs, runs.FM_KNN_MACHINE) == []


def test_workflow_both_turns_fm_knn_on_in_the_files_config(account, tmp_path):
    outputs = deploy_both(account)
    raw = {
        **STACK_CONFIG,
        "factorization_machines": {**STACK_CONFIG["factorization_machines"], "enabled": False},
    }
    config = tmp_path / "mine.json"
    config.write_text(json.dumps(raw))
    result = recops("start", "--config", config, "--workflow", "both")
    assert result.exit_code == 0, result.output
    assert inputs_of(account, outputs, runs.PERSONALIZE_MACHINE) == [{"config": STACK_CONFIG}]


def test_workflow_both_without_personalize_starts_nothing(account, tmp_path):
    outputs = deploy_both(account)
    config = tmp_path / "fm-only.json"
    config.write_text(json.dumps(FM_ONLY))
    result = recops("start", "--config", config, "--workflow", "both")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"recops: {config}: personalize.enabled is false, so --workflow both has no Personalize "
        "run to start: use --workflow fm-knn (or enable personalize)"
    )
    for key in (runs.PERSONALIZE_MACHINE, runs.FM_KNN_MACHINE):
        assert inputs_of(account, outputs, key) == []


def test_workflow_fm_knn_wait_follows_the_fm_knn_machine(account):
    outputs = deploy_both(account)
    result = recops(
        "start", "--stack", STACK, "--workflow", "fm-knn", "--wait", "--poll-seconds", "0.02"
    )
    assert result.exit_code == 0, result.output
    assert inputs_of(account, outputs, runs.FM_KNN_MACHINE) == [{}]
    assert inputs_of(account, outputs, runs.PERSONALIZE_MACHINE) == []
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("+")] == [
        "+0:00:00  > Train FM",
        "+0:30:00  ok Train FM",
        "+0:30:00  > Extract the KNN index",
        "+0:30:00  ok Extract the KNN index",
        "+0:30:00  > Batch transform",
        "+0:30:00  ok Batch transform",
        "+0:30:00  > Evaluate",
        "+0:30:00  ok Evaluate",
    ]
    assert "status     SUCCEEDED" in lines
    run = next(line.split()[1] for line in lines if line.startswith("run "))
    assert f"Leaderboard, run {run} (PARTIAL)" in result.output
    assert not any(line.startswith("fm-knn ") for line in lines)  # no child: it is the run


def test_a_stack_of_an_older_recops_has_no_fm_knn_machine(account, outputs):
    result = recops("start", "--stack", STACK, "--workflow", "fm-knn")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"recops: stack {STACK!r} has no output FmKnnStateMachineArn: it was deployed by an older "
        "recops; deploy it again (npx cdk deploy)"
    )
    assert recops("start", "--stack", STACK).exit_code == 0  # auto: its one machine
    assert executions(account, outputs)[0]["status"] in ("RUNNING", "SUCCEEDED")


def test_a_rewrite_needs_the_deployed_config_in_the_machines_definition(account, outputs):
    result = recops("start", "--stack", STACK, "--workflow", "personalize")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"recops: cannot read the deployed config from {outputs[runs.PERSONALIZE_MACHINE]} (its "
        "definition has no deployedConfig): pass the config with --config FILE"
    )
    assert executions(account, outputs) == []


def test_status_report_and_cost_find_a_run_of_either_machine(account):
    outputs = deploy_both(account)
    sfn = account.client("stepfunctions")
    personalize_run = started(account, outputs)
    fm_arn = sfn.start_execution(stateMachineArn=outputs[runs.FM_KNN_MACHINE], input="{}")
    fm_run = finished(account, fm_arn["executionArn"])
    fm_id, personalize_id = fm_run["name"][-12:], personalize_run["name"][-12:]
    newest = recops("report", "--stack", STACK, "--json")
    assert json.loads(newest.output)["run"] == fm_id
    by_id = recops("report", personalize_id, "--stack", STACK, "--json")
    assert json.loads(by_id.output)["run"] == personalize_id
    status = recops("status", fm_id, "--stack", STACK)
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[:3] == [
        f"execution  {fm_run['executionArn']}",
        f"run        {fm_id}",
        "status     SUCCEEDED",
    ]
    cost = recops("cost", fm_id, "--stack", STACK)
    assert cost.exit_code == 0, cost.output
    assert f"Cost of run {fm_id} (SUCCEEDED)" in " ".join(cost.output.split())  # title wraps


def test_status_of_a_personalize_run_shows_its_fm_knn_child(account):
    outputs = deploy_both(account)
    sfn = account.client("stepfunctions")
    parent = started(account, outputs)
    run = parent["name"][-12:]
    with account.clock.holding():  # the child's half hour of training does not pass
        child = sfn.start_execution(
            stateMachineArn=outputs[runs.FM_KNN_MACHINE],
            name=f"{run}-fm",
            input=json.dumps({"parentRun": {"runId": run, "stack": STACK}}),
        )["executionArn"]
        for _ in range(200):
            if any(e["type"] == "WaitStateEntered" for e in runs.new_events(sfn, child)):
                break
            time.sleep(0.02)
        newest = recops("status", "--stack", STACK)  # the child is newer, but not a run
        of_child = recops("status", f"{run}-fm", "--stack", STACK)
    assert newest.exit_code == 0, newest.output
    lines = newest.output.splitlines()
    assert lines[:3] == [
        f"execution  {parent['executionArn']}",
        f"run        {run}",
        "status     SUCCEEDED",
    ]
    assert f"fm-knn     RUNNING, running Train FM ({child})" in lines
    assert of_child.output.splitlines()[:2] == [f"execution  {child}", f"run        {run}"]
    assert f"Leaderboard, run {run}" in of_child.output  # the parent's: one leaderboard


def test_cost_estimate_of_the_fm_knn_workflow_prices_its_sagemaker_jobs_alone(account):
    result = recops("cost", "--config", DEMO_CONFIG, "--workflow", "fm-knn")
    assert result.exit_code == 0, result.output
    from recops.config import load_config
    from recops.workflow_choice import choose

    alone = choose(json.loads(DEMO_CONFIG.read_text()), "fm-knn").what_runs()
    estimate = costs.estimate(alone)
    priced = prices.price_run(estimate.usage, estimate.standing)
    total = next(line for line in result.output.splitlines() if "│ total" in line)
    assert total.split("│")[3].strip() == prices.usd(priced.total)
    # the title wraps at the terminal's width, which depends on the clone's path: compare words
    title = f"Estimated cost of one run of {DEMO_CONFIG} (--workflow fm-knn)"
    assert title in " ".join(result.output.split())
    rows = [line.split("│")[1].strip() for line in result.output.splitlines() if "│" in line]
    assert [row for row in rows if row.startswith("SageMaker")] == [
        "SageMaker processing prep (1 x ml.m5.xlarge)",
        "SageMaker training fm (1 x ml.c5.xlarge)",
        "SageMaker processing fm-to-knn (1 x ml.m5.xlarge)",
        "SageMaker training knn (1 x ml.m5.large)",
        "SageMaker transform knn-transform (1 x ml.m5.large)",
        "SageMaker processing evaluate (1 x ml.m5.xlarge)",
    ]
    assert not any(row.startswith("Personalize") for row in rows)
    both = costs.estimate(load_config(DEMO_CONFIG))
    assert priced.total < prices.price_run(both.usage, both.standing).total


def _stubbed_fm_knn_jobs(stub, run: str, started) -> None:
    """What SageMaker says of an FM → KNN run's jobs: prep and the index extraction (processing),
    FM on spot and KNN (training), the KNN batch transform."""
    from datetime import timedelta

    def at(minutes: float):
        return started + timedelta(minutes=minutes)

    name = f"{STACK}--{{}}-{run}"
    processing = {"prep": (0, 10, "ml.m5.xlarge"), "fm-to-knn": (40, 45, "ml.m5.xlarge")}
    stub.add_response(
        "list_processing_jobs",
        {
            "ProcessingJobSummaries": [
                {
                    "ProcessingJobName": name.format(label),
                    "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name.format(label)}",
                    "CreationTime": at(begin),
                    "ProcessingJobStatus": "Completed",
                }
                for label, (begin, _, _) in processing.items()
            ]
        },
        {"NameContains": run},
    )
    for label, (begin, end, instance) in processing.items():
        stub.add_response(
            "describe_processing_job",
            {
                "ProcessingJobName": name.format(label),
                "ProcessingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{name.format(label)}",
                "ProcessingJobStatus": "Completed",
                "CreationTime": at(begin),
                "ProcessingStartTime": at(begin),
                "ProcessingEndTime": at(end),
                "AppSpecification": {"ImageUri": "sklearn"},
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": instance,
                        "VolumeSizeInGB": 30,
                    }
                },
            },
            {"ProcessingJobName": name.format(label)},
        )
    training = {"fm": (10, 40, 2, "ml.c5.xlarge", 600), "knn": (45, 50, 1, "ml.m5.large", None)}
    stub.add_response(
        "list_training_jobs",
        {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": name.format(label),
                    "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name.format(label)}",
                    "CreationTime": at(begin),
                    "TrainingJobStatus": "Completed",
                }
                for label, (begin, *_) in training.items()
            ]
        },
        {"NameContains": run},
    )
    for label, (begin, end, count, instance, billable) in training.items():
        stub.add_response(
            "describe_training_job",
            {
                "TrainingJobName": name.format(label),
                "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name.format(label)}",
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "CreationTime": at(begin),
                "TrainingStartTime": at(begin),
                "TrainingEndTime": at(end),
                "TrainingTimeInSeconds": (end - begin) * 60,
                **({"BillableTimeInSeconds": billable} if billable else {}),
                "EnableManagedSpotTraining": billable is not None,
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ModelArtifacts": {"S3ModelArtifacts": "s3://a/model.tar.gz"},
                "ResourceConfig": {
                    "InstanceCount": count,
                    "InstanceType": instance,
                    "VolumeSizeInGB": 30,
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
            {"TrainingJobName": name.format(label)},
        )
    transform = name.format("knn-transform")
    stub.add_response(
        "list_transform_jobs",
        {
            "TransformJobSummaries": [
                {
                    "TransformJobName": transform,
                    "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{transform}",
                    "CreationTime": at(50),
                    "TransformJobStatus": "Completed",
                }
            ]
        },
        {"NameContains": run},
    )
    stub.add_response(
        "describe_transform_job",
        {
            "TransformJobName": transform,
            "TransformJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{transform}",
            "TransformJobStatus": "Completed",
            "ModelName": name.format("knn-model"),
            "CreationTime": at(50),
            "TransformStartTime": at(50),
            "TransformEndTime": at(56),
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://a/u/"}}
            },
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 2},
        },
        {"TransformJobName": transform},
    )


def test_an_fm_knn_runs_cost_bills_spot_training_by_its_billable_seconds(account):
    """Measured from DescribeTrainingJob's BillableTimeInSeconds (spot: less than the time the
    job trained), the other jobs' start and end times, at each job's instances."""
    from botocore.stub import Stubber

    run, started_at = "0123456789ab", datetime.datetime(2026, 11, 23, tzinfo=datetime.UTC)
    sagemaker = boto3.Session(region_name="us-east-1").client("sagemaker")
    scope = costs.RunScope(
        personalize=account.client("personalize"),
        sagemaker=sagemaker,
        s3=account.client("s3"),
        stack=STACK,
        run=run,
        started=started_at,
        now=started_at + datetime.timedelta(hours=1),
        data_bucket=DATA_BUCKET,
    )
    with Stubber(sagemaker) as stub:
        _stubbed_fm_knn_jobs(stub, run, started_at)
        measured = costs.measure(scope)
        stub.assert_no_pending_responses()
    assert measured.usage == prices.Usage(
        sagemaker_jobs=(
            prices.SageMakerJob(f"{STACK}--prep-{run}", "processing", "ml.m5.xlarge", 1, 600),
            prices.SageMakerJob(f"{STACK}--fm-to-knn-{run}", "processing", "ml.m5.xlarge", 1, 300),
            prices.SageMakerJob(f"{STACK}--fm-{run}", "training", "ml.c5.xlarge", 2, 600),
            prices.SageMakerJob(f"{STACK}--knn-{run}", "training", "ml.m5.large", 1, 300),
            prices.SageMakerJob(
                f"{STACK}--knn-transform-{run}", "transform", "ml.m5.large", 2, 360
            ),
        )
    )
    priced = prices.price_run(measured.usage)
    assert priced.unpriced == []
    by_label = {line.label: line for line in priced.lines}
    fm = by_label[f"SageMaker training {STACK}--fm-{run} (2 x ml.c5.xlarge)"]
    assert fm.quantity == pytest.approx(2 * 600 / 3600)  # 10 billed minutes, not 30 trained
    assert fm.usd == pytest.approx(2 * 600 / 3600 * 0.204)
    transform = by_label[f"SageMaker transform {STACK}--knn-transform-{run} (2 x ml.m5.large)"]
    assert transform.usd == pytest.approx(2 * 360 / 3600 * 0.115)


def test_the_synthesized_machines_carry_what_the_cli_reads(demo_assembly, demo_config):
    """Both machines' outputs, and the deployed config in each definition (where `start` reads
    it to choose, and to rewrite, without --config)."""
    template = demo_assembly.template
    outputs = template["Outputs"]
    deployed = demo_config.model_dump(mode="json", exclude_none=True)
    for key in runs.MACHINES.values():
        logical = outputs[key]["Value"]["Ref"]
        definition = rendered(template["Resources"][logical]["Properties"]["DefinitionString"])
        assert runs.config_in(json.loads(definition)) == deployed, key


def test_a_child_execution_is_named_for_its_parents_run():
    """infra/workflows/personalize_start.py names it `<run id>[-<redrive>]-fm`."""
    assert runs.is_child("0123456789ab-fm")
    assert runs.is_child("0123456789ab-2-fm")
    assert not runs.is_child("a1b2c3d4-0000-1111-2222-0123456789ab")  # a run: a UUID
    assert not runs.is_child("0123456789ab")


# --- kms-policy ---------------------------------------------------------------------------------


def test_kms_policy_renders_the_statements_for_the_deployed_roles(account, outputs):
    result = recops("kms-policy", "--stack", STACK)
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == kms_policy.render(
            account="123456789012",
            region="us-east-1",
            personalize_role_arn=outputs["PersonalizeRoleArn"],
            sagemaker_role_arn=outputs["SageMakerRoleArn"],
        )
        + "\n"
    )


def test_the_leaderboard_reads_what_the_evaluation_writes():
    """metrics.json v2 as training/evaluate.py builds it, rendered as `report` prints it."""
    from rich.console import Console

    from recops import render
    from training import evaluate

    def scores(ndcg: float) -> dict[str, float]:
        return {"ndcg@10": ndcg, "precision@10": ndcg / 2, "recall@10": ndcg / 3, "ndcg@5": 0.0}

    batch = "personalize (user-personalization)"
    context = evaluate.RunContext(
        run="0123456789ab",
        not_scored=[
            {"solution": "similar-items", "recipe": "aws-similar-items", "why": "item-to-item"}
        ],
        failed=[{"solution": "popularity", "error": "States.TaskFailed", "cause": "too few users"}],
    )
    document = evaluate.metrics_document(
        {"popularity": scores(0.06), "popularity, seen removed": scores(0.14), batch: scores(0.3)},
        [5, 10, 25],
        {
            batch: evaluate.Source(
                batch, "personalize", "user-personalization", "aws-user-personalization-v2"
            )
        },
        context,
    )
    console = Console(width=200, record=True)
    render.leaderboard(console, json.loads(json.dumps(document)))
    lines = console.export_text().splitlines()
    assert lines[0].startswith(
        "Leaderboard, run 0123456789ab (PARTIAL): ranked by ndcg@10; baseline: popularity, seen removed"
    )
    header = [
        " ".join(filter(None, p))
        for p in zip(*(cells(x, "┃") for x in lines if x[:1] == "┃"), strict=True)
    ]
    assert header == [
        "#",
        "name",
        "recipe",
        "ndcg@10",
        "precision@10",
        "recall@10",
        "seen removed",
        "beats baseline",
    ]
    assert [cells(x, "│") for x in lines if x[:1] == "│"] == [
        ["1", batch, "aws-user-personalization-v2", "0.3000", "0.1500", "0.1000", "no", "yes"],
        [
            "2",
            "popularity, seen removed",
            "popularity",
            "0.1400",
            "0.0700",
            "0.0467",
            "yes",
            "baseline",
        ],
        ["3", "popularity", "popularity", "0.0600", "0.0300", "0.0200", "no", "baseline"],
    ]
    assert "not scored: similar-items (aws-similar-items): item-to-item" in lines
    assert "failed: popularity: States.TaskFailed: too few users" in lines


def test_a_lambda_error_cause_reads_as_its_message():
    trace = {"errorMessage": "unknown step None", "errorType": "InvalidStepInputError"}
    cause = "Plan the run: " + json.dumps({**trace, "stackTrace": ["  File ..."]})
    assert runs.readable_cause(cause) == "Plan the run: unknown step None"
    assert runs.readable_cause("no JSON here") == "no JSON here"
    assert runs.readable_cause('{"errorMessage": broken') == '{"errorMessage": broken'

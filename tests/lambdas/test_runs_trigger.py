"""The upload trigger (lambdas/runs/trigger.py) against the local account: a valid config under
train/ starts one run of the machine `recops start` would choose, an invalid one starts nothing
and says why on the event bus, and a run of that machine going on blocks a second start."""

from __future__ import annotations

import copy
import json
import time

import jsonschema
import pytest

from lambdas.runs import trigger
from lambdas.runs.trigger import Clients, Machines, on_upload
from localaws import LocalAccount
from tests.localaws.machines import create, finished

BUCKET = "recops-test-data"
STACK = "recops-test"
CONFIG = {
    "prefix": STACK,
    "data": {"interactions": {"path": "raw/interactions.csv"}},
    "personalize": {"solutions": [{"name": "popularity", "recipe": "aws-popularity-count"}]},
}


@pytest.fixture
def world():
    """The account, two machines (Personalize, FM → KNN) whose executions wait for a task token
    (RUNNING until told), and queues that receive the machines' work, the S3 upload events and
    the rejection events."""
    with LocalAccount() as account:
        sqs = account.client("sqs")
        queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in QUEUES}
        work = {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": queues["work"],
                "MessageBody": {"token.$": "$$.Task.Token", "input.$": "$"},
            },
            "End": True,
        }
        definition = {"StartAt": "Work", "States": {"Work": work}}
        machines = Machines(create(account, definition), create(account, definition))
        account.client("s3").create_bucket(Bucket=BUCKET)
        _route(account, "rejections", REJECTIONS, queues["rejections"])
        yield account, machines, queues


QUEUES = ("work", "rejections")
REJECTIONS = {"source": ["recops"], "detail-type": ["recops config rejected"]}


def _route(account, name: str, pattern: dict, queue_url: str) -> None:
    events, sqs = account.client("events"), account.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}])


def received(account, queue_url: str) -> list[dict]:
    messages = account.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def object_created(key: str, put: dict) -> dict:
    """S3's "Object Created" event as EventBridge delivers it (the documented example,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": 5, "etag": put["ETag"].strip('"'), "sequencer": "1"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def upload(world, key: str, body: bytes | str, **options) -> dict:
    """Put the object, then hand the trigger the event S3 sends to the bus for it."""
    account, machines, _ = world
    put = account.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    event = object_created(key, put)
    return on_upload(event, machines=machines, clients=Clients.default(), **options)


def executions(world, machine: str | None = None) -> list[dict]:
    """The executions of one machine ("personalize", "fm-knn"), or of both."""
    account, machines, _ = world
    sfn = account.client("stepfunctions")
    return [
        execution
        for name in ([machine] if machine else ["personalize", "fm-knn"])
        for execution in sfn.list_executions(stateMachineArn=machines.arn(name))["executions"]
    ]


def test_a_valid_upload_starts_a_run_of_that_config(world):
    answer = upload(world, "train/weekly.json", json.dumps(CONFIG))
    account, _, queues = world
    (execution,) = executions(world)
    assert executions(world, "personalize") == [execution]  # personalize.enabled: its machine
    assert answer == {"started": True, "executionArn": execution["executionArn"]}
    described = account.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {
        "configObject": {"bucket": BUCKET, "key": "train/weekly.json"}
    }
    assert execution["name"][-12:].isalnum()  # unnamed: a UUID, whose last group is the run id
    assert received(account, queues["rejections"]) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            json.dumps(
                {**CONFIG, "personalize": {"solutions": [{"name": "x", "recipe": "aws-hrnn"}]}}
            ),
            "s3://recops-test-data/train/bad.json: 1 problem(s) in the pipeline config:\n"
            "  - personalize.solutions.0.recipe: Input should be 'aws-user-personalization', ",
        ),
        (
            json.dumps(
                {
                    **CONFIG,
                    "evaluation": {"k_values": [50]},
                    "personalize": {
                        "solutions": [{"name": "p", "recipe": "aws-popularity-count"}],
                        "batch_inference": [{"solution": "p", "num_results": 25}],
                    },
                }
            ),
            "num_results 25 is below the largest evaluation K (50)",
        ),
        (b"{not json", "s3://recops-test-data/train/bad.json: not valid JSON: "),
    ],
    ids=["bad-recipe", "rule-across-fields", "not-json"],
)
def test_an_invalid_upload_starts_nothing_and_says_why_on_the_bus(world, body, message):
    answer = upload(world, "train/bad.json", body)
    account, _, queues = world
    assert answer["started"] is False
    assert message in answer["rejected"]
    assert executions(world) == []
    (event,) = received(account, queues["rejections"])
    assert (event["source"], event["detail-type"]) == ("recops", "recops config rejected")
    assert event["detail"] == {
        "bucket": BUCKET,
        "key": "train/bad.json",
        "message": answer["rejected"],
    }


def test_a_running_execution_blocks_a_second_start(world):
    account, _, queues = world
    with account.clock.holding():  # no virtual jump to the task's timeout while the test runs
        first = upload(world, "train/a.json", json.dumps(CONFIG))["executionArn"]
        assert upload(world, "train/b.json", json.dumps(CONFIG)) == {
            "started": False,
            "running": first,
        }
        assert [e["executionArn"] for e in executions(world)] == [first]
        token = task_token(account, queues["work"])  # the first run ends; the next upload starts
        account.client("stepfunctions").send_task_success(taskToken=token, output="{}")
        assert finished(account, first)["status"] == "SUCCEEDED"
        assert upload(world, "train/c.json", json.dumps(CONFIG))["started"] is True
        assert len(executions(world)) == 2


FM_ONLY = {**CONFIG, "personalize": {"enabled": False}}


def test_a_config_without_personalize_starts_the_fm_knn_machine(world):
    answer = upload(world, "train/fm.json", json.dumps(FM_ONLY))
    account, _, _ = world
    (execution,) = executions(world)
    assert executions(world, "fm-knn") == [execution]
    assert answer == {"started": True, "executionArn": execution["executionArn"]}
    described = account.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {
        "configObject": {"bucket": BUCKET, "key": "train/fm.json"}
    }


def test_only_a_run_of_the_machine_it_would_start_blocks_an_upload(world):
    account, _, queues = world
    with account.clock.holding():
        personalize_run = upload(world, "train/a.json", json.dumps(CONFIG))["executionArn"]
        fm_run = upload(world, "train/fm.json", json.dumps(FM_ONLY))  # another machine: starts
        assert fm_run["started"] is True
        assert upload(world, "train/fm2.json", json.dumps(FM_ONLY)) == {
            "started": False,
            "running": fm_run["executionArn"],
        }
        assert upload(world, "train/b.json", json.dumps(CONFIG)) == {
            "started": False,
            "running": personalize_run,
        }
        assert len(executions(world)) == 2
        for token in task_tokens(account, queues["work"], 2):  # both runs end
            account.client("stepfunctions").send_task_success(taskToken=token, output="{}")
        assert finished(account, personalize_run)["status"] == "SUCCEEDED"
        assert finished(account, fm_run["executionArn"])["status"] == "SUCCEEDED"


def test_a_config_that_enables_no_workflow_is_rejected(world):
    neither = {
        **CONFIG,
        "personalize": {"enabled": False},
        "factorization_machines": {"enabled": False},
    }
    answer = upload(world, "train/none.json", json.dumps(neither))
    account, _, queues = world
    assert answer == {
        "started": False,
        "rejected": "s3://recops-test-data/train/none.json: personalize.enabled and "
        "factorization_machines.enabled are both false: nothing to run; enable one (or run "
        "FM → KNN alone: recops start --workflow fm-knn)",
    }
    assert executions(world) == []
    (event,) = received(account, queues["rejections"])
    assert event["detail"]["message"] == answer["rejected"]


def task_tokens(account, queue_url: str, count: int, patience: float = 30) -> list[str]:
    """The tokens `count` running executions sent to the work queue (a receive takes several)."""
    tokens: list[str] = []
    deadline = time.monotonic() + patience
    while len(tokens) < count and time.monotonic() < deadline:
        tokens += [message["token"] for message in received(account, queue_url)]
        time.sleep(0.05)
    assert len(tokens) == count, f"{len(tokens)} of {count} executions reached their task"
    return tokens


def task_token(account, queue_url: str, patience: float = 30) -> str:
    """The token the running execution sent to the work queue (once it got there)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for message in received(account, queue_url):
            return message["token"]
        time.sleep(0.05)
    raise TimeoutError("the execution never reached its task")


def test_another_stacks_config_is_rejected_when_the_stack_is_known(world):
    other = {**CONFIG, "prefix": "recops-other"}
    answer = upload(world, "train/other.json", json.dumps(other), stack_prefix=STACK)
    assert answer["rejected"] == (
        "s3://recops-test-data/train/other.json: prefix 'recops-other' is not this stack's "
        "('recops-test'); a config runs only in the stack it names: set prefix to "
        "'recops-test', or upload the config to that stack's data bucket"
    )
    assert executions(world) == []


def test_keys_that_are_not_train_configs_are_ignored(world):
    answer = upload(world, "train/notes.txt", b"x")
    assert answer == {
        "started": False,
        "ignored": "s3://recops-test-data/train/notes.txt is not a train/*.json config",
    }
    assert executions(world) == []


def test_an_object_too_large_for_a_config_is_rejected(world):
    answer = upload(world, "train/huge.json", b" " * (trigger.MAX_CONFIG_BYTES + 1))
    assert answer["rejected"] == (
        "s3://recops-test-data/train/huge.json: not a config: 1,048,577 bytes, more than a "
        "config's 1,048,576"
    )


def test_the_json_schema_is_checked_as_well_as_the_model(monkeypatch):
    """A schema file out of step with the model refuses too, saying which file."""
    assert trigger.config_problem(json.dumps(CONFIG).encode(), "s3://b/k") is None
    stricter = copy.deepcopy(json.loads(trigger.SCHEMA_FILE.read_text()))
    stricter["required"] = [*stricter["required"], "retain_data"]
    monkeypatch.setattr(trigger, "config_schema", lambda: jsonschema.Draft202012Validator(stricter))
    assert trigger.config_problem(json.dumps(CONFIG).encode(), "s3://b/k") == (
        "s3://b/k: does not match recops/config.schema.json:\n"
        "  - (top): 'retain_data' is a required property"
    )

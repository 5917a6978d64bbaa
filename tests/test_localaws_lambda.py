"""In-process Lambda: real handlers, their environment, error payloads and logs."""

import inspect
import io
import json
import zipfile

import moto
import pytest
from moto.awslambda.models import LambdaFunction

from localaws import MOTO_VERSION, LocalAccount

HANDLER = """
import os, logging
logging.getLogger().setLevel(logging.INFO)
def handler(event, context):
    logging.info("greeting %s", event["name"])
    print("plain print")
    if event.get("fail"):
        raise ValueError("no greeting for " + event["name"])
    return {"hello": event["name"], "stage": os.environ["STAGE"], "fn": context.function_name}
"""


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


@pytest.fixture
def function():
    with LocalAccount() as account:
        role = account.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")[
            "Role"
        ]["Arn"]
        account.client("lambda").create_function(
            FunctionName="greeter",
            Runtime="python3.14",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip(HANDLER)},
            Environment={"Variables": {"STAGE": "test"}},
        )
        yield account


def test_the_pinned_moto_still_needs_docker_for_lambda():
    assert moto.__version__ == MOTO_VERSION
    assert "docker" in inspect.getsource(LambdaFunction._invoke_lambda)


def test_handler_runs_with_its_environment(function):
    response = function.client("lambda").invoke(
        FunctionName="greeter", Payload=json.dumps({"name": "ana"})
    )
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {
        "hello": "ana",
        "stage": "test",
        "fn": "greeter",
    }


def test_failure_is_a_lambda_error_payload(function):
    response = function.client("lambda").invoke(
        FunctionName="greeter", Payload=json.dumps({"name": "bo", "fail": True})
    )
    assert "FunctionError" in response
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "no greeting for bo"
    assert any("app.py" in line for line in error["stackTrace"])


def test_log_lines_reach_cloudwatch(function):
    function.client("lambda").invoke(FunctionName="greeter", Payload=json.dumps({"name": "cy"}))
    logs = function.client("logs")
    (stream,) = logs.describe_log_streams(logGroupName="/aws/lambda/greeter")["logStreams"]
    events = logs.get_log_events(
        logGroupName="/aws/lambda/greeter", logStreamName=stream["logStreamName"]
    )
    messages = "\n".join(e["message"] for e in events["events"])
    assert "greeting cy" in messages
    assert "plain print" in messages


def test_the_pinned_moto_still_reports_function_errors_as_handled():
    # localaws reports Unhandled, as Lambda does for every runtime error
    assert '"Handled"' in inspect.getsource(LambdaFunction.invoke)


def test_the_pinned_moto_events_still_cannot_reach_state_machines_or_functions():
    from moto.events.models import EventsBackend, Rule
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    delivery = inspect.getsource(Rule.send_to_targets)
    assert "NotImplementedError" in delivery
    assert '"states"' not in delivery
    assert '"lambda"' not in delivery
    assert "RoleArn" not in inspect.getsource(EventsBackend.put_targets)
    assert ".state" not in inspect.getsource(EventsBackend.put_events)  # DISABLED rules deliver
    s3_to_bus = inspect.getsource(notifications._send_event_bridge_message)
    assert "event_buses.values()" in s3_to_bus  # every bus, not only the default one
    assert "transform_input=False" in s3_to_bus
    assert "EventBridge" not in inspect.getsource(S3Response.get_bucket_notification)


def test_the_pinned_moto_scheduler_still_neither_fires_nor_checks_expressions():
    from moto.cloudformation.parsing import get_model_map
    from moto.scheduler import models

    source = inspect.getsource(models)
    assert "Thread" not in source  # nothing ever fires a schedule
    assert "rate(" not in source  # any ScheduleExpression is accepted
    assert "AWS::Scheduler::Schedule" not in get_model_map()
    assert "AWS::Scheduler::ScheduleGroup" not in get_model_map()

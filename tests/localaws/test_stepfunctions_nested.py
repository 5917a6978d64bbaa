"""Nested executions, execution history and logs, aws-sdk blobs: as the Step Functions API has them."""

from __future__ import annotations

import json

from tests.localaws.fidelity import Behaviour, refused, rows
from tests.localaws.machines import create, finished, history, run, task

NESTED = "https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html"
HISTORY = (
    "https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html"
)
LOG_LEVELS = "https://docs.aws.amazon.com/step-functions/latest/dg/cloudwatch-log-level.html"
CFN_LOGGING = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-properties-stepfunctions-statemachine-loggingconfiguration.html"
)
S3_PUT = "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html"
CHILD = {
    "StartAt": "Echo",
    "States": {"Echo": {"Type": "Pass", "Parameters": {"got.$": "$.v"}, "End": True}},
}
FAILING_CHILD = {
    "StartAt": "Fail",
    "States": {"Fail": {"Type": "Fail", "Error": "Child.Broken", "Cause": "on purpose"}},
}


def _parent(resource: str, child_arn: str) -> dict:
    return {
        "StartAt": "Start",
        "States": {
            "Start": task(
                f"arn:aws:states:::states:{resource}",
                {"StateMachineArn": child_arn, "Input": {"v": 1}},
            )
        },
    }


def sync2_returns_the_child_output_as_json(account):
    result = run(account, _parent("startExecution.sync:2", create(account, CHILD)))
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert output["Status"] == "SUCCEEDED"
    assert output["Output"] == {"got": 1}
    assert output["Input"] == {"v": 1}


def sync_returns_the_child_output_as_a_string(account):
    result = run(account, _parent("startExecution.sync", create(account, CHILD)))
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert isinstance(output["Output"], str)
    assert json.loads(output["Output"]) == {"got": 1}


def fire_and_forget_returns_the_arn_and_starts_the_child(account):
    child = create(account, CHILD)
    result = run(account, _parent("startExecution", child))
    assert result["status"] == "SUCCEEDED", result.get("cause")
    output = json.loads(result["output"])
    assert set(output) == {"ExecutionArn", "StartDate"}
    assert finished(account, output["ExecutionArn"])["status"] == "SUCCEEDED"
    listed = account.client("stepfunctions").list_executions(stateMachineArn=child)["executions"]
    assert [e["executionArn"] for e in listed] == [output["ExecutionArn"]]


def failed_child_fails_the_task_with_its_description(account):
    result = run(account, _parent("startExecution.sync:2", create(account, FAILING_CHILD)))
    assert (result["status"], result["error"]) == ("FAILED", "States.TaskFailed")
    cause = json.loads(result["cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == (
        "FAILED",
        "Child.Broken",
        "on purpose",
    )


def history_comes_in_pages(account):
    machine = create(
        account,
        {
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}},
        },
    )
    sfn = account.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    finished(account, arn)
    every = history(account, arn)
    first = sfn.get_execution_history(executionArn=arn, maxResults=2)
    assert [e["id"] for e in first["events"]] == [1, 2]
    assert first["nextToken"]
    second = sfn.get_execution_history(executionArn=arn, maxResults=2, nextToken=first["nextToken"])
    assert [e["id"] for e in second["events"]] == [3, 4]
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"]
    assert [e["id"] for e in newest] == [e["id"] for e in reversed(every)]
    assert newest[0]["type"] == "ExecutionSucceeded"
    refused(
        lambda: sfn.get_execution_history(executionArn=arn, nextToken="not-a-token"), "InvalidToken"
    )


def _logged_machine(account, level: str, definition: dict, include_data: bool) -> tuple[str, str]:
    logs = account.client("logs")
    group = f"/sfn/{level.lower()}"
    logs.create_log_group(logGroupName=group)
    group_arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
    configuration = {
        "level": level,
        "includeExecutionData": include_data,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }
    return create(account, definition, loggingConfiguration=configuration), group


def _logged_events(account, group: str) -> list[dict]:
    logs = account.client("logs")
    events = logs.filter_log_events(logGroupName=group)["events"]
    return [
        json.loads(e["message"])
        for e in sorted(events, key=lambda e: int(json.loads(e["message"])["id"]))
    ]


def level_all_logs_every_event(account):
    machine, group = _logged_machine(account, "ALL", CHILD, include_data=True)
    sfn = account.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"v": 7}))["executionArn"]
    finished(account, arn)
    logged = _logged_events(account, group)
    assert [e["type"] for e in logged] == [e["type"] for e in history(account, arn)]
    first = logged[0]
    assert set(first) == {
        "id",
        "type",
        "details",
        "previous_event_id",
        "event_timestamp",
        "execution_arn",
    }
    assert first["execution_arn"] == arn
    assert first["event_timestamp"].isdigit()
    assert json.loads(first["details"]["input"]) == {"v": 7}


def level_error_logs_failures_only_without_data(account):
    machine, group = _logged_machine(account, "ERROR", FAILING_CHILD, include_data=False)
    sfn = account.client("stepfunctions")
    finished(account, sfn.start_execution(stateMachineArn=machine)["executionArn"])
    logged = _logged_events(account, group)
    assert [e["type"] for e in logged] == ["FailStateEntered", "ExecutionFailed"]
    assert "input" not in logged[0]["details"]
    assert logged[1]["details"]["error"] == "Child.Broken"


def cloudformation_keeps_the_logging_configuration(account):
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/sfn/cfn:*"
    template = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps(CHILD),
                    "RoleArn": "arn:aws:iam::123456789012:role/states",
                    "LoggingConfiguration": {
                        "Level": "ALL",
                        "IncludeExecutionData": True,
                        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": group_arn}}],
                    },
                },
            }
        }
    }
    account.client("cloudformation").create_stack(
        StackName="logged", TemplateBody=json.dumps(template)
    )
    sfn = account.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    logging = sfn.describe_state_machine(stateMachineArn=machine)["loggingConfiguration"]
    assert logging["level"] == "ALL"
    assert logging["includeExecutionData"] is True
    assert logging["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"] == group_arn


def s3_put_object_writes_a_string_body_as_is(account):
    s3 = account.client("s3")
    s3.create_bucket(Bucket="bodies")
    put = "arn:aws:states:::aws-sdk:s3:putObject"
    definition = {
        "StartAt": "Text",
        "States": {
            "Text": task(put, {"Bucket": "bodies", "Key": "text", "Body": "hello"}, Next="Json"),
            "Json": task(put, {"Bucket": "bodies", "Key": "json", "Body": {"a": 1}}),
        },
    }
    assert run(account, definition)["status"] == "SUCCEEDED"
    assert s3.get_object(Bucket="bodies", Key="text")["Body"].read() == b"hello"
    assert json.loads(s3.get_object(Bucket="bodies", Key="json")["Body"].read()) == {"a": 1}


STOP = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html"


def stop_execution_answers_its_stop_date_and_keeps_the_cause(account):
    """stopDate is a required member of StopExecution's output; error and cause are kept."""
    waiting = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    sfn = account.client("stepfunctions")
    started = sfn.start_execution(stateMachineArn=create(account, waiting), input="{}")
    stopped = sfn.stop_execution(
        executionArn=started["executionArn"], error="Parent.Failed", cause="its parent failed"
    )
    assert stopped["stopDate"] is not None
    described = finished(account, started["executionArn"])
    assert described["status"] == "ABORTED"
    assert (described.get("error"), described.get("cause")) == (
        "Parent.Failed",
        "its parent failed",
    )


@rows(
    Behaviour(
        "stop-execution-stop-date-and-cause",
        STOP,
        stop_execution_answers_its_stop_date_and_keeps_the_cause,
    ),
    Behaviour("start-execution-sync2-output", NESTED, sync2_returns_the_child_output_as_json),
    Behaviour(
        "start-execution-sync-output-string", NESTED, sync_returns_the_child_output_as_a_string
    ),
    Behaviour(
        "start-execution-fire-and-forget",
        NESTED,
        fire_and_forget_returns_the_arn_and_starts_the_child,
    ),
    Behaviour(
        "start-execution-child-fails", NESTED, failed_child_fails_the_task_with_its_description
    ),
    Behaviour("execution-history-pages", HISTORY, history_comes_in_pages),
    Behaviour("execution-log-level-all", LOG_LEVELS, level_all_logs_every_event),
    Behaviour("execution-log-level-error", LOG_LEVELS, level_error_logs_failures_only_without_data),
    Behaviour(
        "cloudformation-logging-configuration",
        CFN_LOGGING,
        cloudformation_keeps_the_logging_configuration,
    ),
    Behaviour("s3-put-object-string-body", S3_PUT, s3_put_object_writes_a_string_body_as_is),
)
def test_step_functions_executions(account, behaviour):
    behaviour.check(account)

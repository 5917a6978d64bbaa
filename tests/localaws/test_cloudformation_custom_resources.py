"""CloudFormation custom resources as AWS runs them: asynchronous, answered on https, timed out."""

from __future__ import annotations

import json
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from localaws import tls
from tests.localaws import cfn
from tests.localaws.fidelity import Behaviour, refused, rows, until

GUIDE = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide"
LAMBDA = "https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html"
TIMEOUT = f"{GUIDE}/aws-resource-cloudformation-customresource.html#cfn-cloudformation-customresource-servicetimeout"
STATUS_CODES = f"{GUIDE}/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes"


def _recorder(account) -> cfn.Recorder:
    return cfn.Recorder(account, Path(tempfile.mkdtemp()) / "requests.jsonl")


def _answer_late(request: dict, status: str = "SUCCESS", physical: str = "late-1") -> int:
    """What a state machine's last step does: PUT the answer on the ResponseURL, later."""
    body = {
        "Status": status,
        "Reason": "answered late",
        "PhysicalResourceId": physical,
        "StackId": "",
        "RequestId": "",
        "LogicalResourceId": request["LogicalResourceId"],
        "Data": {"Late": "yes"},
    }
    put = urllib.request.Request(
        request["ResponseURL"], data=json.dumps(body).encode(), method="PUT"
    )
    trusted = ssl.create_default_context(cafile=str(tls.current().ca_file))
    with urllib.request.urlopen(put, context=trusted, timeout=10) as response:
        return response.status


def _wait_for_request(recorder: cfn.Recorder, kind: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in recorder.requests() if r["RequestType"] == kind]
        if found:
            time.sleep(0.2)  # the handler has returned by now
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no {kind} request reached the handler")


def both_types_run_create_and_delete(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template(
        {
            "Default": cfn.custom(recorder.arn, Echo="a", Count=3, Flag=True, List=[1, False]),
            "Named": cfn.custom(recorder.arn, "Custom::Named", Echo="b"),
        },
        {"Echo": {"Value": {"Fn::GetAtt": ["Default", "Echo"]}}},
    )
    stack_id = client.create_stack(StackName="types", TemplateBody=body)["StackId"]
    stack = cfn.settled(client, stack_id)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"] == "a"
    assert sorted(recorder.kinds()) == [("Create", "Default"), ("Create", "Named")]
    sent = next(r for r in recorder.requests() if r["LogicalResourceId"] == "Default")
    assert (sent["Properties"]["Count"], sent["Properties"]["Flag"]) == ("3", "true")
    assert sent["Properties"]["List"] == ["1", "false"]
    assert ("Default", "CREATE_COMPLETE", "") in cfn.resource_events(client, stack_id)
    client.delete_stack(StackName="types")
    assert cfn.settled(client, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert sorted(recorder.kinds()[2:]) == [("Delete", "Default"), ("Delete", "Named")]


def an_answer_after_the_handler_returns_completes_create(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template({"Late": cfn.custom(recorder.arn, Silent="Create")})
    with account.clock.holding():  # the system that will answer is at work: time waits for it
        stack_id = client.create_stack(StackName="late", TemplateBody=body)["StackId"]
        request = _wait_for_request(recorder, "Create")
        assert request["StackStatus"] == "CREATE_IN_PROGRESS"
        (stack,) = client.describe_stacks(StackName=stack_id)["Stacks"]
        assert stack["StackStatus"] == "CREATE_IN_PROGRESS"
        assert "Outputs" not in stack
        refused(  # an operation in progress refuses another
            lambda: client.update_stack(StackName="late", TemplateBody=body),
            "ValidationError",
            "CREATE_IN_PROGRESS state and can not be updated",
        )
        assert _answer_late(request) == 200
        stack = cfn.settled(client, stack_id)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    resources = client.describe_stack_resources(StackName=stack_id)["StackResources"]
    assert [r["PhysicalResourceId"] for r in resources] == ["late-1"]


def a_delete_waits_in_progress_until_answered(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template({"Late": cfn.custom(recorder.arn, Silent="Delete")})
    stack_id = client.create_stack(StackName="late-delete", TemplateBody=body)["StackId"]
    assert cfn.settled(client, stack_id)["StackStatus"] == "CREATE_COMPLETE"
    with account.clock.holding():
        client.delete_stack(StackName="late-delete")
        request = _wait_for_request(recorder, "Delete")
        assert request["StackStatus"] == "DELETE_IN_PROGRESS"
        assert request["PhysicalResourceId"] == "p-Late"
        (stack,) = client.describe_stacks(StackName="late-delete")["Stacks"]
        assert stack["StackStatus"] == "DELETE_IN_PROGRESS"
        client.delete_stack(StackName="late-delete")  # a second delete while deleting: accepted
        assert _answer_late(request, physical="p-Late") == 200
        assert cfn.settled(client, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    refused(lambda: client.describe_stacks(StackName="late-delete"), "ValidationError")


def no_answer_fails_after_the_service_timeout(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template({"Mute": cfn.custom(recorder.arn, Silent="Create", ServiceTimeout="300")})
    start, real = account.clock.time(), time.monotonic()
    stack_id = client.create_stack(StackName="mute", TemplateBody=body)["StackId"]
    stack = cfn.settled(client, stack_id)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert account.clock.time() - start >= 300
    assert time.monotonic() - real < 20
    (_, status, why) = next(
        e for e in cfn.resource_events(client, stack_id) if e[1].endswith("FAILED")
    )
    assert status == "CREATE_FAILED"
    create = recorder.requests()[0]
    assert why.startswith("CloudFormation did not receive a response from your Custom Resource")
    assert create["ResponseURL"].split("%7C")[-1].split("?")[0] in why  # the requestId
    assert "The following resource(s) failed to create: [Mute]" in " ".join(
        e["ResourceStatusReason"] or ""
        for e in client.describe_stack_events(StackName=stack_id)["StackEvents"]
        if e["ResourceStatus"] == "ROLLBACK_IN_PROGRESS"
    )
    delete = recorder.requests()[1]  # rollback deletes it, with an id CloudFormation made up
    assert delete["RequestType"] == "Delete"
    assert delete["PhysicalResourceId"].startswith("mute-Mute-")


def a_failed_answer_rolls_back_and_deletes_what_it_named(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template(
        {"Bucket": {"Type": "AWS::S3::Bucket"}, "Broken": cfn.custom(recorder.arn, Fail="Create")}
    )
    stack_id = client.create_stack(StackName="broken", TemplateBody=body)["StackId"]
    assert cfn.settled(client, stack_id)["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = [e for e in cfn.resource_events(client, stack_id) if e[1] == "CREATE_FAILED"]
    assert failed[0][0] == "Broken"
    assert failed[0][2].startswith(
        "Received response status [FAILED] from custom resource. Message returned: "
        "asked to fail Create (RequestId: "
    )
    assert [(r["RequestType"], r["PhysicalResourceId"]) for r in recorder.requests()] == [
        ("Create", None),
        ("Delete", "p-Broken"),
    ]
    assert account.client("s3").list_buckets()["Buckets"] == []  # rolled back too
    assert cfn.stack_statuses(client, stack_id)[-2:] == [
        "ROLLBACK_IN_PROGRESS",
        "ROLLBACK_COMPLETE",
    ]


def the_response_url_is_https_trusted_by_functions_only(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template({"Secure": cfn.custom(recorder.arn, Silent="Delete")})
    stack_id = client.create_stack(StackName="secure", TemplateBody=body)["StackId"]
    assert cfn.settled(client, stack_id)["StackStatus"] == "CREATE_COMPLETE"  # urllib's PUT
    url = recorder.requests()[0]["ResponseURL"]
    assert url.startswith("https://")
    assert "/cloudformation-custom-resource-response-useast1/" in url
    put = urllib.request.Request(url, data=b"{}", method="PUT")
    with pytest.raises(urllib.error.URLError) as caught:  # this process does not trust it
        urllib.request.urlopen(put, timeout=10)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    forged = urllib.request.Request(url.replace("Signature=", "Signature=0"), b"{}", method="PUT")
    trusted = ssl.create_default_context(cafile=str(tls.current().ca_file))
    with pytest.raises(urllib.error.HTTPError) as denied:  # pre-signed: a changed URL is refused
        urllib.request.urlopen(forged, context=trusted, timeout=10)
    assert denied.value.code == 403


def an_answer_longer_than_4096_bytes_fails(account) -> None:
    recorder = _recorder(account)
    client = account.client("cloudformation")
    body = cfn.template({"Chatty": cfn.custom(recorder.arn, Pad="5000")})
    stack_id = client.create_stack(StackName="chatty", TemplateBody=body)["StackId"]
    assert cfn.settled(client, stack_id)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert ("Chatty", "CREATE_FAILED", "Response object is too long.") in cfn.resource_events(
        client, stack_id
    )


STARTER = """
import json, os
import boto3

def handler(event, context):
    boto3.client("stepfunctions").start_execution(
        stateMachineArn=os.environ["MACHINE"], input=json.dumps(event)
    )
    return {"started": True}
"""

ANSWERER = """
import json, urllib.request

def handler(event, context):
    body = {
        "Status": "SUCCESS",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "made-by-machine",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"By": "state machine"},
    }
    put = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT")
    with urllib.request.urlopen(put, timeout=10) as response:
        return response.status
"""


WAITER = """
import json, os, time, urllib.request
import boto3

def handler(event, context):
    sfn = boto3.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=os.environ["MACHINE"], input=json.dumps(event))
    for _ in range(600):  # wait for the machine (its Lambda step), then answer
        status = sfn.describe_execution(executionArn=run["executionArn"])["status"]
        if status != "RUNNING":
            break
        time.sleep(0.05)
    body = {
        "Status": "SUCCESS" if status == "SUCCEEDED" else "FAILED",
        "Reason": "machine " + status,
        "PhysicalResourceId": event.get("PhysicalResourceId") or "waited",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    put = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT")
    urllib.request.urlopen(put, timeout=10).close()
"""


def _machine_calling(account, function_arn: str) -> str:
    return account.client("stepfunctions").create_state_machine(
        name=f"calls-{function_arn.rsplit(':', 1)[-1]}",
        roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps(
            {
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Pass", "Next": "Call"},
                    "Call": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                        "End": True,
                    },
                },
            }
        ),
    )["stateMachineArn"]


def a_handler_waiting_for_a_machine_with_a_lambda_step_completes(account) -> None:
    step = cfn.function(account, "step", "def handler(event, context):\n    return 'done'\n")
    machine = _machine_calling(account, step)
    waiter = cfn.function(account, "waiter", WAITER, {"MACHINE": machine})
    client = account.client("cloudformation")
    stack_id = client.create_stack(
        StackName="waits", TemplateBody=cfn.template({"Waits": cfn.custom(waiter)})
    )["StackId"]
    stack = cfn.settled(client, stack_id, timeout=120)
    assert stack["StackStatus"] == "CREATE_COMPLETE", cfn.resource_events(client, stack_id)


def a_state_machine_answers_after_the_handler_returned(account) -> None:
    answerer = cfn.function(account, "answerer", ANSWERER)
    machine = account.client("stepfunctions").create_state_machine(
        name="answers",
        roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps(
            {
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Pass", "Next": "Answer"},
                    "Answer": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": answerer, "Payload.$": "$"},
                        "End": True,
                    },
                },
            }
        ),
    )["stateMachineArn"]
    starter = cfn.function(account, "starter", STARTER, {"MACHINE": machine})
    client = account.client("cloudformation")
    body = cfn.template(
        {"Slow": cfn.custom(starter)}, {"By": {"Value": {"Fn::GetAtt": ["Slow", "By"]}}}
    )
    stack_id = client.create_stack(StackName="machine", TemplateBody=body)["StackId"]
    stack = cfn.settled(client, stack_id)
    assert stack["StackStatus"] == "CREATE_COMPLETE", cfn.resource_events(client, stack_id)
    assert stack["Outputs"][0]["OutputValue"] == "state machine"
    client.delete_stack(StackName=stack_id)
    assert cfn.settled(client, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    # The answer reaches CloudFormation before the Lambda's return reaches the execution,
    # on AWS too: the stack can settle while the execution is still finishing its last step.
    statuses = until(
        account,
        lambda: sorted(
            e["status"]
            for e in account.client("stepfunctions").list_executions(stateMachineArn=machine)[
                "executions"
            ]
        ),
        lambda found: "RUNNING" not in found,
    )
    assert statuses == ["SUCCEEDED", "SUCCEEDED"]


CUSTOM_RESOURCES = [
    Behaviour(
        "cfn-custom-resource-both-types",
        f"{GUIDE}/template-custom-resources.html (AWS::CloudFormation::CustomResource or "
        f"Custom::MyCustomResourceTypeName); {GUIDE}/crpg-ref-requesttypes-delete.html; "
        "https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html "
        "(properties are always stringified by CloudFormation)",
        both_types_run_create_and_delete,
    ),
    Behaviour(
        "cfn-custom-resource-late-answer-completes-create",
        f"{LAMBDA} (invoked asynchronously with a callback URL); {GUIDE}/crpg-ref.html (the "
        "response before the timeout period expires)",
        an_answer_after_the_handler_returns_completes_create,
    ),
    Behaviour(
        "cfn-custom-resource-answered-by-a-state-machine",
        f"{LAMBDA} (asynchronous invocation); {GUIDE}/crpg-ref.html (the provider returns a "
        "response to the presigned URL before the timeout, from wherever it runs)",
        a_state_machine_answers_after_the_handler_returned,
    ),
    Behaviour(
        "cfn-custom-resource-handler-waits-for-a-machine",
        "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html (functions run "
        f"concurrently, each invocation in its own environment); {LAMBDA}",
        a_handler_waiting_for_a_machine_with_a_lambda_step_completes,
    ),
    Behaviour(
        "cfn-delete-in-progress-while-a-custom-resource-answers",
        f"{STATUS_CODES} (DELETE_IN_PROGRESS); {GUIDE}/crpg-ref-requesttypes-delete.html",
        a_delete_waits_in_progress_until_answered,
    ),
    Behaviour(
        "cfn-custom-resource-service-timeout",
        f"{TIMEOUT} (1 to 3600 s, default 3600); {GUIDE}/crpg-ref.html (no response before the "
        f"timeout: the operation fails); {GUIDE}/stack-failure-options.html (rollback)",
        no_answer_fails_after_the_service_timeout,
    ),
    Behaviour(
        "cfn-custom-resource-failed-answer",
        f"{GUIDE}/crpg-ref-responses.html (Status FAILED, Reason, PhysicalResourceId); "
        f"{GUIDE}/stack-failure-options.html (rollback deletes what was created)",
        a_failed_answer_rolls_back_and_deletes_what_it_named,
    ),
    Behaviour(
        "cfn-custom-resource-https-response-url",
        f"{LAMBDA} (ResponseURL https://cloudformation-custom-resource-response-...); "
        f"{GUIDE}/crpg-ref-requesttypes-create.html (a presigned S3 URL)",
        the_response_url_is_https_trusted_by_functions_only,
    ),
    Behaviour(
        "cfn-custom-resource-response-size",
        f"{GUIDE}/crpg-ref-responses.html (the response body can't exceed 4096 bytes)",
        an_answer_longer_than_4096_bytes_fails,
    ),
]


@rows(*CUSTOM_RESOURCES)
def test_custom_resources(behaviour, account):
    behaviour.check(account)

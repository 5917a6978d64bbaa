"""Helpers for CloudFormation rows: a recording custom resource handler, stacks that settle."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

# A custom resource handler driven by its properties, which records every request it gets (and
# what the account looked like then) as a JSON line in the file named by $LOG.
#   Silent: request types it does not answer (someone else does, later, or nobody)
#   Fail:   request types it answers FAILED
#   Physical: the PhysicalResourceId it answers Create/Update with (default: unchanged / "p-<id>")
#   Pad: characters of padding in Data (to make an answer too long)
RECORDING_HANDLER = """
import json, os, urllib.request
import boto3

def handler(event, context):
    props = event["ResourceProperties"]
    kind = event["RequestType"]
    stack = boto3.client("cloudformation").describe_stacks(StackName=event["StackId"])["Stacks"][0]
    record = {
        "RequestType": kind,
        "LogicalResourceId": event["LogicalResourceId"],
        "PhysicalResourceId": event.get("PhysicalResourceId"),
        "Properties": props,
        "OldProperties": event.get("OldResourceProperties"),
        "ResponseURL": event["ResponseURL"],
        "StackStatus": stack["StackStatus"],
        "Buckets": sorted(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]),
    }
    with open(os.environ["LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
    if kind in props.get("Silent", "").split(","):
        return {"answered": False}
    physical = event.get("PhysicalResourceId") or "p-" + event["LogicalResourceId"]
    if kind != "Delete" and props.get("Physical"):
        physical = props["Physical"]
    body = {
        "Status": "FAILED" if kind in props.get("Fail", "").split(",") else "SUCCESS",
        "Reason": "asked to fail " + kind,
        "PhysicalResourceId": physical,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Echo": props.get("Echo", ""), "Pad": "x" * int(props.get("Pad", "0") if kind == "Create" else 0)},
    }
    request = urllib.request.Request(
        event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
        headers={"Content-Type": ""},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return {"answered": response.status}
"""


def zipped(source: str, name: str = "index.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, source)
    return buffer.getvalue()


def function(account, name: str, source: str, environment: dict | None = None) -> str:
    """A Python Lambda function in the account; its ARN."""
    iam = account.client("iam")
    try:
        role = iam.get_role(RoleName="cfn-rows")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="cfn-rows", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return account.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": zipped(source)},
        Timeout=60,
        Environment={"Variables": environment or {}},
    )["FunctionArn"]


class Recorder:
    """The recording handler as a function, and what it recorded."""

    def __init__(self, account, log: Path, name: str = "recorder") -> None:
        self.log = log
        self.arn = function(account, name, RECORDING_HANDLER, {"LOG": str(log)})

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def kinds(self) -> list[tuple[str, str]]:
        return [(r["RequestType"], r["LogicalResourceId"]) for r in self.requests()]


def custom(token: str, resource_type: str = "AWS::CloudFormation::CustomResource", **props):
    return {"Type": resource_type, "Properties": {"ServiceToken": token, **props}}


def template(resources: dict, outputs: dict | None = None) -> str:
    body: dict = {"Resources": resources}
    if outputs:
        body["Outputs"] = outputs
    return json.dumps(body)


def settled(cloudformation, stack: str, timeout: float = 60) -> dict:
    """Poll (real time) until the stack's operation ends; its description."""
    deadline = time.monotonic() + timeout
    while True:
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        if not found["StackStatus"].endswith("_IN_PROGRESS"):
            return found
        assert time.monotonic() < deadline, f"{stack} still {found['StackStatus']}"
        time.sleep(0.05)


def deleted(cloudformation, stack: str, timeout: float = 60) -> None:
    """Poll (real time) until a deleted stack is gone (by name, AWS no longer knows it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        except cloudformation.exceptions.ClientError as err:
            if "does not exist" in str(err):
                return
            raise
        assert found["StackStatus"] != "DELETE_FAILED", found.get("StackStatusReason")
        assert time.monotonic() < deadline, f"{stack} still {found['StackStatus']}"
        time.sleep(0.05)


def reaches(cloudformation, stack: str, status: str, timeout: float = 30) -> None:
    """Poll (real time) until describe_stacks shows this status."""
    deadline = time.monotonic() + timeout
    while True:
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
        if found["StackStatus"] == status:
            return
        assert time.monotonic() < deadline, f"{stack} never {status}: {found['StackStatus']}"
        time.sleep(0.02)


def resource_events(cloudformation, stack: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) of the stack's resources, oldest first."""
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    return [
        (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "")
        for e in reversed(events)
        if e["ResourceType"] != "AWS::CloudFormation::Stack"
    ]


def stack_statuses(cloudformation, stack: str) -> list[str]:
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    return [
        e["ResourceStatus"]
        for e in reversed(events)
        if e["ResourceType"] == "AWS::CloudFormation::Stack"
    ]

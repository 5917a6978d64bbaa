"""Creating Python Lambda functions in a row: a handler's source becomes a deployed function."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def zipped(source: str, module: str = "app.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(module, source)
    return buffer.getvalue()


def role(account) -> str:
    """A role Lambda can assume (created once per account)."""
    iam = account.client("iam")
    try:
        return iam.get_role(RoleName="localaws-test-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        created = iam.create_role(RoleName="localaws-test-lambda", AssumeRolePolicyDocument=TRUST)
        return created["Role"]["Arn"]


def create(account, source: str, handler: str = "app.handler", **config) -> str:
    """The ARN of a new python3.12 function running `source` as app.py."""
    return account.client("lambda").create_function(
        FunctionName=f"f-{uuid.uuid4().hex[:12]}",
        Runtime="python3.12",
        Role=role(account),
        Handler=handler,
        Code={"ZipFile": zipped(source)},
        **config,
    )["FunctionArn"]


def invoke(account, function: str, event: dict | None = None) -> tuple[dict, str | None]:
    """(payload, FunctionError) of a synchronous invocation."""
    response = account.client("lambda").invoke(
        FunctionName=function, Payload=json.dumps(event or {})
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def log_text(account, function_name: str) -> str:
    """Every log line of the function, all streams."""
    logs = account.client("logs")
    group = f"/aws/lambda/{function_name}"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
        lines += [event["message"] for event in events["events"]]
    return "\n".join(lines)

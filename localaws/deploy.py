"""Deploy a synthesized CDK app into the local account without the CDK CLI (fast, for tests).

What the CLI does, reduced to its effect: the bootstrap bucket and version parameter exist,
every file asset of `*.assets.json` is uploaded to its destination, the template is created (or
updated) as a stack, and the stack is polled until its operation ends (stack operations run in the
background, as in CloudFormation). `cdk deploy` itself works against `localaws start` (server.py).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"


def _substitute(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def _asset_bytes(source: Path, packaging: str) -> bytes:
    if packaging == "file":
        return source.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(source).as_posix())
    return buffer.getvalue()


def bootstrap(client: Callable, account: str, region: str) -> str:
    """The bootstrap bucket and version parameter `cdk bootstrap` would create."""
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}"
    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version",
        Value=BOOTSTRAP_VERSION,
        Type="String",
        Overwrite=True,
    )
    return bucket


def upload_assets(
    client: Callable, cdk_out: Path, stack_name: str, account: str, region: str
) -> int:
    manifest = json.loads((cdk_out / f"{stack_name}.assets.json").read_text())
    s3 = client("s3")
    uploaded = 0
    for asset in manifest.get("files", {}).values():
        source = asset["source"]
        if "path" not in source:
            raise ValueError(f"asset {asset} is built by a command; localaws uploads files only")
        body = _asset_bytes(cdk_out / source["path"], source.get("packaging", "file"))
        for destination in asset["destinations"].values():
            s3.put_object(
                Bucket=_substitute(destination["bucketName"], account, region),
                Key=_substitute(destination["objectKey"], account, region),
                Body=body,
            )
            uploaded += 1
    return uploaded


def wait_for_stack(cloudformation, stack_id: str, timeout: float = 600) -> dict:
    """Poll until the stack's operation ends (as the CDK CLI does); the stack's description.

    Stack operations run in the background, as in CloudFormation. `timeout` is in real seconds:
    waits inside the account (custom resources) run on the virtual clock and take far less.
    """
    deadline = time.monotonic() + timeout
    while True:
        (stack,) = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack['StackName']} still {stack['StackStatus']}")
        time.sleep(0.05)


def failure_reasons(cloudformation, stack_id: str) -> list[str]:
    """Each failed resource with its reason, oldest first: what `cdk deploy` prints."""
    events = cloudformation.describe_stack_events(StackName=stack_id)["StackEvents"]
    return [
        f"{e['LogicalResourceId']} {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if e["ResourceStatus"].endswith("_FAILED")
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
    ]


def deploy_assembly(client: Callable, cdk_out: Path, stack_name: str) -> dict[str, str]:
    identity = client("sts").get_caller_identity()
    account, region = identity["Account"], client("s3").meta.region_name
    bootstrap(client, account, region)
    upload_assets(client, cdk_out, stack_name, account, region)
    template = (cdk_out / f"{stack_name}.template.json").read_text()
    cloudformation = client("cloudformation")
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    existing = {s["StackName"] for s in cloudformation.describe_stacks().get("Stacks", [])}
    if stack_name in existing:
        stack_id = cloudformation.update_stack(
            StackName=stack_name, TemplateBody=template, Capabilities=capabilities
        )["StackId"]
    else:
        stack_id = cloudformation.create_stack(
            StackName=stack_name, TemplateBody=template, Capabilities=capabilities
        )["StackId"]
    stack = wait_for_stack(cloudformation, stack_id)
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        reasons = "; ".join(failure_reasons(cloudformation, stack_id))
        raise RuntimeError(f"stack {stack_name} ended {stack['StackStatus']}: {reasons}")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def destroy_stack(client: Callable, stack_name: str) -> str:
    """Delete the stack and wait: DELETE_COMPLETE, or DELETE_FAILED as in AWS."""
    cloudformation = client("cloudformation")
    found = [
        s
        for s in cloudformation.describe_stacks().get("Stacks", [])
        if s["StackName"] == stack_name
    ]
    if not found:
        return "DELETE_COMPLETE"
    cloudformation.delete_stack(StackName=stack_name)
    return wait_for_stack(cloudformation, found[0]["StackId"])["StackStatus"]

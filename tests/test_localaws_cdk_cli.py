"""The real, pinned CDK CLI against `localaws serve`: bootstrap, deploy, update, destroy, redeploy."""

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from app import build_app
from localaws.server import bootstrap_names, environment, free_port, inventory, report
from recops.config import parse_config
from tests.conftest import DEMO_CONFIG, REPO
from tests.test_stack import STACK_OUTPUTS

KEY = "arn:aws:kms:us-east-1:123456789012:key/0f6c3c36-1111-2222-3333-444455556666"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("localaws") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "localaws", "serve", "--port", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        environment(port),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        NODE_NO_WARNINGS="1",
        CDK_DISABLE_VERSION_CHECK="1",
    )
    session = boto3.session.Session(
        aws_access_key_id="localaws", aws_secret_access_key="localaws", region_name="us-east-1"
    )

    def client(service):
        return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])

    for _ in range(100):
        try:
            client("sts").get_caller_identity()
            break
        except Exception:
            time.sleep(0.2)
    yield env, client
    process.terminate()
    process.wait(timeout=30)


def _assembly(tmp_path, **changes) -> str:
    raw = json.loads(DEMO_CONFIG.read_text())
    raw.update(changes)
    app, _ = build_app(parse_config(raw), outdir=str(tmp_path))
    app.synth()
    return str(tmp_path)


def cdk(env, *args) -> str:
    result = subprocess.run(
        ["npx", "cdk", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"cdk {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def _outputs(client) -> dict:
    (stack,) = client("cloudformation").describe_stacks(StackName="recops-demo")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _encryption(client, bucket) -> str:
    rules = client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]


@pytest.mark.slow
def test_bootstrap_deploy_update_destroy_redeploy(server, tmp_path):
    env, client = server
    plain = _assembly(tmp_path / "plain")
    with_key = _assembly(tmp_path / "kms", kms_key_arn=KEY)
    cdk(env, "bootstrap", "aws://123456789012/us-east-1")
    cdk(env, "deploy", "--app", plain, "--require-approval", "never")
    outputs = _outputs(client)
    assert set(outputs) == STACK_OUTPUTS
    assert _encryption(client, outputs["DataBucketName"]) == "AES256"

    cdk(env, "deploy", "--app", with_key, "--require-approval", "never", "--method=direct")
    assert _encryption(client, _outputs(client)["DataBucketName"]) == "aws:kms"

    s3 = client("s3")
    for body in (b"first", b"second"):  # two versions in the versioned data bucket
        s3.put_object(Bucket=outputs["DataBucketName"], Key="raw/ratings.csv", Body=body)
    cdk(env, "destroy", "--app", with_key, "--force")
    remaining = inventory(client)
    assert remaining["cloudformation stacks"] == ["CDKToolkit (CREATE_COMPLETE)"]
    assert remaining["s3 buckets"] == ["cdk-hnb659fds-assets-123456789012-us-east-1"]
    assert all(role.startswith("cdk-hnb659fds-") for role in remaining["iam roles"])
    assert remaining["lambda functions"] == []

    cdk(env, "deploy", "--app", plain, "--require-approval", "never")
    assert _outputs(client)["DataBucketName"] != outputs["DataBucketName"]
    cdk(env, "destroy", "--app", plain, "--force")
    assert inventory(client)["cloudformation stacks"] == ["CDKToolkit (CREATE_COMPLETE)"]


STARTER = """
import json, os
import boto3

def handler(event, context):
    # Start the work and return: the state machine's last step answers CloudFormation.
    boto3.client("stepfunctions").start_execution(
        stateMachineArn=os.environ["MACHINE"], input=json.dumps(event)
    )
"""

ANSWERER = """
import json, urllib.request

def handler(event, context):
    if not event["ResponseURL"].startswith("https://"):
        raise ValueError("refusing a non-https ResponseURL")
    body = {
        "Status": "SUCCESS",
        "PhysicalResourceId": event.get("PhysicalResourceId") or "made-by-machine",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"By": "state machine " + event["RequestType"]},
    }
    put = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT")
    with urllib.request.urlopen(put, timeout=30):  # verifies the certificate
        pass
"""


def _answered_by_a_state_machine(tmp_path) -> str:
    """A CDK app: a custom resource (CDK's default type) whose handler starts a state machine
    and returns; the machine's last step, a Lambda, answers on the ResponseURL."""
    from aws_cdk import App, CfnOutput, CustomResource, Duration, Environment, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk import aws_stepfunctions_tasks as tasks

    code = tmp_path / "code"
    code.mkdir()
    (code / "starter.py").write_text(STARTER)
    (code / "answerer.py").write_text(ANSWERER)
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "cr-check", env=Environment(account="123456789012", region="us-east-1"))

    def function(name: str, **kwargs) -> lambda_.Function:
        return lambda_.Function(
            stack,
            name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler=f"{name.lower()}.handler",
            code=lambda_.Code.from_asset(str(code)),
            **kwargs,
        )

    answerer = function("Answerer")
    answer = tasks.LambdaInvoke(
        stack, "Answer", lambda_function=answerer, payload=sfn.TaskInput.from_json_path_at("$")
    )
    machine = sfn.StateMachine(
        stack,
        "Machine",
        definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Work").next(answer)),
    )
    starter = function("Starter", environment={"MACHINE": machine.state_machine_arn})
    machine.grant_start_execution(starter)
    resource = CustomResource(
        stack, "Answered", service_token=starter.function_arn, service_timeout=Duration.minutes(10)
    )
    CfnOutput(stack, "By", value=resource.get_att_string("By"))
    app.synth()
    return str(tmp_path / "cdk.out")


@pytest.mark.slow
def test_custom_resource_answered_from_the_end_of_a_state_machine(server, tmp_path):
    """https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html (asynchronous
    invocation, callback URL); .../AWSCloudFormation/latest/UserGuide/crpg-ref.html (the answer
    before the ServiceTimeout, from wherever it is sent)."""
    env, client = server
    assembly = _answered_by_a_state_machine(tmp_path)
    cdk(env, "bootstrap", "aws://123456789012/us-east-1")
    cdk(env, "deploy", "--app", assembly, "--require-approval", "never")
    (stack,) = client("cloudformation").describe_stacks(StackName="cr-check")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"] == "state machine Create"
    stack_id = stack["StackId"]

    cdk(env, "destroy", "--app", assembly, "--force")
    (gone,) = client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"]
    assert gone["StackStatus"] == "DELETE_COMPLETE"
    statuses = [
        (e["LogicalResourceId"], e["ResourceStatus"])
        for e in client("cloudformation").describe_stack_events(StackName=stack_id)["StackEvents"]
    ]
    assert ("Answered", "DELETE_COMPLETE") in statuses
    sfn = client("stepfunctions")
    assert sfn.list_state_machines()["stateMachines"] == []

    found = inventory(client)
    lines = report(found, bootstrap_names(client))
    assert "  cloudformation stacks: CDKToolkit (CREATE_COMPLETE)" in lines
    rest = lines[lines.index("Everything else:") + 1 : -1]
    # What `cdk destroy` leaves, as in AWS: the log groups functions wrote (this stack's two,
    # and any an earlier test's stack left); nothing else.
    assert [line for line in rest if not line.endswith(": 0")] == [
        f"  cloudwatch log groups: {len(found['cloudwatch log groups'])}  "
        + ", ".join(found["cloudwatch log groups"])
    ]
    assert (
        len([g for g in found["cloudwatch log groups"] if g.startswith("/aws/lambda/cr-check-")])
        == 2
    )
    assert lines[-1].startswith("Left besides the CDK bootstrap: ")

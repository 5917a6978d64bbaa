"""The real, pinned CDK CLI against `localaws serve`: bootstrap, deploy, update, destroy, redeploy."""

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from app import build_app
from infra.config import parse_config
from localaws.server import environment, free_port, inventory
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

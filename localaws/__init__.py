"""A local AWS account: moto (pinned) plus the pieces it lacks for this product.

    with LocalAccount() as account:
        outputs = account.deploy(cdk_out, "recops-demo")
        ...
        account.destroy("recops-demo")

Every extension lives in this package, names the moto gap it closes, and has a test that fails
if the gap no longer exists in the pinned moto (see README.md here).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import boto3
from moto import mock_aws

from localaws import (
    clock,
    cloudformation,
    events,
    lambda_runtime,
    personalize,
    sagemaker,
    scheduler,
    stepfunctions,
    validation,
)
from localaws.deploy import deploy_assembly, destroy_stack

MOTO_VERSION = "5.2.5"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# Every extension, installed in this order by LocalAccount and by the server (server.py).
EXTENSIONS = (
    lambda_runtime,
    cloudformation,
    stepfunctions,
    sagemaker,
    personalize,
    events,
    scheduler,
)
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": True},  # the Docker path, whose invoke localaws replaces
}


class LocalAccount:
    """mock_aws with every localaws extension installed, for tests and local runs."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> LocalAccount:
        self.clock = clock.reset()
        self._stack.enter_context(_fake_credentials(self.region))
        self._stack.enter_context(mock_aws(config=MOTO_CONFIG))
        for extension in EXTENSIONS:
            self._stack.enter_context(extension.install())
        # responses checked against the output shape: a gap in an emulated response fails here
        self._stack.enter_context(validation.install(check_responses=True))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def client(self, service: str):
        return boto3.client(service, region_name=self.region)

    def deploy(self, cdk_out: Path, stack_name: str) -> dict[str, str]:
        """Upload the assembly's file assets and create (or update) the stack; its Outputs."""
        return deploy_assembly(self.client, Path(cdk_out), stack_name)

    def destroy(self, stack_name: str) -> str:
        """Delete the stack; the final status (DELETE_COMPLETE, or DELETE_FAILED as in AWS)."""
        return destroy_stack(self.client, stack_name)


@contextlib.contextmanager
def _fake_credentials(region: str):
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ACCESS_KEY_ID="localaws",
        AWS_SECRET_ACCESS_KEY="localaws",  # noqa: S106 - the fake account's fake key
        AWS_DEFAULT_REGION=region,
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

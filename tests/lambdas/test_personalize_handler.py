"""The Personalize steps' handler, bundled as the stack bundles it, run by the local account's
Lambda runtime: what the state machine will receive, results and error names alike."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from infra.lambda_asset import install_into
from localaws import LocalAccount
from localaws.personalize import backend_for
from tests.conftest import REPO
from tests.lambdas.personalize_world import PREFIX, avro

pytestmark = pytest.mark.network  # pip reads the pinned wheels from PyPI (or its cache)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> bytes:
    asset = tmp_path_factory.mktemp("asset")
    install_into(asset, REPO / "lambdas" / "personalize", "3.14")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(asset.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(asset).as_posix())
    return buffer.getvalue()


@pytest.fixture
def steps(bundle):
    with LocalAccount() as account:
        role = account.client("iam").create_role(RoleName="steps", AssumeRolePolicyDocument="{}")
        account.client("lambda").create_function(
            FunctionName="personalize-steps",
            Runtime="python3.14",
            Role=role["Role"]["Arn"],
            Handler="personalize.handlers.handler",
            Code={"ZipFile": bundle},
            Timeout=60,
            Environment={"Variables": {"AWS_MAX_ATTEMPTS": "2"}},  # give up on throttling sooner
        )
        yield account


def invoke(account, event: dict) -> tuple[str | None, dict]:
    response = account.client("lambda").invoke(
        FunctionName="personalize-steps", Payload=json.dumps(event)
    )
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_a_step_answers_what_the_state_machine_polls(steps):
    event = {"step": "datasetGroup", "name": "g", "params": {}, "tags": {"recops:stack": "t"}}
    assert invoke(steps, event) == (
        None,
        {"arn": f"{PREFIX}:dataset-group/g", "status": "CREATE PENDING", "created": True},
    )
    assert invoke(steps, event)[1]["created"] is False
    schema = {"step": "schema", "name": "s", "params": {"schema": avro("ITEMS")}}
    assert invoke(steps, schema)[1]["status"] == "ACTIVE"  # found without listing: the prefix
    # comes from the function's own ARN


def test_errors_reach_the_state_machine_by_name(steps):
    invoke(steps, {"step": "datasetGroup", "name": "g"})
    schema = invoke(steps, {"step": "schema", "name": "s", "params": {"schema": avro("USERS")}})
    dataset = {
        "step": "dataset",
        "name": "d",
        "params": {"datasetType": "USERS"},
        "datasetGroupArn": f"{PREFIX}:dataset-group/g",
        "schemaArn": schema[1]["arn"],
    }
    error, payload = invoke(steps, dataset)
    assert error == "Unhandled"
    assert payload["errorType"] == "ResourceInUseException"  # parent not ACTIVE: Retry
    assert "CREATE PENDING" in payload["errorMessage"]
    backend_for().faults.throttle(2)
    error, payload = invoke(steps, {"step": "datasetGroup", "name": "h"})
    assert payload["errorType"] == "ThrottlingException"  # after botocore's retries:
    assert backend_for().faults.throttle_next == 0  # both attempts (AWS_MAX_ATTEMPTS) made
    _, payload = invoke(steps, {"step": "nothing", "name": "x"})
    assert payload["errorType"] == "InvalidStepInputError"
    assert "one of ['batchInferenceJob'" in payload["errorMessage"]

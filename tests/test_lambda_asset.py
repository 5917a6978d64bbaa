"""Python Lambda code bundled without Docker (infra/lambda_asset.py), built in an empty stack."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra.lambda_asset import (
    REQUIREMENTS,
    RUNS_ARCHITECTURE,
    RUNS_RUNTIME,
    PipTargetBundling,
    SourcePackage,
    python_code,
    runs_code,
)
from tests.conftest import REPO

SOURCE = REPO / "lambdas" / "personalize"
pytestmark = pytest.mark.network  # pip reads the pinned wheels from PyPI (or its cache)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cdk.out")
    saved = os.environ.get("CDK_DOCKER")
    os.environ["CDK_DOCKER"] = "/bin/false"  # any Docker call would fail the synth
    try:
        app = App(outdir=str(outdir))
        stack = Stack(app, "Empty")
        lambda_.Function(
            stack,
            "Steps",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="personalize.handlers.handler",
            code=python_code(SOURCE, lambda_.Runtime.PYTHON_3_14),
        )
        app.synth()
    finally:
        if saved is None:
            os.environ.pop("CDK_DOCKER", None)
        else:
            os.environ["CDK_DOCKER"] = saved
    template = json.loads((outdir / "Empty.template.json").read_text())
    (function,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    asset = outdir / f"asset.{asset_hash}"
    return function, asset


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", path.read_text(), flags=re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in found}


def test_the_asset_holds_powertools_and_the_handler_package(synthesized):
    function, asset = synthesized
    assert function["Properties"]["Handler"] == "personalize.handlers.handler"
    assert function["Properties"]["Runtime"] == "python3.14"
    for path in (
        "aws_lambda_powertools/logging/logger.py",
        "aws_lambda_powertools/tracing/tracer.py",
        "aws_xray_sdk/core/__init__.py",
        "wrapt/__init__.py",
        "personalize/handlers.py",
        "personalize/core.py",
    ):
        assert (asset / path).is_file(), path
    assert not (asset / "botocore").exists()  # the runtime's own
    assert not (asset / "personalize" / "requirements.txt").exists()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.so"))  # pure Python: one asset for x86_64 and arm64


def test_the_asset_has_exactly_the_pinned_versions(synthesized):
    _, asset = synthesized
    wanted = pins(SOURCE / "requirements.txt")
    installed = {
        d.name.split("-")[0].lower().replace("_", "-"): d.name.split("-")[1].removesuffix(".dist")
        for d in asset.glob("*.dist-info")
    }
    assert installed == wanted
    constraints = pins(REPO / "constraints.txt")
    assert {name: constraints.get(name) for name in wanted} == wanted


def test_the_handler_imports_from_the_asset(synthesized):
    _, asset = synthesized
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import aws_lambda_powertools, personalize.handlers as h;"
        "print(aws_lambda_powertools.__file__); print(sorted(h.STEPS))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(asset)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": ""},
    ).stdout.splitlines()
    assert out[0].startswith(str(asset))
    assert "solution" in out[1]


# --- the run steps' asset: binary wheels for one architecture, and packages of this repository ---


@pytest.fixture(scope="module")
def runs_asset(tmp_path_factory):
    """The run steps' function synthesized with runs_code(): its template entry and asset."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    saved = os.environ.get("CDK_DOCKER")
    os.environ["CDK_DOCKER"] = "/bin/false"  # any Docker call would fail the synth
    try:
        app = App(outdir=str(outdir))
        lambda_.Function(
            Stack(app, "Runs"),
            "Plan",
            runtime=RUNS_RUNTIME,
            architecture=RUNS_ARCHITECTURE,
            handler="runs.plan.handler",
            code=runs_code(),
        )
        app.synth()
    finally:
        if saved is None:
            os.environ.pop("CDK_DOCKER", None)
        else:
            os.environ["CDK_DOCKER"] = saved
    template = json.loads((outdir / "Runs.template.json").read_text())
    (function,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    ]
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    return function, outdir / f"asset.{asset_hash}"


def test_the_runs_asset_holds_linux_wheels_recops_and_no_numpy(runs_asset):
    function, asset = runs_asset
    assert function["Properties"]["Runtime"] == "python3.12"
    assert function["Properties"]["Architectures"] == ["x86_64"]
    for path in (
        "runs/plan.py",
        "runs/trigger.py",
        "recops/config.py",
        "recops/contracts.py",
        "recops/config.schema.json",
        "recops/sagemaker_instance_types.json",
        "training/__init__.py",
        "training/personalize_schemas.py",
        "training/input_formats.py",
        "jsonschema_specifications/schemas/draft202012/metaschema.json",
    ):
        assert (asset / path).is_file(), path
    binaries = sorted(p.name for p in asset.rglob("*.so"))
    assert "_pydantic_core.cpython-312-x86_64-linux-gnu.so" in binaries
    assert any(name.startswith("rpds.cpython-312-x86_64-linux-gnu") for name in binaries)
    assert sorted(p.name for p in (asset / "training").iterdir()) == [
        "__init__.py",
        "input_formats.py",
        "personalize_schemas.py",
    ]
    assert not (asset / "numpy").exists()
    assert not (asset / "pandas").exists()
    assert not (asset / "botocore").exists()  # the runtime's own
    assert not (asset / "runs" / "requirements.txt").exists()
    assert not list(asset.rglob("__pycache__"))


def test_the_runs_asset_has_exactly_the_pinned_versions(runs_asset):
    _, asset = runs_asset
    wanted = pins(REPO / "lambdas" / "runs" / "requirements.txt")
    installed = {
        d.name.split("-")[0].lower().replace("_", "-"): d.name.split("-")[1].removesuffix(".dist")
        for d in asset.glob("*.dist-info")
    }
    assert installed == wanted
    constraints = pins(REPO / "constraints.txt")
    assert {name: constraints.get(name) for name in wanted} == wanted


def test_the_asset_hash_follows_every_bundled_file(tmp_path):
    """CDK would hash the source directory only: a change to recops would not redeploy."""
    source, package = tmp_path / "steps", tmp_path / "shared"
    for directory, name in ((source, "handler.py"), (package, "model.py")):
        (directory / "__pycache__").mkdir(parents=True)
        (directory / name).write_text("x = 1\n")
    (package / "__init__.py").write_text("")
    (source / REQUIREMENTS).write_text("pydantic==2.14.3\n")

    def content_hash(**options) -> str:
        return PipTargetBundling(source, "3.12", **options).content_hash()

    bundled = {"packages": (SourcePackage(package),), "platform": "x86_64"}
    before = content_hash(**bundled)
    (package / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"bytecode")
    assert content_hash(**bundled) == before
    assert content_hash(**{**bundled, "platform": "arm64"}) != before
    assert content_hash(**{**bundled, "packages": ()}) != before
    (package / "model.py").write_text("x = 2\n")
    assert content_hash(**bundled) != before
    after = content_hash(**bundled)
    (source / REQUIREMENTS).write_text("pydantic==2.14.2\n")
    assert content_hash(**bundled) != after


NO_TRACING = {"POWERTOOLS_TRACE_DISABLED": "true"}


def test_the_runs_handlers_run_in_lambdas_python_from_the_asset(runs_asset):
    """The real asset, zipped, run by the local account's isolated python3.12 worker (no dev
    venv on sys.path): pydantic-core, rpds-py and the repository's packages import there."""
    from localaws import LocalAccount
    from tests.localaws.functions import log_text, role

    _, asset = runs_asset
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(asset.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(asset).as_posix())
    config = {
        "prefix": "recops-test",
        "data": {"interactions": {"path": "raw/i.csv"}},
        "personalize": {"solutions": [{"name": "pop", "recipe": "aws-popularity-count"}]},
    }
    rows = "\n".join(f"u{n % 40},i{n % 70},{1_600_000_000 + n}" for n in range(1200))
    with LocalAccount() as account:
        s3 = account.client("s3")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="raw/i.csv", Body=f"user_id,item_id,timestamp\n{rows}\n")
        s3.put_object(Bucket="data", Key="train/bad.json", Body=b'{"prefix": "x"}')
        functions = account.client("lambda")
        functions.create_function(  # one function, then the other handler: a 15 MB zip is slow
            FunctionName="runs",  # to create locally (seconds)
            Runtime="python3.12",
            Role=role(account),
            Handler="runs.plan.handler",
            Code={"ZipFile": buffer.getvalue()},
            Timeout=60,
            Environment={"Variables": {"DATA_BUCKET": "data", **NO_TRACING}},
        )
        planned = functions.invoke(
            FunctionName="runs",
            Payload=json.dumps({"input": {}, "deployedConfig": config, "executionName": "a" * 36}),
        )
        assert "FunctionError" not in planned, planned["Payload"].read()
        result = json.loads(planned["Payload"].read())
        assert (result["runId"], result["stack"]) == ("a" * 12, "recops-test")
        assert result["checks"]["data"]["interactions"]["stoppedEarly"] is True
        logs = log_text(account, "runs")
        functions.update_function_configuration(
            FunctionName="runs",
            Handler="runs.trigger.handler",
            Environment={
                "Variables": {
                    "PERSONALIZE_STATE_MACHINE_ARN": "arn:aws:states:::x",
                    "FM_KNN_STATE_MACHINE_ARN": "arn:aws:states:::y",
                    **NO_TRACING,
                }
            },
        )
        upload = {"detail": {"bucket": {"name": "data"}, "object": {"key": "train/bad.json"}}}
        triggered = functions.invoke(FunctionName="runs", Payload=json.dumps(upload))
        answer = json.loads(triggered["Payload"].read())
        assert "FunctionError" not in triggered, answer
        assert answer["rejected"].startswith("s3://data/train/bad.json: ")
    assert "localaws runs python3.12 functions on Python" not in logs  # pyenv's 3.12 ran it

"""Python Lambda code bundled without Docker (infra/lambda_asset.py), built in an empty stack."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra.lambda_asset import python_code
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

"""`make synth`'s command: the pinned CDK CLI, no credentials."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_pinned_cli_synthesizes_without_credentials(tmp_path):
    package = json.loads((REPO / "package.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"
    }
    env.update(
        AWS_EC2_METADATA_DISABLED="true", CDK_DISABLE_VERSION_CHECK="1", NODE_NO_WARNINGS="1"
    )
    version = subprocess.run(
        ["npx", "cdk", "--version"], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith(pinned)
    result = subprocess.run(
        ["npx", "cdk", "synth", "--quiet", "-o", str(tmp_path / "cdk.out")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "cdk.out" / "recops-demo.template.json").exists()

"""Shared fixtures: the demo app is synthesized once per test session."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "movielens-demo.json"


@dataclass
class Assembly:
    """What `cdk synth` wrote for the demo config."""

    outdir: Path
    stack_name: str

    @property
    def template(self) -> dict:
        return json.loads((self.outdir / f"{self.stack_name}.template.json").read_text())

    @property
    def metadata(self) -> dict:
        return json.loads((self.outdir / f"{self.stack_name}.metadata.json").read_text())


@pytest.fixture(scope="session")
def demo_config():
    from recops.config import load_config

    return load_config(DEMO_CONFIG)


@pytest.fixture(scope="session")
def demo_assembly(demo_config, tmp_path_factory) -> Assembly:
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app(demo_config, outdir=str(outdir))
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    return Assembly(outdir=outdir, stack_name=stack.stack_name)

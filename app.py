#!/usr/bin/env python3
"""The CDK app: `cdk synth -c config=config/NAME.json` (the demo config when omitted)."""

from __future__ import annotations

import sys
from pathlib import Path

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import RecopsStack
from recops.config import ConfigError, PipelineConfig, load_config

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "movielens-demo.json"
# Feature flags live here rather than in cdk.json so that tests, which build the app without
# the CLI, synthesize exactly what `cdk synth` does.
FEATURE_FLAGS = {
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,
    "@aws-cdk/aws-iam:standardizedServicePrincipals": True,
    "@aws-cdk/core:validateSnapshotRemovalPolicy": True,
}


def build_app(config: PipelineConfig, outdir: str | None = None) -> tuple[App, RecopsStack]:
    """The app with its one stack, checked by cdk-nag's AWS Solutions rules at synth."""
    app = App(context=FEATURE_FLAGS, outdir=outdir)
    stack = RecopsStack(app, config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    probe = App()  # only to read -c config=... the same way the CLI passes it
    config_path = probe.node.try_get_context("config") or DEFAULT_CONFIG
    try:
        config = load_config(config_path)
    except ConfigError as err:
        print(f"recops: {err}", file=sys.stderr)
        sys.exit(2)
    app, _ = build_app(config)
    app.synth()


if __name__ == "__main__":
    main()

"""Python Lambda code with its pinned dependencies, bundled on this machine: no Docker.

Why: CDK's Python bundling runs pip inside a Docker image, and the developers' machines and CI
have no Docker; a public layer ARN would tie the stack to a layer in someone else's account.
Here a local bundling step runs `pip install --target` on the source directory's pinned, complete
requirements.txt (`--no-deps`; boto3 comes with the runtime) taking pure-Python wheels only, so
one asset serves x86_64 and arm64, then copies the directory beside them as a package (handler
`<directory>.<module>.<function>`). The Docker image the API insists on is never pulled: local
bundling always succeeds or raises.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REQUIREMENTS = "requirements.txt"
NEVER_BUNDLED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.md", REQUIREMENTS)


def python_code(source: Path, runtime: lambda_.Runtime) -> lambda_.Code:
    """The directory as a package, with its requirements, for a function of this runtime."""
    version = runtime.name.removeprefix("python")
    return lambda_.Code.from_asset(
        str(source),
        bundling=BundlingOptions(
            image=DockerImage.from_registry("none"),  # required by the API; never used
            local=PipTargetBundling(source, version),
        ),
    )


def install_into(output: Path, source: Path, python_version: str) -> None:
    """The asset's content: pinned pure-Python wheels, then the source package."""
    requirements = source / REQUIREMENTS
    if requirements.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--quiet",  # twice: warnings about the machine's pip config too
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--platform=any",
                "--implementation=py",
                f"--python-version={python_version}",
                "--no-compile",
                f"--target={output}",
                f"--requirement={requirements}",
            ],
            check=True,
        )
        shutil.rmtree(output / "bin", ignore_errors=True)  # console scripts: no use in Lambda
    shutil.copytree(source, output / source.name, ignore=NEVER_BUNDLED, dirs_exist_ok=True)


@jsii.implements(ILocalBundling)
class PipTargetBundling:
    """CDK's local bundling hook: builds the asset with `install_into`."""

    def __init__(self, source: Path, python_version: str) -> None:
        self.source, self.python_version = Path(source), python_version

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        install_into(Path(output_dir), self.source, self.python_version)
        return True

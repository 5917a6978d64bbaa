"""Python Lambda code with its pinned dependencies, bundled on this machine: no Docker.

Why: CDK's Python bundling runs pip inside a Docker image, and the developers' machines and CI
have no Docker; a public layer ARN would tie the stack to a layer in someone else's account.
Here a local bundling step runs `pip install --target` on the source directory's pinned, complete
requirements.txt (`--no-deps`; boto3 comes with the runtime), then copies the directory beside
them as a package (handler `<directory>.<module>.<function>`), and any packages of this
repository the code imports (`SourcePackage`: all of `recops`, or a few numpy-free modules of
`training`). The Docker image the API insists on is never pulled: local bundling always succeeds
or raises.

Wheels: without an architecture, pure-Python wheels only (`--platform any`), so one asset serves
x86_64 and arm64. With one, the wheels built for Lambda's Linux on that architecture
(`--platform manylinux2014_<arch>`, CPython of the runtime's version, binary wheels only): how a
binary dependency such as pydantic-core gets in without building anything. manylinux2014 means
glibc 2.17, which every Python runtime of Lambda has; a package with no such wheel fails the
synth, never the function.

The asset's hash is computed here from everything that decides its content (the source
directory, requirements.txt included, the copied packages' files and pip's target), so a change
to `recops` redeploys a function that bundles it; CDK's default would hash the source directory
only.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = "requirements.txt"
NEVER_BUNDLED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.md", REQUIREMENTS)
# pip's platform tags per Lambda architecture: manylinux2014 and its PEP 600 spelling, since a
# wheel may carry either tag alone.
PLATFORMS = {
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_17_x86_64"),
    "arm64": ("manylinux2014_aarch64", "manylinux_2_17_aarch64"),
}


@dataclass(frozen=True)
class SourcePackage:
    """A package of this repository copied into the asset beside the handler's package."""

    path: Path
    # only these modules (and the package's __init__.py); empty: the whole package
    modules: tuple[str, ...] = ()

    def files(self) -> Iterator[Path]:
        """The package's files that go into the asset."""
        if self.modules:
            yield from (self.path / name for name in ("__init__.py", *self.modules))
            return
        for path in sorted(self.path.rglob("*")):
            if path.is_file() and not _never_bundled(path):
                yield path


# What the run steps (lambdas/runs) import besides their requirements: the config model and the
# contracts, and the two numpy-free modules of training/ the contracts and the data checks use.
RUNS_PACKAGES = (
    SourcePackage(REPO / "recops"),
    SourcePackage(REPO / "training", ("personalize_schemas.py", "input_formats.py")),
)
RUNS_RUNTIME = lambda_.Runtime.PYTHON_3_12
RUNS_ARCHITECTURE = lambda_.Architecture.X86_64


def python_code(
    source: Path,
    runtime: lambda_.Runtime,
    *,
    architecture: lambda_.Architecture | None = None,
    packages: Sequence[SourcePackage] = (),
) -> lambda_.Code:
    """The directory as a package, with its requirements and `packages`, for this runtime.

    Give `architecture` when a requirement is a binary wheel; the function must then run on
    that architecture (and this runtime)."""
    bundling = PipTargetBundling(
        source,
        runtime.name.removeprefix("python"),
        platform=architecture.name if architecture is not None else None,
        packages=tuple(packages),
    )
    return lambda_.Code.from_asset(
        str(source),
        asset_hash=bundling.content_hash(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("none"),  # required by the API; never used
            local=bundling,
        ),
    )


def runs_code(
    runtime: lambda_.Runtime = RUNS_RUNTIME,
    architecture: lambda_.Architecture = RUNS_ARCHITECTURE,
) -> lambda_.Code:
    """The run steps' asset (lambdas/runs): pydantic's binary core for `architecture`, the
    `recops` package and the numpy-free part of `training`. See lambdas/runs/README.md."""
    return python_code(
        REPO / "lambdas" / "runs", runtime, architecture=architecture, packages=RUNS_PACKAGES
    )


def install_into(
    output: Path,
    source: Path,
    python_version: str,
    *,
    platform: str | None = None,
    packages: Sequence[SourcePackage] = (),
) -> None:
    """The asset's content: pinned wheels, the source package, then the extra packages.

    platform: None for pure-Python wheels only, or a Lambda architecture ("x86_64", "arm64")."""
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
                *_wheel_target(platform),
                f"--python-version={python_version}",
                "--no-compile",
                f"--target={output}",
                f"--requirement={requirements}",
            ],
            check=True,
        )
        shutil.rmtree(output / "bin", ignore_errors=True)  # console scripts: no use in Lambda
    shutil.copytree(source, output / source.name, ignore=NEVER_BUNDLED, dirs_exist_ok=True)
    for package in packages:
        for path in package.files():
            target = output / package.path.name / path.relative_to(package.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _wheel_target(platform: str | None) -> list[str]:
    if platform is None:
        return ["--platform=any", "--implementation=py"]
    if platform not in PLATFORMS:
        raise ValueError(f"no wheels for architecture {platform!r}; one of {sorted(PLATFORMS)}")
    return [*(f"--platform={tag}" for tag in PLATFORMS[platform]), "--implementation=cp"]


def _never_bundled(path: Path) -> bool:
    return (
        "__pycache__" in path.parts or path.suffix in (".pyc", ".md") or path.name == REQUIREMENTS
    )


@jsii.implements(ILocalBundling)
class PipTargetBundling:
    """CDK's local bundling hook: builds the asset with `install_into`."""

    def __init__(
        self,
        source: Path,
        python_version: str,
        *,
        platform: str | None = None,
        packages: tuple[SourcePackage, ...] = (),
    ) -> None:
        self.source, self.python_version = Path(source), python_version
        self.platform, self.packages = platform, packages

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        install_into(
            Path(output_dir),
            self.source,
            self.python_version,
            platform=self.platform,
            packages=self.packages,
        )
        return True

    def content_hash(self) -> str:
        """A hash of everything the asset is made from: files, requirements and pip's target."""
        digest = hashlib.sha256()
        digest.update(f"{self.python_version}|{self.platform}".encode())
        roots = [(self.source, self.source.rglob("*"))]
        roots += [(package.path, package.files()) for package in self.packages]
        files = {
            f"{root.name}/{path.relative_to(root).as_posix()}": path
            for root, paths in roots
            for path in paths
            if path.is_file() and "__pycache__" not in path.parts
        }
        for label in sorted(files):
            digest.update(f"{label}\0".encode())
            digest.update(files[label].read_bytes())
        return digest.hexdigest()

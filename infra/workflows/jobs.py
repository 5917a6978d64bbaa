"""The plumbing every SageMaker job of the product needs: the code, the images, the job state.

- `TrainingCode`: `training/` as a versioned directory asset (a zip named by its content hash),
  given to a processing job as an input and put on `PYTHONPATH` (Python imports from a zip), so
  the job runs `python3 -m training.<module>` in the stock scikit-learn image: no Docker build,
  no BucketDeployment, and a changed `training/` gets a new key.
- `Images`: the built-in image URIs by region, one CfnMapping from `recops/sagemaker_images.json`
  (the table the local account uses too).
- `processing_job`: the `sagemaker:createProcessingJob.sync` Task as a JSONata CustomState, with
  the IAM the `.sync` integration needs (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import Aws, BundlingOptions, CfnMapping, DockerImage, ILocalBundling, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.workflows.core import Guard
from recops import images

REPO = Path(__file__).resolve().parents[2]
CODE_DIR = "/opt/ml/processing/input/code"
# The scikit-learn image whose library versions training/ is tested against (localaws/images/).
SKLEARN_VERSION = "1.4-2"
IMAGES = {
    "sklearn": ("sagemaker-scikit-learn", SKLEARN_VERSION),
    "fm": ("factorization-machines", None),
    "knn": ("knn", None),
}


@jsii.implements(ILocalBundling)
class _CopyAsPackage:
    """Local bundling: the directory copied as a package into the asset (no Docker)."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def try_bundle(self, output_dir: str, *_: Any, **__: Any) -> bool:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "ruff.toml")
        shutil.copytree(self.source, Path(output_dir) / self.source.name, ignore=ignore)
        return True


class TrainingCode(Construct):
    """`training/` as a zip asset; `python_path` is where a job finds it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        source = REPO / "training"
        self.asset = s3_assets.Asset(
            self,
            "Asset",
            path=str(source),
            bundling=BundlingOptions(
                image=DockerImage.from_registry("none"),  # required by the API; never used
                local=_CopyAsPackage(source),
            ),
        )
        self.s3_uri = self.asset.s3_object_url
        self.python_path = f"{CODE_DIR}/{self.asset.s3_object_key}"

    def input(self) -> dict[str, Any]:
        return s3_input("code", self.s3_uri, CODE_DIR)

    def grant_read(self, role: iam.IRole) -> None:
        """This one object, and listing it (Asset.grant_read would give GetObject*, List* on
        the whole bootstrap bucket)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.asset.bucket.arn_for_objects(self.asset.s3_object_key)],
            )
        )
        # An S3Prefix input is listed before it is downloaded (the processing role's documented
        # rights: https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.asset.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [self.asset.s3_object_key]}},
            )
        )


class Images(Construct):
    """Built-in image URIs for the stack's region, from the image table."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        mapping = {}
        for region in images.table()["hosts"]:
            row = {}
            for key, (name, version) in IMAGES.items():
                try:
                    row[key] = images.image_uri(name, region, version)
                except ValueError:
                    continue  # this region lacks this image: the lookup fails at deploy
            mapping[region] = row
        self.mapping = CfnMapping(self, "Uris", mapping=mapping)

    def uri(self, key: str) -> str:
        return self.mapping.find_in_map(Aws.REGION, key)


def s3_input(name: str, s3_uri: str, local_path: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": s3_uri,
            "LocalPath": local_path,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def s3_output(name: str, s3_uri: str, local_path: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": s3_uri, "LocalPath": local_path, "S3UploadMode": "EndOfJob"},
    }


def processing_job(
    scope: Construct,
    name: str,
    *,
    guard: Guard,
    machine_role: iam.IRole,
    job_role: iam.IRole,
    code: TrainingCode,
    image: str,
    job_name: str,
    module: str,
    arguments: list[str] | str,
    inputs: list[dict[str, Any]] | str,
    outputs: list[dict[str, Any]] | str,
    instance_type: str,
    tags: str,
    max_runtime_seconds: int | str = 3 * 3600,
    volume_size_gb: int | str = 30,
    job_name_prefix: str,
    assign: dict[str, Any] | None = None,
) -> sfn.CustomState:
    """`python3 -m training.<module> ARGUMENTS` as a processing job; waits for it to end.

    `job_name`, `instance_type`, `tags` and (when strings) `arguments`/`inputs` are JSONata
    expressions; a list of `inputs` gets the code input added in front.
    """
    state: dict[str, Any] = {
        "Type": "Task",
        "QueryLanguage": "JSONata",
        "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createProcessingJob.sync",
        "Arguments": {
            "ProcessingJobName": job_name,
            "RoleArn": job_role.role_arn,
            "AppSpecification": {
                "ImageUri": image,
                "ContainerEntrypoint": ["python3", "-m", f"training.{module}"],
                "ContainerArguments": arguments,
            },
            "Environment": {"PYTHONPATH": code.python_path, "PYTHONUNBUFFERED": "1"},
            "ProcessingInputs": [code.input(), *inputs] if isinstance(inputs, list) else inputs,
            "ProcessingOutputConfig": {"Outputs": outputs},
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": instance_type,
                    "VolumeSizeInGB": volume_size_gb,
                }
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
            "Tags": tags,
        },
    }
    if assign:
        state["Assign"] = assign
    task = sfn.CustomState(scope, name, state_json=state)
    guard.protect(task, name)
    for statement in job_statements(scope, job_role, job_name_prefix, "Processing"):
        machine_role.add_to_principal_policy(statement)
    return task


def job_statements(
    scope: Construct, job_role: iam.IRole, job_name_prefix: str, kind: str
) -> list[iam.PolicyStatement]:
    """What `create<Kind>Job.sync` needs (kind: Processing, Training, Transform): the job
    calls on this stack's job names, the managed rule that reports the job's end, PassRole."""
    stack = Stack.of(scope)
    jobs = stack.format_arn(
        service="sagemaker",
        resource=f"{kind.lower()}-job",
        resource_name=f"{job_name_prefix}*",
    )
    rule = stack.format_arn(
        service="events",
        resource="rule",
        resource_name=f"StepFunctionsGetEventsForSageMaker{kind}JobsRule",
    )
    return [
        iam.PolicyStatement(
            actions=[
                f"sagemaker:Create{kind}Job",
                f"sagemaker:Describe{kind}Job",
                f"sagemaker:Stop{kind}Job",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
            ],
            resources=[jobs],
        ),
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[rule],
        ),
        pass_role(job_role),
    ]


def pass_role(job_role: iam.IRole) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[job_role.role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    )

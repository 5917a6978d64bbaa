"""SageMaker's built-in algorithms as states: a training job (`createTrainingJob.sync`), a model
(`createModel`) and a batch transform (`createTransformJob.sync`), each a JSONata CustomState
with exactly the IAM its integration needs
(https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html). Requests are JSONata
objects over `$run.contracts.sagemaker`, so an execution that carries another config trains with
that config's instance types, counts and limits."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.workflows.core import Guard, jsonata
from infra.workflows.jobs import job_statements, pass_role

RECORDIO = "application/x-recordio-protobuf"
SAGEMAKER = "$run.contracts.sagemaker"
# Hyperparameters whose values prep's manifest gives (contracts: `fromManifest`, a dotted path
# per hyperparameter), merged over the static ones as the strings the API takes.
HYPERPARAMETERS = (
    "$merge([{spec}.static, $each({spec}.fromManifest, function($path, $name) {{{{$name: "
    "$string($reduce($split($path, '.'), function($at, $key) {{$lookup($at, $key)}}, "
    "{manifest}))}}}})])"
)
STOPPING = (
    f"{SAGEMAKER}.spot.enabled ? {{'MaxRuntimeInSeconds': {SAGEMAKER}.maxRuntimeSeconds, "
    f"'MaxWaitTimeInSeconds': {SAGEMAKER}.spot.maxWaitSeconds}} : "
    f"{{'MaxRuntimeInSeconds': {SAGEMAKER}.maxRuntimeSeconds}}"
)


def hyperparameters(spec: str, manifest: str) -> str:
    """`spec`: the contract's {static, fromManifest} (JSONata); `manifest`: prep's manifest."""
    return HYPERPARAMETERS.format(spec=spec, manifest=manifest)


def channel(name: str, s3_uri: str, *, sharded: bool = False) -> dict[str, Any]:
    """A RecordIO-protobuf input channel over an S3 prefix (`s3_uri`: JSONata)."""
    return {
        "ChannelName": name,
        "ContentType": RECORDIO,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": jsonata(s3_uri),
                # with several instances each reads its own shard files of the training data
                "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
            }
        },
    }


class Jobs:
    """The states for one workflow: its machine role, the role jobs run as, names and tags."""

    def __init__(
        self,
        scope: Construct,
        *,
        guard: Guard,
        machine_role: iam.IRole,
        job_role: iam.IRole,
        job_name_prefix: str,
    ) -> None:
        self.scope, self.guard = scope, guard
        self.machine_role, self.job_role = machine_role, job_role
        self.prefix = job_name_prefix
        self._granted: set[str] = set()

    def _grant(self, kind: str, statements: list[iam.PolicyStatement]) -> None:
        if kind not in self._granted:
            self._granted.add(kind)
            for statement in statements:
                self.machine_role.add_to_principal_policy(statement)

    def _state(self, name: str, action: str, arguments: dict, assign: dict | None) -> Any:
        state: dict[str, Any] = {
            "Type": "Task",
            "QueryLanguage": "JSONata",
            "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:{action}",
            "Arguments": arguments,
        }
        if assign:
            state["Assign"] = assign
        task = sfn.CustomState(self.scope, name, state_json=state)
        self.guard.protect(task, name)
        return task

    def training(
        self,
        name: str,
        *,
        job_name: str,
        image: str,
        hyperparameters: str,
        channels: list[dict[str, Any]],
        output: str,
        instance_type: str,
        instance_count: str = "1",
        assign: dict[str, Any] | None = None,
    ) -> sfn.CustomState:
        """A built-in algorithm's training job; waits for it to end (JSONata: job_name,
        hyperparameters, output, instance_type, instance_count)."""
        arguments = {
            "TrainingJobName": jsonata(job_name),
            "RoleArn": self.job_role.role_arn,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "HyperParameters": jsonata(hyperparameters),
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": jsonata(output)},
            "ResourceConfig": {
                "InstanceType": jsonata(instance_type),
                "InstanceCount": jsonata(instance_count),
                "VolumeSizeInGB": jsonata(f"{SAGEMAKER}.volumeSizeGb"),
            },
            "EnableManagedSpotTraining": jsonata(f"{SAGEMAKER}.spot.enabled"),
            "StoppingCondition": jsonata(STOPPING),
            "Tags": jsonata(f"{SAGEMAKER}.tags"),
        }
        self._grant("Training", job_statements(self.scope, self.job_role, self.prefix, "Training"))
        return self._state(name, "createTrainingJob.sync", arguments, assign)

    def model(
        self, name: str, *, model_name: str, image: str, model_data: str, assign: dict
    ) -> sfn.CustomState:
        """A model over a training job's artifact (no endpoint: a transform job uses it).
        `assign` keeps its name: a redrive re-runs only the failed transform, whose own
        redrive suffix would name a model that does not exist."""
        arguments = {
            "ModelName": jsonata(model_name),
            "ExecutionRoleArn": self.job_role.role_arn,
            "PrimaryContainer": {"Image": image, "ModelDataUrl": jsonata(model_data)},
            "Tags": jsonata(f"{SAGEMAKER}.tags"),
        }
        models = Stack.of(self.scope).format_arn(
            service="sagemaker", resource="model", resource_name=f"{self.prefix}*"
        )
        self._grant(
            "Model",
            [
                iam.PolicyStatement(
                    actions=["sagemaker:CreateModel", "sagemaker:AddTags"], resources=[models]
                ),
                pass_role(self.job_role),
            ],
        )
        return self._state(name, "createModel", arguments, assign)

    def transform(
        self,
        name: str,
        *,
        job_name: str,
        model_name: str,
        source: str,
        output: str,
        accept: str,
        instance_type: str,
        instance_count: str,
        assign: dict[str, Any] | None = None,
    ) -> sfn.CustomState:
        """A batch transform of RecordIO records (one prediction line per record)."""
        arguments = {
            "TransformJobName": jsonata(job_name),
            "ModelName": jsonata(model_name),
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 6,
            "TransformInput": {
                "ContentType": RECORDIO,
                "SplitType": "RecordIO",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": jsonata(source)}
                },
            },
            "TransformOutput": {
                "S3OutputPath": jsonata(output),
                "Accept": accept,
                "AssembleWith": "Line",
            },
            "TransformResources": {
                "InstanceType": jsonata(instance_type),
                "InstanceCount": jsonata(instance_count),
            },
            "Tags": jsonata(f"{SAGEMAKER}.tags"),
        }
        self._grant(
            "Transform", job_statements(self.scope, self.job_role, self.prefix, "Transform")
        )
        return self._state(name, "createTransformJob.sync", arguments, assign)

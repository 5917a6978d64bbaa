"""Requests and waits shared by the SageMaker fidelity rows."""

from __future__ import annotations

import botocore.session
import numpy as np
from botocore.model import ListShape, MapShape, StructureShape
from botocore.validate import ParamValidator

from training import recordio

API = "https://docs.aws.amazon.com/sagemaker/latest/APIReference"
GUIDE = "https://docs.aws.amazon.com/sagemaker/latest/dg"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
REGISTRY = "683313688378.dkr.ecr.us-east-1.amazonaws.com"
SKLEARN = f"{REGISTRY}/sagemaker-scikit-learn:1.4-2-cpu-py3"
KNN = "382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1"
CODE = "/opt/ml/processing/input/code"
OUTPUT = "/opt/ml/processing/output"
MODEL = botocore.session.get_session().get_service_model("sagemaker")
FINAL = ("Completed", "Failed", "Stopped")


def s3_input(name: str, uri: str, local: str) -> dict:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def processing(
    sm,
    name: str,
    entrypoint: list[str],
    inputs: list[dict],
    output_uri: str | None = None,
    image: str = SKLEARN,
    environment: dict | None = None,
    max_runtime: int = 3600,
) -> None:
    """CreateProcessingJob with what the product sends (one ml.m5.large, EndOfJob upload)."""
    request = {
        "ProcessingJobName": name,
        "RoleArn": ROLE,
        "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": entrypoint},
        "ProcessingInputs": inputs,
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 5,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }
    if output_uri:
        request["ProcessingOutputConfig"] = {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {
                        "S3Uri": output_uri,
                        "LocalPath": OUTPUT,
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        }
    if environment is not None:
        request["Environment"] = environment
    sm.create_processing_job(**request)


def script_job(account, name: str, script: str, **options) -> None:
    """A processing job running `python3 <script>` with the output folder as its argument."""
    s3 = account.client("s3")
    bucket = "jobs-" + name.lower()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code/job.py", Body=script.encode())
    processing(
        account.client("sagemaker"),
        name,
        ["python3", f"{CODE}/job.py", OUTPUT],
        [s3_input("code", f"s3://{bucket}/code/", CODE)],
        f"s3://{bucket}/out",
        **options,
    )


def knn_training(
    account, name: str, max_runtime: int = 3600, bucket: str = "knn-data", data: bool = True
) -> None:
    """A tiny KNN training job (3 vectors), the cheapest job that really computes; with
    data=False, a channel nobody wrote (in a bucket that may not exist)."""
    s3 = account.client("s3")
    if data and bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
        vectors = np.eye(3, dtype=np.float32)
        body = recordio.encode_dense(vectors, np.arange(3, dtype=np.float32))
        s3.put_object(Bucket=bucket, Key="train/items.recordio", Body=body)
    account.client("sagemaker").create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": KNN, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={
            "feature_dim": "3",
            "k": "2",
            "predictor_type": "classifier",
            "sample_size": "3",
            "index_metric": "INNER_PRODUCT",
        },
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime},
    )


def describe(account, kind: str, name: str) -> dict:
    noun = {"processing": "Processing", "training": "Training", "transform": "Transform"}[kind]
    call = getattr(account.client("sagemaker"), f"describe_{kind}_job")
    response = call(**{f"{noun}JobName": name})
    response.pop("ResponseMetadata", None)
    return response


def status(account, kind: str, name: str) -> str:
    noun = {"processing": "Processing", "training": "Training", "transform": "Transform"}[kind]
    return describe(account, kind, name)[f"{noun}JobStatus"]


def settle(account, kind: str, name: str, polls: int = 200, every: float = 60) -> dict:
    """Poll like a `.sync` task, a virtual minute apart: the clock jumps only while nothing
    computes, so a job's local work is never outrun."""
    for _ in range(polls):
        described = describe(account, kind, name)
        if described[f"{kind.capitalize()}JobStatus"] in FINAL:
            return described
        account.clock.sleep(every)
    raise AssertionError(f"{kind} job {name} still not done: {described}")


def computed(account, kind: str, name: str) -> None:
    """Wait (real time) until the job's local computation is over, without moving the clock."""
    from localaws import sagemaker

    arn = describe(account, kind, name)[f"{kind.capitalize()}JobArn"]
    thread = sagemaker.RUNS[arn].thread
    if thread is not None:
        thread.join(60)
        assert not thread.is_alive(), f"{name} still computing"


def shape_errors(response: dict, operation: str) -> list[str]:
    """What botocore's output shape refuses: required members, types, lengths, enum values."""
    shape = MODEL.operation_model(operation).output_shape
    report = ParamValidator().validate(response, shape)
    errors = [report.generate_report()] if report.has_errors() else []
    return errors + list(_enum_errors(response, shape, operation))


def _enum_errors(value, shape, path: str):
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for key, item in value.items():
            if key in shape.members:
                yield from _enum_errors(item, shape.members[key], f"{path}.{key}")
    elif isinstance(shape, ListShape) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _enum_errors(item, shape.member, f"{path}[{i}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        for key, item in value.items():
            yield from _enum_errors(item, shape.value, f"{path}[{key}]")
    elif getattr(shape, "enum", None) and value not in shape.enum:
        yield f"{path}: {value!r} is not one of {shape.enum}"

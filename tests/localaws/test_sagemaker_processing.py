"""SageMaker processing jobs run as the scikit-learn container runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.datasets import synthetic_interactions
from localaws import sagemaker_processing
from localaws.sagemaker_processing import mount_namespace
from tests.localaws.fidelity import Behaviour, rows
from tests.localaws.sagemaker_jobs import (
    API,
    CODE,
    GUIDE,
    OUTPUT,
    REGISTRY,
    computed,
    describe,
    processing,
    s3_input,
    script_job,
    settle,
    status,
)
from tests.prep_options import prep_options_with

DOCKERFILE = (
    "https://github.com/aws/sagemaker-scikit-learn-container/blob/master/docker/1.4-2/base/"
    "Dockerfile.cpu (python3.10, numpy==2.1.0, pyarrow==17.0.0, ENV, no WORKDIR)"
)
TRAINING = Path(__file__).resolve().parents[2] / "training"

REPORT_ENVIRONMENT = """
import json, os, pathlib, sys
(pathlib.Path(sys.argv[1]) / "env.json").write_text(json.dumps(dict(os.environ)))
"""


def _env_of(account, name: str, **options) -> dict:
    script_job(account, name, REPORT_ENVIRONMENT, **options)
    assert settle(account, "processing", name)["ProcessingJobStatus"] == "Completed"
    bucket = "jobs-" + name.lower()
    body = account.client("s3").get_object(Bucket=bucket, Key="out/env.json")["Body"].read()
    return json.loads(body)


def the_environment_is_the_jobs_and_the_images(account) -> None:
    os.environ["RECOPS_HOST_ONLY"] = "leak"
    try:
        env = _env_of(account, "env-job", environment={"GREETING": "hello", "DATA": OUTPUT})
    finally:
        del os.environ["RECOPS_HOST_ONLY"]
    assert env["GREETING"] == "hello"
    assert env["DATA"].endswith(OUTPUT)
    assert Path(env["DATA"]).is_absolute()
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["SAGEMAKER_SKLEARN_VERSION"] == "1.4-2"
    assert "RECOPS_HOST_ONLY" not in env
    assert not [k for k in env if k.startswith("AWS_")], "no host credentials, region or endpoint"
    assert "PYTHONPATH" not in env
    assert env["HOME"] != os.environ.get("HOME")


def code_is_importable_only_through_pythonpath(account) -> None:
    s3, sm = account.client("s3"), account.client("sagemaker")
    s3.create_bucket(Bucket="prep")
    for path in TRAINING.glob("*.py"):
        s3.put_object(Bucket="prep", Key=f"code/training/{path.name}", Body=path.read_bytes())
    csv = synthetic_interactions(60, 40, 2_000, seed=3).to_csv(index=False)
    s3.put_object(Bucket="prep", Key="data/interactions.csv", Body=csv.encode())
    options = prep_options_with(
        columns={"USER_ID": "user_id", "ITEM_ID": "item_id", "TIMESTAMP": "timestamp"}
    )
    s3.put_object(Bucket="prep", Key="options/prep.json", Body=json.dumps(options).encode())
    inputs = [
        s3_input("code", "s3://prep/code/", CODE),
        s3_input("interactions", "s3://prep/data/", "/opt/ml/processing/input/interactions"),
        s3_input("options", "s3://prep/options/", "/opt/ml/processing/input/options"),
    ]
    command = [
        "python3",
        "-m",
        "training.prep",
        *("--input", "/opt/ml/processing/input/interactions", "--output", OUTPUT),
        *("--options", "/opt/ml/processing/input/options/prep.json"),
    ]
    processing(sm, "prep-no-path", command, inputs, "s3://prep/without")
    failed = settle(account, "processing", "prep-no-path")
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "No module named 'training'" in failed["FailureReason"]
    processing(sm, "prep", command, inputs, "s3://prep/out", environment={"PYTHONPATH": CODE})
    done = settle(account, "processing", "prep")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    manifest = json.loads(s3.get_object(Bucket="prep", Key="out/manifest.json")["Body"].read())
    assert manifest["rows"]["train"] > 0
    assert "Contents" not in s3.list_objects_v2(Bucket="prep", Prefix="without")


VERSIONS = """
import json, pathlib, sys
import numpy, pandas, pyarrow, scipy
versions = {"python": list(sys.version_info[:2]), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "pyarrow": pyarrow.__version__, "scipy": scipy.__version__}
(pathlib.Path(sys.argv[1]) / "versions.json").write_text(json.dumps(versions))
"""
PANDAS_3 = """
import pandas
frame = pandas.DataFrame({"a": [1, 2]})
print(frame.assign(b=pandas.col("a") * 2))
"""


def the_images_python_and_libraries(account) -> None:
    script_job(account, "versions", VERSIONS)
    assert settle(account, "processing", "versions")["ProcessingJobStatus"] == "Completed"
    body = account.client("s3").get_object(Bucket="jobs-versions", Key="out/versions.json")
    versions = json.loads(body["Body"].read())
    assert versions["python"] == [3, 10]
    assert (versions["numpy"], versions["pyarrow"]) == ("2.1.0", "17.0.0")
    assert versions["pandas"].startswith("2.")
    script_job(account, "pandas-three", PANDAS_3)
    failed = settle(account, "processing", "pandas-three")
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "AttributeError" in failed["FailureReason"]
    assert "col" in failed["FailureReason"]


def an_image_without_an_environment_fails_naming_the_tags(account) -> None:
    other = f"{REGISTRY}/sagemaker-scikit-learn:1.2-1-cpu-py3"
    script_job(account, "old-image", "print('hi')", image=other)
    failed = settle(account, "processing", "old-image")
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "1.2-1-cpu-py3" in failed["FailureReason"]
    assert "sagemaker-scikit-learn:1.4-2-cpu-py3" in failed["FailureReason"]


CONTAINER_FILES = """
import json, os, pathlib, sys
config = json.loads(pathlib.Path("opt/ml/config/processingjobconfig.json").read_text())
hosts = json.loads(pathlib.Path("opt/ml/config/resourceconfig.json").read_text())
(pathlib.Path(sys.argv[1]) / "seen.json").write_text(json.dumps(
    {"name": config["ProcessingJobName"], "host": hosts["current_host"],
     "root": os.path.samefile("opt/ml/processing/output", sys.argv[1])}))
"""


def the_working_directory_is_the_images_and_config_files_are_there(account) -> None:
    script_job(account, "files", CONTAINER_FILES)
    done = settle(account, "processing", "files")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    body = account.client("s3").get_object(Bucket="jobs-files", Key="out/seen.json")["Body"]
    assert json.loads(body.read()) == {"name": "files", "host": "algo-1", "root": True}


CONTAINER_PATHS = """
import pathlib
text = pathlib.Path("/opt/ml/processing/input/code/job.py").read_text()
pathlib.Path("/opt/ml/processing/output/copy.py").write_text(text)
"""


def code_may_name_container_paths(account) -> None:
    if not mount_namespace():
        pytest.skip("no mount namespace here: only arguments and variables are remapped")
    script_job(account, "paths", CONTAINER_PATHS)
    done = settle(account, "processing", "paths")
    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    body = account.client("s3").get_object(Bucket="jobs-paths", Key="out/copy.py")["Body"]
    assert body.read().decode() == CONTAINER_PATHS


def max_runtime_stops_the_job(account) -> None:
    """Work longer than MaxRuntimeInSeconds (virtual): stopped at the limit, no output."""
    script_job(account, "too-long", REPORT_ENVIRONMENT, max_runtime=60)
    computed(account, "processing", "too-long")
    account.clock.advance(180 + 59)
    assert status(account, "processing", "too-long") == "InProgress"
    account.clock.advance(2)
    assert status(account, "processing", "too-long") == "Stopping"
    ended = settle(account, "processing", "too-long")
    assert ended["ProcessingJobStatus"] == "Stopped"
    assert "FailureReason" not in ended
    s3 = account.client("s3")
    assert "Contents" not in s3.list_objects_v2(Bucket="jobs-too-long", Prefix="out")


def a_hung_job_is_stopped_at_max_runtime(account) -> None:
    """The local process itself runs past MaxRuntimeInSeconds: it is terminated."""
    script_job(account, "hung", "import time\ntime.sleep(600)\n", max_runtime=2)
    computed(account, "processing", "hung")  # returns once the process was terminated
    ended = settle(account, "processing", "hung")
    assert ended["ProcessingJobStatus"] == "Stopped"


PROCESSING_CONTAINER = [
    Behaviour(
        "sagemaker-processing-environment-is-the-jobs",
        f"{GUIDE}/build-your-own-processing-container.html (the Environment map); {DOCKERFILE}",
        the_environment_is_the_jobs_and_the_images,
    ),
    Behaviour(
        "sagemaker-processing-no-implicit-pythonpath",
        f"{GUIDE}/byoc-run-image.html (docker run --entry-point ... [ContainerArguments])",
        code_is_importable_only_through_pythonpath,
    ),
    Behaviour(
        "sagemaker-processing-image-python-and-libraries",
        DOCKERFILE,
        the_images_python_and_libraries,
    ),
    Behaviour(
        "sagemaker-processing-unknown-image-fails-naming-tags",
        f"{GUIDE}/sklearn.html (the image versions); localaws/sagemaker_images.py",
        an_image_without_an_environment_fails_naming_the_tags,
    ),
    Behaviour(
        "sagemaker-processing-workdir-and-config-files",
        f"{GUIDE}/build-your-own-processing-container.html (/opt/ml/config/*.json); {DOCKERFILE}",
        the_working_directory_is_the_images_and_config_files_are_there,
    ),
    Behaviour(
        "sagemaker-processing-code-may-name-container-paths",
        f"{GUIDE}/build-your-own-processing-container.html (inputs under /opt/ml/processing)",
        code_may_name_container_paths,
    ),
    Behaviour(
        "sagemaker-processing-max-runtime-stops-the-job",
        f"{API}/API_ProcessingStoppingCondition.html (after the condition is met, the job is stopped)",
        max_runtime_stops_the_job,
    ),
    Behaviour(
        "sagemaker-processing-hung-process-stopped-at-max-runtime",
        f"{API}/API_ProcessingStoppingCondition.html",
        a_hung_job_is_stopped_at_max_runtime,
    ),
]


@rows(*PROCESSING_CONTAINER)
def test_processing(behaviour, account):
    behaviour.check(account)


def test_describe_echoes_what_the_job_was_created_with(account):
    """Also a shape row's subject (test_sagemaker_api): Environment and ProcessingResources."""
    script_job(account, "echo", "print(1)", environment={"A": "b"})
    described = describe(account, "processing", "echo")
    assert described["Environment"] == {"A": "b"}
    assert described["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"


def test_without_a_mount_namespace_container_paths_are_pointed_into_the_job(account, monkeypatch):
    """Where the machine allows no mount namespace, arguments and variables still work."""
    monkeypatch.setattr(sagemaker_processing, "mount_namespace", lambda: None)
    the_working_directory_is_the_images_and_config_files_are_there(account)
    env = _env_of(account, "env-fallback", environment={"DATA": OUTPUT})
    assert env["DATA"] != OUTPUT
    assert env["DATA"].endswith(OUTPUT)

"""SageMaker jobs take the time the service takes, and end, stop and fail as it reports them."""

from __future__ import annotations

import json
import time

from localaws import clock, sagemaker
from tests.localaws.fidelity import Behaviour, refused, rows
from tests.localaws.sagemaker_jobs import (
    API,
    CODE,
    MODEL,
    OUTPUT,
    ROLE,
    computed,
    describe,
    knn_training,
    processing,
    s3_input,
    script_job,
    settle,
    status,
)

PROCESSING = clock.lifecycle("sagemaker.processingJob")
TRAINING = clock.lifecycle("sagemaker.trainingJob")
STOP = clock.lifecycle("sagemaker.stop").working
WRITE_OUTPUT = "import pathlib, sys\n(pathlib.Path(sys.argv[1]) / 'done.txt').write_text('ok')\n"


def _listed(account, kind: str, name: str) -> dict:
    noun = kind.capitalize()
    listed = getattr(account.client("sagemaker"), f"list_{kind}_jobs")(NameContains=name)
    (summary,) = [s for s in listed[f"{noun}JobSummaries"] if s[f"{noun}JobName"] == name]
    return summary


def _agree(account, kind: str, name: str) -> dict:
    """Describe and List at the same instant show the same status and times."""
    described, summary = describe(account, kind, name), _listed(account, kind, name)
    for key, value in summary.items():
        assert described[key] == value, f"{key}: describe {described[key]!r}, list {value!r}"
    return described


def a_job_takes_its_virtual_time(account) -> None:
    created = clock.time()
    script_job(account, "timed", WRITE_OUTPUT)
    computed(account, "processing", "timed")  # the local work is over; the job is not
    s3 = account.client("s3")
    first = _agree(account, "processing", "timed")
    assert first["ProcessingJobStatus"] == "InProgress"
    assert "ProcessingStartTime" not in first
    assert abs(first["CreationTime"].timestamp() - created) < 5
    assert "Contents" not in s3.list_objects_v2(Bucket="jobs-timed", Prefix="out")
    account.clock.advance(PROCESSING.pending + 1)
    started = _agree(account, "processing", "timed")
    assert started["ProcessingJobStatus"] == "InProgress"
    start = started["ProcessingStartTime"].timestamp() - started["CreationTime"].timestamp()
    assert start == PROCESSING.pending
    account.clock.advance(PROCESSING.working)
    ended = _agree(account, "processing", "timed")
    assert ended["ProcessingJobStatus"] == "Completed"
    length = ended["ProcessingEndTime"].timestamp() - ended["CreationTime"].timestamp()
    assert length == PROCESSING.ready_after
    assert ended["LastModifiedTime"] == ended["ProcessingEndTime"]
    assert s3.get_object(Bucket="jobs-timed", Key="out/done.txt")["Body"].read() == b"ok"


def outputs_arrive_at_the_end_without_anybody_looking(account) -> None:
    """No Describe, no List: only time passes, and the output is there once the job is over."""
    s3 = account.client("s3")
    script_job(account, "unwatched", WRITE_OUTPUT)
    computed(account, "processing", "unwatched")
    account.clock.advance(PROCESSING.ready_after - 5)
    time.sleep(0.5)
    assert "Contents" not in s3.list_objects_v2(Bucket="jobs-unwatched", Prefix="out")
    account.clock.advance(10)
    for _ in range(50):
        if "Contents" in s3.list_objects_v2(Bucket="jobs-unwatched", Prefix="out"):
            break
        time.sleep(0.1)
    assert s3.get_object(Bucket="jobs-unwatched", Key="out/done.txt")["Body"].read() == b"ok"


def training_secondary_status_moves_through_the_enum(account) -> None:
    knn_training(account, "phases")
    computed(account, "training", "phases")
    enum = MODEL.shape_for("SecondaryStatus").enum
    seen = []
    for _ in range(40):
        described = _agree(account, "training", "phases")
        if not seen or seen[-1] != described["SecondaryStatus"]:
            seen.append(described["SecondaryStatus"])
        if described["TrainingJobStatus"] == "Completed":
            break
        account.clock.advance(15)
    assert seen == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert set(seen) <= set(enum)
    transitions = described["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == seen
    assert all("EndTime" in t for t in transitions)
    assert described["TrainingStartTime"].timestamp() - described["CreationTime"].timestamp() == (
        TRAINING.pending
    )
    assert described["TrainingTimeInSeconds"] == TRAINING.working


def training_stops_at_max_runtime(account) -> None:
    knn_training(account, "short", max_runtime=60)
    computed(account, "training", "short")
    ended = settle(account, "training", "short")
    assert (ended["TrainingJobStatus"], ended["SecondaryStatus"]) == (
        "Stopped",
        "MaxRuntimeExceeded",
    )
    assert "FailureReason" not in ended
    length = ended["TrainingEndTime"].timestamp() - ended["TrainingStartTime"].timestamp()
    assert length == 60 + STOP
    listed = account.client("s3").list_objects_v2(Bucket="knn-data", Prefix="models/short")
    assert "Contents" not in listed


def stop_training_job_stops_it(account) -> None:
    sm = account.client("sagemaker")
    knn_training(account, "stopped")
    account.clock.advance(TRAINING.pending + 10)
    sm.stop_training_job(TrainingJobName="stopped")
    stopping = _agree(account, "training", "stopped")
    assert (stopping["TrainingJobStatus"], stopping["SecondaryStatus"]) == ("Stopping", "Stopping")
    account.clock.advance(STOP)
    stopped = _agree(account, "training", "stopped")
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    account.clock.advance(3600)
    assert status(account, "training", "stopped") == "Stopped"
    refused(
        lambda: sm.stop_training_job(TrainingJobName="stopped"),
        "ValidationException",
        "in status Stopped",
    )
    assert "Contents" not in sm_objects(account, "knn-data", "models/stopped")


def sm_objects(account, bucket: str, prefix: str) -> dict:
    return account.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)


def a_stopped_transform_job_stores_no_output(account) -> None:
    sm = account.client("sagemaker")
    knn_training(account, "index")
    done = settle(account, "training", "index")
    sm.create_model(
        ModelName="index",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1",
            "ModelDataUrl": done["ModelArtifacts"]["S3ModelArtifacts"],
        },
    )
    sm.create_transform_job(
        TransformJobName="lookup",
        ModelName="index",
        TransformInput={
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://knn-data/train/"}
            },
            "ContentType": "application/x-recordio-protobuf",
            "SplitType": "RecordIO",
        },
        TransformOutput={"S3OutputPath": "s3://knn-data/lookup"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    computed(account, "transform", "lookup")
    sm.stop_transform_job(TransformJobName="lookup")
    assert status(account, "transform", "lookup") == "Stopping"
    ended = settle(account, "transform", "lookup")
    assert ended["TransformJobStatus"] == "Stopped"
    assert "Contents" not in sm_objects(account, "knn-data", "lookup")


def stopping_a_finished_job_is_refused(account) -> None:
    sm = account.client("sagemaker")
    script_job(account, "finished", WRITE_OUTPUT)
    assert settle(account, "processing", "finished")["ProcessingJobStatus"] == "Completed"
    refused(
        lambda: sm.stop_processing_job(ProcessingJobName="finished"),
        "ValidationException",
        "processing job is in status Completed",
    )
    assert status(account, "processing", "finished") == "Completed"


def stop_processing_job_terminates_its_process(account) -> None:
    sm = account.client("sagemaker")
    script_job(account, "sleeper", "import time\ntime.sleep(600)\n")
    sm.stop_processing_job(ProcessingJobName="sleeper")
    assert status(account, "processing", "sleeper") == "Stopping"
    computed(account, "processing", "sleeper")  # the process is gone long before 600 s
    ended = settle(account, "processing", "sleeper")
    assert ended["ProcessingJobStatus"] == "Stopped"
    assert ended["ProcessingEndTime"].timestamp() - ended["CreationTime"].timestamp() < 600


def faults_fail_or_slow_the_next_job(account) -> None:
    sagemaker.FAULTS.fail_next("training", "AlgorithmError: injected")
    sagemaker.FAULTS.slow_next("processing", 3600)
    knn_training(account, "doomed")
    failed = settle(account, "training", "doomed")
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"] == "AlgorithmError: injected"
    assert failed["SecondaryStatus"] == "Failed"
    knn_training(account, "spared")  # a fault is used once
    assert settle(account, "training", "spared")["TrainingJobStatus"] == "Completed"
    script_job(account, "slow", WRITE_OUTPUT, max_runtime=7200)
    ended = settle(account, "processing", "slow", every=600)
    length = ended["ProcessingEndTime"].timestamp() - ended["CreationTime"].timestamp()
    assert length == PROCESSING.ready_after + 3600
    assert sagemaker.FAULTS.pending()["processing"] == {"fail": [], "slow": []}


JOB_TIME = [
    Behaviour(
        "sagemaker-job-takes-virtual-time",
        f"{API}/API_DescribeProcessingJob.html (ProcessingStartTime, ProcessingEndTime); "
        "localaws/clock.py DURATIONS",
        a_job_takes_its_virtual_time,
    ),
    Behaviour(
        "sagemaker-outputs-at-the-end-without-polling",
        f"{API}/API_ProcessingS3Output.html (EndOfJob: uploaded when the job ends)",
        outputs_arrive_at_the_end_without_anybody_looking,
    ),
    Behaviour(
        "sagemaker-training-secondary-status-in-enum",
        f"{API}/API_DescribeTrainingJob.html (SecondaryStatus, SecondaryStatusTransitions)",
        training_secondary_status_moves_through_the_enum,
    ),
    Behaviour(
        "sagemaker-training-max-runtime-exceeded",
        f"{API}/API_DescribeTrainingJob.html (Stopped: MaxRuntimeExceeded); "
        f"{API}/API_StoppingCondition.html",
        training_stops_at_max_runtime,
    ),
    Behaviour(
        "sagemaker-stop-training-job",
        f"{API}/API_StopTrainingJob.html (Stopping, then Stopped)",
        stop_training_job_stops_it,
    ),
    Behaviour(
        "sagemaker-stop-transform-job-stores-no-output",
        f"{API}/API_StopTransformJob.html (a stopped job's output is not stored in S3)",
        a_stopped_transform_job_stores_no_output,
    ),
    Behaviour(
        "sagemaker-stop-finished-job-refused",
        f"{API}/API_StopProcessingJob.html; {API}/CommonErrors.html (ValidationException)",
        stopping_a_finished_job_is_refused,
    ),
    Behaviour(
        "sagemaker-stop-processing-terminates-the-process",
        f"{API}/API_StopProcessingJob.html",
        stop_processing_job_terminates_its_process,
    ),
    Behaviour(
        "sagemaker-faults-fail-or-slow-the-next-job",
        f"{API}/API_DescribeTrainingJob.html (FailureReason); localaws/admin.py",
        faults_fail_or_slow_the_next_job,
    ),
]


@rows(*JOB_TIME)
def test_job_time(behaviour, account):
    behaviour.check(account)


REPORT_AWS_ENVIRONMENT = """
import json, os, pathlib, sys
aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
(pathlib.Path(sys.argv[1]) / "aws.json").write_text(json.dumps(aws))
"""


def test_faults_and_the_endpoint_on_a_running_server(server):
    """A failed job injected through the CLI (python -m localaws faults sagemaker ...), as an
    end-to-end run would; a processing job under the server gets fake keys for it only."""
    import boto3

    module, env = server
    keys = {"aws_access_key_id": "localaws", "aws_secret_access_key": "localaws"}
    local = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": "us-east-1", **keys}
    sm, s3 = boto3.client("sagemaker", **local), boto3.client("s3", **local)
    reason = "reason=AlgorithmError: injected"
    assert module.main(["faults", "sagemaker", "fail_next", "kind=processing", reason]) == 0
    s3.create_bucket(Bucket="served")
    s3.put_object(Bucket="served", Key="code/job.py", Body=REPORT_AWS_ENVIRONMENT.encode())
    for name in ("served-doomed", "served"):
        processing(
            sm,
            name,
            ["python3", f"{CODE}/job.py", OUTPUT],
            [s3_input("code", "s3://served/code/", CODE)],
            f"s3://served/{name}",
        )
    for _ in range(100):
        statuses = [
            sm.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"]
            for name in ("served-doomed", "served")
        ]
        if "InProgress" not in statuses:
            break
        time.sleep(0.1)  # the job computes in the server's process, in real time
        assert module.main(["clock", "advance", "seconds=30"]) == 0
    doomed = sm.describe_processing_job(ProcessingJobName="served-doomed")
    assert (doomed["ProcessingJobStatus"], doomed["FailureReason"]) == (
        "Failed",
        "AlgorithmError: injected",
    )
    assert statuses[1] == "Completed"
    seen = json.loads(s3.get_object(Bucket="served", Key="served/aws.json")["Body"].read())
    assert seen["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL"]
    assert (seen["AWS_ACCESS_KEY_ID"], seen["AWS_REGION"]) == ("localaws", "us-east-1")

"""SageMaker answers in botocore's output shapes, lists as documented, and never with HTTP 500."""

from __future__ import annotations

from tests.localaws.fidelity import Behaviour, refused, rows
from tests.localaws.sagemaker_jobs import (
    API,
    KNN,
    ROLE,
    computed,
    describe,
    knn_training,
    processing,
    s3_input,
    script_job,
    settle,
    shape_errors,
)

WRITE_OUTPUT = "import pathlib, sys\n(pathlib.Path(sys.argv[1]) / 'done.txt').write_text('ok')\n"
OPERATIONS = {
    "processing": "DescribeProcessingJob",
    "training": "DescribeTrainingJob",
    "transform": "DescribeTransformJob",
}


def _transform(sm, name: str, model: str, source: str = "s3://knn-data/train/") -> None:
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=model,
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": "application/x-recordio-protobuf",
            "SplitType": "RecordIO",
        },
        TransformOutput={"S3OutputPath": f"s3://knn-data/{name}"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )


def _model(sm, name: str, data_url: str) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": KNN, "ModelDataUrl": data_url},
    )


def _shaped(account, kind: str, name: str) -> dict:
    described = describe(account, kind, name)
    assert shape_errors(described, OPERATIONS[kind]) == [], described
    return described


def describe_responses_fit_the_output_shape(account) -> None:
    """Every Describe answer, at every stage of a job, passes botocore's output shape."""
    sm = account.client("sagemaker")
    script_job(account, "shaped", WRITE_OUTPUT, environment={"A": "b"})
    knn_training(account, "shaped-knn")
    knn_training(account, "shaped-stop")
    for name in ("shaped", "shaped-knn", "shaped-stop"):
        computed(account, "processing" if name == "shaped" else "training", name)
    _shaped(account, "processing", "shaped")
    _shaped(account, "training", "shaped-knn")
    sm.stop_training_job(TrainingJobName="shaped-stop")
    _shaped(account, "training", "shaped-stop")
    processed = settle(account, "processing", "shaped")
    assert shape_errors(processed, "DescribeProcessingJob") == []
    assert processed["Environment"] == {"A": "b"}
    assert processed["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    trained = settle(account, "training", "shaped-knn")
    assert shape_errors(trained, "DescribeTrainingJob") == []
    assert "MetricDefinitions" not in trained["AlgorithmSpecification"]
    assert settle(account, "training", "shaped-stop")["TrainingJobStatus"] == "Stopped"
    _shaped(account, "training", "shaped-stop")
    _model(sm, "shaped", trained["ModelArtifacts"]["S3ModelArtifacts"])
    model = sm.describe_model(ModelName="shaped")
    model.pop("ResponseMetadata")
    assert shape_errors(model, "DescribeModel") == []
    _transform(sm, "shaped-transform", "shaped")
    _shaped(account, "transform", "shaped-transform")
    assert settle(account, "transform", "shaped-transform")["TransformJobStatus"] == "Completed"
    _shaped(account, "transform", "shaped-transform")
    knn_training(account, "shaped-failed", bucket="no-such-bucket-here", data=False)
    failed = settle(account, "training", "shaped-failed")
    assert failed["TrainingJobStatus"] == "Failed"
    assert shape_errors(failed, "DescribeTrainingJob") == []


def list_filters_sorts_then_paginates(account) -> None:
    sm = account.client("sagemaker")
    for name in ("list-b", "list-a", "list-c"):
        script_job(account, name, WRITE_OUTPUT)
    script_job(account, "list-fails", "raise SystemExit(4)")
    for name in ("list-b", "list-a", "list-c", "list-fails"):
        settle(account, "processing", name)
    first = sm.list_processing_jobs(StatusEquals="Completed", MaxResults=1, SortBy="Name")
    names = [s["ProcessingJobName"] for s in first["ProcessingJobSummaries"]]
    token = first["NextToken"]
    while token:
        page = sm.list_processing_jobs(
            StatusEquals="Completed", MaxResults=1, SortBy="Name", NextToken=token
        )
        names += [s["ProcessingJobName"] for s in page["ProcessingJobSummaries"]]
        token = page.get("NextToken")
    assert names == ["list-a", "list-b", "list-c"]
    failed = sm.list_processing_jobs(StatusEquals="Failed")["ProcessingJobSummaries"]
    assert [(s["ProcessingJobName"], "exit code 4" in s["FailureReason"]) for s in failed] == [
        ("list-fails", True)
    ]
    newest = sm.list_processing_jobs(SortBy="CreationTime", SortOrder="Descending")
    assert newest["ProcessingJobSummaries"][0]["ProcessingJobName"] == "list-fails"
    refused(lambda: sm.list_processing_jobs(NextToken="not-a-token"), "ValidationException")


def a_transform_job_needs_an_existing_model(account) -> None:
    sm = account.client("sagemaker")
    refused(
        lambda: _transform(sm, "orphan", "recops-no-such-model"),
        "ValidationException",
        "recops-no-such-model",
    )


def tags_on_jobs_and_models(account) -> None:
    sm = account.client("sagemaker")
    script_job(account, "tagged", WRITE_OUTPUT)
    knn_training(account, "tagged-knn")
    trained = settle(account, "training", "tagged-knn")
    _model(sm, "tagged", trained["ModelArtifacts"]["S3ModelArtifacts"])
    arns = [
        describe(account, "processing", "tagged")["ProcessingJobArn"],
        trained["TrainingJobArn"],
        sm.describe_model(ModelName="tagged")["ModelArn"],
    ]
    for arn in arns:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stack", "Value": "one"}])
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stack", "Value": "two"}])
        assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "stack", "Value": "two"}]
        sm.delete_tags(ResourceArn=arn, TagKeys=["stack"])
        assert sm.list_tags(ResourceArn=arn)["Tags"] == []
    missing = arns[0].replace("tagged", "never-created")
    refused(
        lambda: sm.add_tags(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}]),
        "ValidationException",
    )
    refused(lambda: sm.list_tags(ResourceArn=missing), "ValidationException")


def internal_failures_end_the_job_failed(account) -> None:
    """A missing bucket, an empty channel, a bad artifact: Failed with a reason, never a 500."""
    sm, s3 = account.client("sagemaker"), account.client("s3")
    processing(
        sm,
        "no-bucket",
        ["python3", "/opt/ml/processing/input/code/job.py"],
        [s3_input("code", "s3://recops-missing-bucket/code/", "/opt/ml/processing/input/code")],
    )
    failed = settle(account, "processing", "no-bucket")
    assert failed["ProcessingJobStatus"] == "Failed"
    assert "recops-missing-bucket" in failed["FailureReason"]
    s3.create_bucket(Bucket="empty-channel")
    knn_training(account, "no-objects", bucket="empty-channel", data=False)
    failed = settle(account, "training", "no-objects")
    assert "No S3 objects found under S3 URL" in failed["FailureReason"]
    s3.put_object(Bucket="empty-channel", Key="bad/model.tar.gz", Body=b"not a tarball")
    _model(sm, "broken", "s3://empty-channel/bad/model.tar.gz")
    _transform(sm, "broken", "broken", source="s3://empty-channel/bad/")
    failed = settle(account, "transform", "broken")
    assert failed["TransformJobStatus"] == "Failed"
    assert failed["FailureReason"].startswith(("ClientError", "AlgorithmError"))


SHAPES_AND_ERRORS = [
    Behaviour(
        "sagemaker-describe-fits-output-shape",
        f"{API}/API_DescribeProcessingJob.html (ProcessingResources, Environment required/returned);"
        f" {API}/API_DescribeTrainingJob.html; {API}/API_DescribeTransformJob.html; "
        f"{API}/API_DescribeModel.html",
        describe_responses_fit_the_output_shape,
    ),
    Behaviour(
        "sagemaker-list-filters-sorts-paginates",
        f"{API}/API_ListProcessingJobs.html (StatusEquals, SortBy, MaxResults, NextToken)",
        list_filters_sorts_then_paginates,
    ),
    Behaviour(
        "sagemaker-transform-needs-an-existing-model",
        f"{API}/API_CreateTransformJob.html (ModelName: an existing model)",
        a_transform_job_needs_an_existing_model,
        aws=True,
    ),
    Behaviour(
        "sagemaker-tags-on-jobs-and-models",
        f"{API}/API_AddTags.html (an existing key's value is overwritten); {API}/API_ListTags.html",
        tags_on_jobs_and_models,
    ),
    Behaviour(
        "sagemaker-internal-failures-are-job-failures",
        f"{API}/API_DescribeTrainingJob.html (FailureReason); {API}/CommonErrors.html",
        internal_failures_end_the_job_failed,
    ),
]


@rows(*SHAPES_AND_ERRORS)
def test_shapes_and_errors(behaviour, account):
    behaviour.check(account)

"""SageMaker training and transform jobs that run: FM, KNN, batch transform, failures; the moto
gaps localaws/sagemaker*.py close (fidelity rows: tests/localaws/test_sagemaker_*.py)."""

import inspect
import time

import boto3
import numpy as np
import pytest
from moto import mock_aws
from moto.sagemaker.models import FakeProcessingJob, FakeTrainingJob, FakeTransformJob
from moto.sagemaker.responses import SageMakerResponse

from bench.datasets import movielens_path
from localaws import LocalAccount, clock
from tests.prep_options import prep_options_with
from training import fm_to_knn, prep, recordio
from training.evaluate import evaluate_sources, load_holdout, read_knn_transform_output

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
REGISTRY = "382416733822.dkr.ecr.us-east-1.amazonaws.com"


def test_the_pinned_moto_still_completes_jobs_without_running_them():
    assert 'self.training_job_status = "Completed"' in inspect.getsource(FakeTrainingJob.__init__)
    assert 'self.transform_job_status = "Completed"' in inspect.getsource(FakeTransformJob.__init__)
    assert 'self.processing_job_status = "Completed"' in inspect.getsource(
        FakeProcessingJob.__init__
    )
    assert 'self.secondary_status = "Completed"' in inspect.getsource(FakeTrainingJob.__init__)


def test_the_pinned_moto_still_drops_processing_environment_and_resources():
    source = inspect.getsource(SageMakerResponse.create_processing_job)
    assert "Environment" not in source
    assert "ProcessingResources" not in source


def test_the_pinned_moto_still_has_no_stop_for_training_or_transform_jobs():
    assert not hasattr(SageMakerResponse, "stop_training_job")
    assert not hasattr(SageMakerResponse, "stop_transform_job")


def _moto_processing_job(sm, name: str) -> None:
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        AppSpecification={"ImageUri": f"{REGISTRY}/sagemaker-scikit-learn:1.4-2-cpu-py3"},
        ProcessingResources={
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 5,
            }
        },
    )


@mock_aws
def test_the_pinned_moto_still_lists_before_filtering_and_stops_completed_jobs():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    _moto_processing_job(sm, "first")
    _moto_processing_job(sm, "second")
    sm.stop_processing_job(ProcessingJobName="second")  # a Completed job, stopped anyway
    stopped = sm.list_processing_jobs(StatusEquals="Stopped", MaxResults=1)
    assert stopped["ProcessingJobSummaries"] == []  # the one Stopped job is on page two


@mock_aws
def test_the_pinned_moto_still_takes_transforms_of_missing_models_and_shapes_badly():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_transform_job(
        TransformJobName="orphan",
        ModelName="no-such-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}
        },
        TransformOutput={"S3OutputPath": "s3://b/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": "x"})
    assert sm.describe_model(ModelName="m")["VpcConfig"] == {}  # required members missing
    missing = "arn:aws:sagemaker:us-east-1:123456789012:training-job/never"
    with pytest.raises(AttributeError):  # HTTP 500 on a server
        sm.add_tags(ResourceArn=missing, Tags=[{"Key": "k", "Value": "v"}])


def wait(sagemaker, kind: str, name: str, timeout: float = 300) -> dict:
    """Poll like a .sync task, 30 virtual seconds apart (the clock waits for local work)."""
    describe = getattr(sagemaker, f"describe_{kind}_job")
    key = {"training": "TrainingJobName", "transform": "TransformJobName"}[kind]
    status_key = {"training": "TrainingJobStatus", "transform": "TransformJobStatus"}[kind]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = describe(**{key: name})
        if described[status_key] not in ("InProgress", "Stopping"):
            return described
        clock.sleep(30)
    raise TimeoutError(name)


def _training_job(sagemaker, name, image, hyperparameters, channels, bucket):
    sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }
            for channel, uri in channels.items()
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models"},
        ResourceConfig={"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    return wait(sagemaker, "training", name)


def test_a_training_job_with_bad_hyperparameters_fails_with_a_reason():
    with LocalAccount() as account:
        account.client("s3").create_bucket(Bucket="bkt")
        account.client("s3").put_object(
            Bucket="bkt",
            Key="train/x.recordio",
            Body=recordio.encode_dense(np.ones((2, 3), np.float32), np.ones(2, np.float32)),
        )
        described = _training_job(
            account.client("sagemaker"),
            "fm-bad",
            f"{REGISTRY}/factorization-machines:1",
            {"feature_dim": 3},
            {"train": "s3://bkt/train/"},
            "bkt",
        )
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == (  # the built-in algorithm's own wording
        "ClientError: No value(s) were specified for 'num_factors', 'predictor_type' which are "
        "required hyperparameter(s) (caused by ValidationError)"
    )


@pytest.mark.slow
@pytest.mark.network
def test_fm_knn_pipeline_beats_popularity_on_movielens_100k(tmp_path):
    options = prep.PrepOptions.from_dict(
        prep_options_with(
            format="tsv",
            columns={
                "USER_ID": "user_id:token",
                "ITEM_ID": "item_id:token",
                "TIMESTAMP": "timestamp:float",
            },
            min_user_interactions=1,
            min_item_interactions=1,
            days_since_first=False,
        )
    )
    prepared = tmp_path / "prepared"
    manifest = prep.run(movielens_path("ml-100k"), prepared, options)
    with LocalAccount() as account:
        s3, sagemaker = account.client("s3"), account.client("sagemaker")
        s3.create_bucket(Bucket="art")
        for channel in ("train", "test"):
            for shard in manifest["fm"]["shards"][channel]:
                s3.put_object(Bucket="art", Key=f"fm/{shard}", Body=(prepared / shard).read_bytes())
        fm = _training_job(
            sagemaker,
            "fm-100k",
            f"{REGISTRY}/factorization-machines:1",
            {
                "feature_dim": manifest["fm"]["feature_dim"],
                "num_factors": 32,
                "predictor_type": "binary_classifier",
                "epochs": 5,
                "mini_batch_size": 1000,
            },
            {"train": "s3://art/fm/fm/train/", "test": "s3://art/fm/fm/test/"},
            "art",
        )
        assert fm["TrainingJobStatus"] == "Completed", fm.get("FailureReason")
        metric_names = {m["MetricName"] for m in fm["FinalMetricDataList"]}
        assert "test:binary_classification_accuracy" in metric_names
        artifact = s3.get_object(Bucket="art", Key="models/fm-100k/output/model.tar.gz")[
            "Body"
        ].read()
        params = fm_to_knn.read_fm_model(artifact, manifest["fm"]["feature_dim"])
        items, labels, users = fm_to_knn.knn_matrices(params, manifest["users"], manifest["items"])
        s3.put_object(
            Bucket="art", Key="knn/train/items.recordio", Body=recordio.encode_dense(items, labels)
        )
        s3.put_object(
            Bucket="art", Key="knn/users/users.recordio", Body=recordio.encode_dense(users)
        )
        knn = _training_job(
            sagemaker,
            "knn-100k",
            f"{REGISTRY}/knn:1",
            {
                "feature_dim": items.shape[1],
                "k": 100,
                "predictor_type": "classifier",
                "sample_size": len(items),
                "index_metric": "INNER_PRODUCT",
            },
            {"train": "s3://art/knn/train/"},
            "art",
        )
        assert knn["TrainingJobStatus"] == "Completed", knn.get("FailureReason")
        sagemaker.create_model(
            ModelName="knn-100k",
            ExecutionRoleArn=ROLE,
            PrimaryContainer={
                "Image": f"{REGISTRY}/knn:1",
                "ModelDataUrl": knn["ModelArtifacts"]["S3ModelArtifacts"],
            },
        )
        sagemaker.create_transform_job(
            TransformJobName="topk-100k",
            ModelName="knn-100k",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://art/knn/users/"}
                },
                "ContentType": "application/x-recordio-protobuf",
                "SplitType": "RecordIO",
            },
            TransformOutput={
                "S3OutputPath": "s3://art/predictions",
                "Accept": "application/jsonlines; verbose=true",
            },
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
        transform = wait(sagemaker, "transform", "topk-100k")
        assert transform["TransformJobStatus"] == "Completed", transform.get("FailureReason")
        lines = (
            s3.get_object(Bucket="art", Key="predictions/users.recordio.out")["Body"]
            .read()
            .decode()
        )
    first = lines.splitlines()[0]
    assert '"distances"' in first
    recommendations = read_knn_transform_output(lines, 100)
    assert recommendations.shape == (manifest["users"], 100)
    holdout, _, _ = load_holdout(prepared)
    results = evaluate_sources(holdout, {"fm-knn": recommendations}, [10, 25])
    ours, baseline = results["fm-knn, seen removed"], results["popularity, seen removed"]
    assert ours["aws_mrr"] > baseline["aws_mrr"]
    assert ours["ndcg@10"] > baseline["ndcg@10"]


def test_local_fm_artifact_is_read_by_fm_to_knn_exactly():
    from localaws import fm_trainer
    from training.features import implicit_target, one_hot

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 40, 800), rng.integers(0, 30, 800)
    examples = implicit_target(users, items, 30, 2, seed=1)
    matrix = one_hot(examples, 40, 30)
    hp = fm_trainer.FMHyperparameters(
        feature_dim=70, num_factors=4, predictor_type="binary_classifier", epochs=2
    )
    params = fm_trainer.train(matrix, examples.label, hp, log=lambda line: None)
    back = fm_to_knn.read_fm_model(fm_trainer.model_artifact(params, hp))
    np.testing.assert_allclose(back.v, params.v.astype(np.float32))
    np.testing.assert_allclose(back.w, params.w.astype(np.float32))
    assert back.bias == pytest.approx(params.bias, rel=1e-6)
    scores = fm_trainer.predict(back, matrix)
    assert (
        fm_trainer.evaluate(back, matrix, examples.label, "binary_classifier")[
            "test:binary_classification_accuracy"
        ]
        > 0.5
    )
    assert scores.shape == (matrix.shape[0],)

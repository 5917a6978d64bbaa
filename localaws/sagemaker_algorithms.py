"""The built-in algorithms the product uses, computed locally: FM and KNN training, KNN transform.

Gap closed (moto 5.2.5): create_training_job and create_transform_job report `Completed` at
creation and write nothing to S3. Here:
- training on the `factorization-machines` image: localaws.fm_trainer on the RecordIO channels,
  model.tar.gz in SageMaker's FM layout at ModelArtifacts.S3ModelArtifacts, test metrics in
  FinalMetricDataList;
- training on the `knn` image: an exact index (inner product, L2 or cosine) of the train
  channel's rows and labels (a local format: only the local transform reads it);
- transform with a `knn` model: per input object, `<object>.out` in the verbose JSON-lines
  format (`predicted_label`, `distances` ascending, `labels`), one line per record.
Outputs are published when the job is seen Completed (sagemaker_lifecycle); any failure
(a missing channel or bucket, a bad artifact, hyperparameters the algorithm refuses:
localaws/rules/sagemaker.py) is the job's FailureReason.
"""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np

from localaws import fm_trainer, s3
from localaws.rules import sagemaker as algorithm_rules
from localaws.sagemaker_lifecycle import JobError, JobRun, failure_reason, job_inputs
from training import recordio


class _StoppedError(Exception):
    """The job was stopped while the algorithm computed."""


def _channel(account: str, request: dict, name: str):
    for channel in request.get("InputDataConfig", []):
        if channel["ChannelName"] == name:
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            return recordio.read_shards(body for _, body in job_inputs(account, uri))
    return None


def _train_fm(request: dict, account: str, log) -> tuple[bytes, dict[str, float]]:
    hp = fm_trainer.FMHyperparameters.from_strings(request.get("HyperParameters") or {})
    train = _channel(account, request, "train")
    if train is None:
        raise JobError("ClientError: factorization-machines needs a 'train' channel")
    params = fm_trainer.train(train[0], train[1], hp, log=log)
    metrics = {}
    test = _channel(account, request, "test")
    if test is not None:
        metrics = fm_trainer.evaluate(params, test[0], test[1], hp.predictor_type)
        for name, value in metrics.items():
            log(f"#test_score (algo-1) : ('{name.split(':')[1]}', {value})")
    return fm_trainer.model_artifact(params, hp), metrics


def _train_knn(request: dict, account: str, log) -> tuple[bytes, dict[str, float]]:
    hp = request.get("HyperParameters") or {}
    missing = [n for n in ("feature_dim", "k", "predictor_type", "sample_size") if n not in hp]
    if missing:
        raise JobError(f"ClientError: missing required hyperparameters {missing}")
    train = _channel(account, request, "train")
    if train is None:
        raise JobError("ClientError: knn needs a 'train' channel")
    matrix, labels = train
    if matrix.shape[1] != int(hp["feature_dim"]):
        raise JobError(
            f"ClientError: rows have {matrix.shape[1]} features, feature_dim is {hp['feature_dim']}"
        )
    buffer = io.BytesIO()
    np.savez(
        buffer,
        vectors=matrix.toarray().astype(np.float32),
        labels=np.asarray(labels, dtype=np.float32),
        k=int(hp["k"]),
        metric=hp.get("index_metric", "L2"),
    )
    log(f"localaws knn: exact index of {matrix.shape[0]} vectors, k={hp['k']}")
    return fm_trainer.tar_member("model_algo-1", buffer.getvalue()), {}


TRAINERS = {"factorization-machines": _train_fm, "knn": _train_knn}


def image_kind(image: str) -> str | None:
    repository = image.rsplit("/", 1)[-1].split(":")[0]
    return repository if repository in TRAINERS else None


def _stoppable(run: JobRun, log):
    """The algorithm's log callback, which also ends the computation when the job is stopped."""

    def write(line: str) -> None:
        if run.cancelled():
            raise _StoppedError
        log(line)

    return write


def run_training_job(run: JobRun, request: dict, artifact_uri: str, account: str, log) -> None:
    kind = image_kind(request["AlgorithmSpecification"].get("TrainingImage", ""))
    try:
        if kind is None:
            raise JobError(f"ClientError: localaws trains the {sorted(TRAINERS)} images only")
        failure = algorithm_rules.hyperparameter_failure(kind, request.get("HyperParameters") or {})
        if failure:
            raise JobError(failure)
        artifact, metrics = TRAINERS[kind](request, account, _stoppable(run, log))
    except _StoppedError:
        run.finish("Cancelled")
        return
    except Exception as err:  # the service reports any failure as the job's FailureReason
        log(f"{type(err).__name__}: {err}")
        run.finish("Failed", failure_reason(err))
        return
    run.metrics = metrics
    run.finish("Completed", commit=lambda: s3.put(account, artifact_uri, artifact))


def _load_knn(account: str, model_data_url: str) -> dict:
    ((_, body),) = job_inputs(account, model_data_url)[:1]
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        data = tar.extractfile("model_algo-1").read()
    with np.load(io.BytesIO(data)) as npz:
        return {name: npz[name] for name in npz.files}


def knn_query(index: dict, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels), each (n, k), best first: larger inner product / cosine, smaller L2."""
    vectors = index["vectors"]
    metric = str(index["metric"])
    if metric == "INNER_PRODUCT":
        scores = queries @ vectors.T
    elif metric == "COSINE":
        norms = np.linalg.norm(queries, axis=1, keepdims=True) * np.linalg.norm(vectors, axis=1)
        scores = (queries @ vectors.T) / np.maximum(norms, 1e-12)
    else:
        scores = -(
            (queries**2).sum(1, keepdims=True) - 2 * queries @ vectors.T + (vectors**2).sum(1)
        )
    k = min(k, vectors.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    best = np.take_along_axis(scores, top, axis=1)
    distances = best if metric in ("INNER_PRODUCT", "COSINE") else np.sqrt(np.maximum(-best, 0))
    return distances, index["labels"][top]


def _transform_lines(index: dict, body: bytes, verbose: bool) -> str:
    queries, _ = recordio.read_dense(body)
    distances, labels = knn_query(index, queries.astype(np.float32), int(index["k"]))
    lines = []
    for row_distances, row_labels in zip(distances, labels, strict=True):
        # the service lists neighbours by ascending distance value: best last here
        ascending = np.argsort(row_distances, kind="stable")
        record = {"predicted_label": float(row_labels[0])}
        if verbose:
            record["distances"] = [float(d) for d in row_distances[ascending]]
            record["labels"] = [float(label) for label in row_labels[ascending]]
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def run_transform_job(run: JobRun, request: dict, model, account: str, log) -> None:
    """`model` is the moto Model the job names (None if it was deleted meanwhile)."""
    try:
        if model is None:
            raise JobError(f"ClientError: Could not find model {request['ModelName']!r}")
        container = model.primary_container or {}
        if image_kind(container.get("Image", "")) != "knn":
            raise JobError("ClientError: localaws transforms with knn models only")
        index = _load_knn(account, container["ModelDataUrl"])
        accept = request["TransformOutput"].get("Accept", "")
        verbose = "verbose=true" in accept.replace(" ", "")
        source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        target = request["TransformOutput"]["S3OutputPath"].rstrip("/")
        outputs = []
        for key, body in job_inputs(account, source):
            if run.cancelled():
                run.finish("Cancelled")
                return
            name = f"{target}/{key.rsplit('/', 1)[-1]}.out"
            outputs.append((name, _transform_lines(index, body, verbose).encode()))
        log(f"localaws knn transform: {len(outputs)} object(s)")
    except Exception as err:  # reported as the job's FailureReason
        log(f"{type(err).__name__}: {err}")
        run.finish("Failed", failure_reason(err))
        return

    def commit() -> None:
        for uri, body in outputs:
            s3.put(account, uri, body)

    run.finish("Completed", commit=commit)

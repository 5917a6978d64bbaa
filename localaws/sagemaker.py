"""SageMaker jobs that do their work locally.

Gap closed (moto 5.2.5): create_{processing,training,transform}_job store the request and report
`Completed` at once, running nothing and writing nothing to S3. Here every job runs in a thread
and goes InProgress -> Completed, or Failed with a FailureReason (what went wrong):

- training on the `factorization-machines` image: localaws.fm_trainer on the RecordIO channels,
  writing model.tar.gz in SageMaker's FM layout to ModelArtifacts.S3ModelArtifacts;
- training on the `knn` image: an exact index (inner product, L2 or cosine) of the train
  channel's rows and labels (a local format: only the local transform reads it);
- transform with a `knn` model: per input object, `<object>.out` in the verbose JSON-lines
  format (`predicted_label`, `distances` ascending, `labels`), one line per record;
- processing on the scikit-learn image: a processing job runs
its ContainerEntrypoint + ContainerArguments as a local process: every ProcessingInput is copied
from local S3 into a temporary folder standing in for /opt/ml/processing/..., every argument that
names a /opt/ml/processing path is pointed there, and the ProcessingOutputs are uploaded back.
The job goes InProgress -> Completed, or Failed with a FailureReason (the last lines the process
wrote) when it exits non-zero; its output goes to CloudWatch Logs as the service's would.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

import numpy as np
from moto.logs.models import logs_backends
from moto.sagemaker import models as sm_models

from localaws import fm_trainer, s3
from localaws.patching import patched
from localaws.rules import sagemaker as algorithm_rules
from training import recordio

CONTAINER_ROOT = "/opt/ml/processing"
PYTHON_IMAGES = ("sagemaker-scikit-learn",)
_RUNNING: dict[str, subprocess.Popen] = {}


def download_prefix(account: str, uri: str, target: Path) -> int:
    """Copy every object under an S3 prefix (or the one object) into a folder."""
    _, prefix = s3.split_uri(uri)
    objects = s3.objects_under(account, uri)
    for name, body in objects:
        destination = target / (name[len(prefix) :].lstrip("/") or Path(name).name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(body)
    return len(objects)


def upload_folder(account: str, folder: Path, uri: str) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        s3.put(
            account, f"{uri.rstrip('/')}/{path.relative_to(folder).as_posix()}", path.read_bytes()
        )
    return len(files)


def _local(path: str, root: Path) -> Path:
    return root / Path(path).relative_to(CONTAINER_ROOT)


def _rewrite(argument: str, root: Path) -> str:
    return argument.replace(CONTAINER_ROOT, str(root))


def _log(
    job_name: str, account: str, region: str, text: str, group: str = "ProcessingJobs"
) -> None:
    logs = logs_backends[account][region]
    group, stream = f"/aws/sagemaker/{group}", f"{job_name}/algo-1"
    logs.ensure_log_group(group)
    with contextlib.suppress(Exception):
        logs.create_log_stream(group, stream)
    now = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    events = [{"timestamp": now, "message": line} for line in text.splitlines() if line.strip()]
    if events:
        logs.put_log_events(group, stream, events)


def run_processing_job(job: sm_models.FakeProcessingJob, account: str, region: str) -> None:
    """The job's whole life: inputs in, entrypoint run, outputs out, status set."""
    app = job.app_specification
    image = app.get("ImageUri", "")
    if not any(f"/{name}:" in image for name in PYTHON_IMAGES):
        _finish(
            job, "Failed", f"localaws runs processing jobs of {PYTHON_IMAGES} only, not {image}"
        )
        return
    with tempfile.TemporaryDirectory(prefix=f"localaws-{job.processing_job_name}-") as tmp:
        root = Path(tmp)
        python_path = []
        for item in job.processing_inputs or []:
            source = item.get("S3Input")
            if source:
                local = _local(source["LocalPath"], root)
                local.mkdir(parents=True, exist_ok=True)
                download_prefix(account, source["S3Uri"], local)
                python_path.append(str(local))
        outputs = (job.processing_output_config or {}).get("Outputs", [])
        for item in outputs:
            _local(item["S3Output"]["LocalPath"], root).mkdir(parents=True, exist_ok=True)
        command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        command = [_rewrite(part, root) for part in command]
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(python_path), PYTHONUNBUFFERED="1")
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        _RUNNING[job.processing_job_name] = process
        output, _ = process.communicate()
        _RUNNING.pop(job.processing_job_name, None)
        _log(job.processing_job_name, account, region, f"$ {shlex.join(command)}\n{output}")
        if job.processing_job_status == "Stopping":
            _finish(job, "Stopped", "stopped by request")
            return
        if process.returncode != 0:
            tail = " | ".join(output.strip().splitlines()[-3:])
            _finish(job, "Failed", f"AlgorithmError: exit code {process.returncode}: {tail}"[:1024])
            return
        for item in outputs:
            upload_folder(
                account, _local(item["S3Output"]["LocalPath"], root), item["S3Output"]["S3Uri"]
            )
    _finish(job, "Completed", None)


def _finish(job, status: str, reason: str | None) -> None:
    job.processing_end_time = datetime.datetime.now(datetime.UTC)
    job.last_modified_time = job.processing_end_time
    if reason:
        job.failure_reason = reason
    job.processing_job_status = status


_original_create = sm_models.SageMakerModelBackend.create_processing_job
_original_stop = sm_models.SageMakerModelBackend.stop_processing_job


def _create_processing_job(self, **kwargs):
    job = _original_create(self, **kwargs)
    job.processing_job_status = "InProgress"
    job.processing_end_time = None
    thread = threading.Thread(
        target=run_processing_job, args=(job, self.account_id, self.region_name), daemon=True
    )
    thread.start()
    return job


def _stop_processing_job(self, processing_job_name: str) -> None:
    job = self.processing_jobs.get(processing_job_name)
    process = _RUNNING.get(processing_job_name)
    if job is not None and process is not None:
        job.processing_job_status = "Stopping"
        process.terminate()
        return
    _original_stop(self, processing_job_name)


# --- training and transform --------------------------------------------------------------------


def _channel(account: str, job, name: str):
    for channel in job.input_data_config or []:
        if channel["ChannelName"] == name:
            objects = s3.objects_under(account, channel["DataSource"]["S3DataSource"]["S3Uri"])
            if not objects:
                raise ValueError(f"ClientError: channel {name!r} has no objects")
            return recordio.read_sparse(b"".join(body for _, body in objects))
    return None


def _train_fm(job, account: str, log) -> tuple[bytes, dict[str, float]]:
    hp = fm_trainer.FMHyperparameters.from_strings(job.hyper_parameters or {})
    train = _channel(account, job, "train")
    if train is None:
        raise ValueError("ClientError: factorization-machines needs a 'train' channel")
    params = fm_trainer.train(train[0], train[1], hp, log=log)
    metrics = {}
    test = _channel(account, job, "test")
    if test is not None:
        metrics = fm_trainer.evaluate(params, test[0], test[1], hp.predictor_type)
        for name, value in metrics.items():
            log(f"#test_score (algo-1) : ('{name.split(':')[1]}', {value})")
    return fm_trainer.model_artifact(params, hp), metrics


def _train_knn(job, account: str, log) -> tuple[bytes, dict[str, float]]:
    hp = job.hyper_parameters or {}
    missing = [n for n in ("feature_dim", "k", "predictor_type", "sample_size") if n not in hp]
    if missing:
        raise ValueError(f"ClientError: missing required hyperparameters {missing}")
    matrix, labels = _channel(account, job, "train")
    if matrix.shape[1] != int(hp["feature_dim"]):
        raise ValueError(
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


def _image_kind(image: str) -> str | None:
    repository = image.rsplit("/", 1)[-1].split(":")[0]
    return repository if repository in TRAINERS else None


def run_training_job(job, account: str, region: str) -> None:
    kind = _image_kind(job.algorithm_specification.get("TrainingImage", ""))
    lines: list[str] = []
    try:
        if kind is None:
            raise ValueError(f"localaws trains the {sorted(TRAINERS)} images only")
        failure = algorithm_rules.hyperparameter_failure(kind, job.hyper_parameters or {})
        if failure:
            raise ValueError(failure)
        artifact, metrics = TRAINERS[kind](job, account, lines.append)
        s3.put(account, job.model_artifacts["S3ModelArtifacts"], artifact)
        now = datetime.datetime.now(datetime.UTC)
        job.final_metric_data_list = [
            {"MetricName": name, "Value": value, "Timestamp": now}
            for name, value in metrics.items()
        ]
        _end(job, "training_job_status", "Completed", None)
    except Exception as err:  # the service reports any failure as the job's FailureReason
        lines.append(f"{type(err).__name__}: {err}")
        _end(job, "training_job_status", "Failed", str(err))
    finally:
        _log(job.training_job_name, account, region, "\n".join(lines), "TrainingJobs")


def _load_knn(account: str, model_data_url: str) -> dict:
    ((_, body),) = s3.objects_under(account, model_data_url)
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


def run_transform_job(job, backend, account: str, region: str) -> None:
    try:
        model = backend.describe_model(job.model_name)
        container = model.primary_container or {}
        if _image_kind(container.get("Image", "")) != "knn":
            raise ValueError("localaws transforms with knn models only")
        index = _load_knn(account, container["ModelDataUrl"])
        accept = (job.transform_output or {}).get("Accept", "")
        verbose = "verbose=true" in accept.replace(" ", "")
        source = job.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
        target = job.transform_output["S3OutputPath"].rstrip("/")
        for key, body in s3.objects_under(account, source):
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
            s3.put(
                account,
                f"{target}/{key.rsplit('/', 1)[-1]}.out",
                ("\n".join(lines) + "\n").encode(),
            )
        _end(job, "transform_job_status", "Completed", None)
    except Exception as err:  # reported as the job's FailureReason
        _end(job, "transform_job_status", "Failed", f"{type(err).__name__}: {err}")


def _end(job, status_attribute: str, status: str, reason: str | None) -> None:
    now = datetime.datetime.now(datetime.UTC)
    for attribute in ("training_end_time", "transform_end_time"):
        if hasattr(job, attribute):
            setattr(job, attribute, now)
    job.last_modified_time = now
    job.failure_reason = reason
    if hasattr(job, "secondary_status"):
        job.secondary_status = status
    setattr(job, status_attribute, status)


_original_create_training = sm_models.SageMakerModelBackend.create_training_job
_original_create_transform = sm_models.SageMakerModelBackend.create_transform_job


def _create_training_job(self, *args, **kwargs):
    job = _original_create_training(self, *args, **kwargs)
    job.training_job_status = job.secondary_status = "InProgress"
    threading.Thread(
        target=run_training_job, args=(job, self.account_id, self.region_name), daemon=True
    ).start()
    return job


def _create_transform_job(self, *args, **kwargs):
    job = _original_create_transform(self, *args, **kwargs)
    job.transform_job_status = "InProgress"
    threading.Thread(
        target=run_transform_job, args=(job, self, self.account_id, self.region_name), daemon=True
    ).start()
    return job


_PATCHES = [
    (sm_models.SageMakerModelBackend, "create_processing_job", _create_processing_job),
    (sm_models.SageMakerModelBackend, "stop_processing_job", _stop_processing_job),
    (sm_models.SageMakerModelBackend, "create_training_job", _create_training_job),
    (sm_models.SageMakerModelBackend, "create_transform_job", _create_transform_job),
]


def install() -> contextlib.AbstractContextManager:
    return patched(_PATCHES)

"""SageMaker jobs that do their work locally.

Gap closed (moto 5.2.5): create_processing_job stores the request and reports `Completed` at once,
running nothing and writing nothing to S3. Here a processing job on the scikit-learn image runs
its ContainerEntrypoint + ContainerArguments as a local process: every ProcessingInput is copied
from local S3 into a temporary folder standing in for /opt/ml/processing/..., every argument that
names a /opt/ml/processing path is pointed there, and the ProcessingOutputs are uploaded back.
The job goes InProgress -> Completed, or Failed with a FailureReason (the last lines the process
wrote) when it exits non-zero; its output goes to CloudWatch Logs as the service's would.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shlex
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sagemaker import models as sm_models

CONTAINER_ROOT = "/opt/ml/processing"
PYTHON_IMAGES = ("sagemaker-scikit-learn",)
_RUNNING: dict[str, subprocess.Popen] = {}


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def download_prefix(account: str, uri: str, target: Path) -> int:
    """Copy every object under an S3 prefix (or the one object) into a folder."""
    bucket_name, prefix = _split_s3(uri)
    bucket = s3_backends[account]["aws"].get_bucket(bucket_name)
    count = 0
    for key_name, key in list(bucket.keys.items()):
        if not key_name.startswith(prefix) or key_name.endswith("/"):
            continue
        relative = key_name[len(prefix) :].lstrip("/") or Path(key_name).name
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(key.value)
        count += 1
    return count


def upload_folder(account: str, folder: Path, uri: str) -> int:
    bucket_name, prefix = _split_s3(uri)
    backend = s3_backends[account]["aws"]
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
        backend.put_object(bucket_name, key, path.read_bytes())
        count += 1
    return count


def _local(path: str, root: Path) -> Path:
    return root / Path(path).relative_to(CONTAINER_ROOT)


def _rewrite(argument: str, root: Path) -> str:
    return argument.replace(CONTAINER_ROOT, str(root))


def _log(job_name: str, account: str, region: str, text: str) -> None:
    logs = logs_backends[account][region]
    group, stream = "/aws/sagemaker/ProcessingJobs", f"{job_name}/algo-1"
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


_PATCHES = [
    (sm_models.SageMakerModelBackend, "create_processing_job", _create_processing_job),
    (sm_models.SageMakerModelBackend, "stop_processing_job", _stop_processing_job),
]


@contextlib.contextmanager
def install():
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in _PATCHES]
    for owner, name, replacement in _PATCHES:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)

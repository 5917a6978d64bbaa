"""SageMaker processing jobs run the way the container runs them, in the image's own Python.

Gap closed (moto 5.2.5): create_processing_job stores part of the request (Environment and
ProcessingResources are dropped) and reports `Completed`; nothing runs, nothing reaches S3.

Here the job's ContainerEntrypoint + ContainerArguments run as a local process
(https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-run-image.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/build-your-own-processing-container.html):
- a temporary folder stands for the container's `/`: every S3Input is downloaded to its
  LocalPath there, every ProcessingOutput's LocalPath is created, /opt/ml/config holds
  processingjobconfig.json and resourceconfig.json; the working directory is the image's
  WORKDIR (`/`, so this folder). Where the machine allows a private mount namespace (root and
  `unshare`), the process sees that folder's opt/ml at /opt/ml itself, so code may name
  container paths; otherwise container paths in its arguments and environment values are
  pointed into the folder;
- the interpreter is the image's (`sagemaker_images`): Python 3.10 and the image's pandas/numpy
  for the scikit-learn 1.4-2 image, not the development venv;
- the environment is the image's ENV plus the job's `Environment`, nothing from the host: no
  PYTHONPATH (a job that imports its own package ships it as an input and sets PYTHONPATH in
  `Environment`), no AWS credentials or endpoint (the container would get the role's
  credentials from its metadata endpoint; when a local server runs, `set_local_endpoint` gives
  the job fake keys for that server only). OPENBLAS_CORETYPE/L2_SIZE pass through: they are
  this machine's CPU workaround, not configuration;
- exit code 0 completes the job and uploads the outputs at its end; any other code fails it
  with the last lines the process wrote; a stop or MaxRuntimeInSeconds terminates the process.
Its output goes to CloudWatch Logs (/aws/sagemaker/ProcessingJobs, `<job>/algo-1`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from localaws import s3
from localaws.sagemaker_images import image_for
from localaws.sagemaker_lifecycle import JobError, JobRun, failure_reason, job_inputs

CONTAINER_DIRS = ("/opt/ml", "/home/model-server", "/root")
_BOUNDARY = r"(?<![^\s=:,])({})(?=/|$|[\s=:,])"
_CONTAINER_PATH = re.compile(_BOUNDARY.format("|".join(CONTAINER_DIRS)))
_UNMOUNTED_PATH = re.compile(_BOUNDARY.format("|".join(CONTAINER_DIRS[1:])))
_BIND = '/bin/mount --bind "$0" /opt/ml && exec "$@"'
_HOST_PASSTHROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_KILL_GRACE = 5.0  # real seconds between SIGTERM and SIGKILL
_endpoint: str | None = None


def set_local_endpoint(url: str | None) -> None:
    """While a local server runs, jobs may call it (fake keys, that endpoint only)."""
    global _endpoint
    _endpoint = url


@functools.cache
def mount_namespace() -> list[str] | None:
    """The command prefix that shows a job its folder at /opt/ml (a private mount namespace,
    as root), or None where the machine does not allow one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", _BIND]
    probe = tempfile.mkdtemp(prefix="localaws-probe-")
    try:
        Path("/opt/ml").mkdir(parents=True, exist_ok=True)
        subprocess.run([*prefix, probe, "/bin/true"], check=True, capture_output=True, timeout=10)
        return prefix
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def in_container(value: str, root: Path, mounted: bool = False) -> str:
    """Container paths (/opt/ml/…, /root, …) in an argument or variable, pointed into `root`
    (all but /opt/ml when the job sees its own /opt/ml through a mount namespace)."""
    pattern = _UNMOUNTED_PATH if mounted else _CONTAINER_PATH
    return pattern.sub(lambda m: str(root) + m.group(1), value)


def download_prefix(account: str, uri: str, target: Path) -> int:
    """Copy every object under an S3 prefix (or the one object) into a folder."""
    objects = job_inputs(account, uri)
    _, prefix = s3.split_uri(uri)
    for name, body in objects:
        destination = target / (name[len(prefix) :].lstrip("/") or Path(name).name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(body)
    return len(objects)


def upload_folder(account: str, folder: Path, uri: str) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        key = f"{uri.rstrip('/')}/{path.relative_to(folder).as_posix()}"
        s3.put(account, key, path.read_bytes())
    return len(files)


def _local(container_path: str, root: Path) -> Path:
    return root / container_path.lstrip("/")


def _prepare(request: dict, arn: str, account: str, root: Path) -> list[tuple[Path, str]]:
    """Inputs downloaded, output folders and config files made; (folder, S3 URI) per output."""
    for item in request.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source is None:
            raise JobError(f"ClientError: localaws reads S3Input only ({item.get('InputName')})")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise JobError(f"ClientError: localaws reads S3Prefix inputs only, not {source}")
        download_prefix(account, source["S3Uri"], _local(source["LocalPath"], root))
    outputs = []
    for item in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        target = item["S3Output"]
        folder = _local(target["LocalPath"], root)
        folder.mkdir(parents=True, exist_ok=True)
        outputs.append((folder, target["S3Uri"]))
    for container_dir in CONTAINER_DIRS:
        _local(container_dir, root).mkdir(parents=True, exist_ok=True)
    _local("/home/model-server/tmp", root).mkdir(parents=True, exist_ok=True)
    config = _local("/opt/ml/config", root)
    config.mkdir(parents=True, exist_ok=True)
    job_config = {**request, "ProcessingJobArn": arn}
    (config / "processingjobconfig.json").write_text(json.dumps(job_config, default=str))
    hosts = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    (config / "resourceconfig.json").write_text(json.dumps(hosts))
    return outputs


def _environment(image, request: dict, region: str, root: Path, mounted: bool) -> dict[str, str]:
    env = {"PATH": f"{image.prefix / 'bin'}:{_SYSTEM_PATH}", **image.env}
    env.update({k: os.environ[k] for k in _HOST_PASSTHROUGH if k in os.environ})
    if _endpoint is not None:
        env.update(
            AWS_ENDPOINT_URL=_endpoint,
            AWS_ACCESS_KEY_ID="localaws",
            AWS_SECRET_ACCESS_KEY="localaws",  # noqa: S106 - the local server's fake key
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
        )
    env.update(request.get("Environment") or {})
    return {key: in_container(value, root, mounted) for key, value in env.items()}


def _command(image, request: dict, root: Path, namespace: list[str] | None) -> list[str]:
    app = request["AppSpecification"]
    if not app.get("ContainerEntrypoint"):
        raise JobError("ClientError: localaws needs AppSpecification.ContainerEntrypoint")
    command = [*app["ContainerEntrypoint"], *app.get("ContainerArguments", [])]
    command = [in_container(part, root, namespace is not None) for part in command]
    command[0] = image.interpreter(command[0])
    if namespace is not None:
        command = [*namespace, str(_local("/opt/ml", root)), *command]
    return command


def _wait(process: subprocess.Popen, run: JobRun) -> bool:
    """Wait for the process; terminate it (its whole group) when the job is stopped."""
    while process.poll() is None:
        if run.cancelled():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(_KILL_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return False
        time.sleep(0.05)
    return True


def run_processing_job(run: JobRun, request: dict, arn: str, account: str, log) -> None:
    """The job's computation: inputs in, entrypoint run, outputs staged for the job's end."""
    region = arn.split(":")[3]
    root = Path(tempfile.mkdtemp(prefix=f"localaws-{run.name}-"))

    def discard() -> None:
        shutil.rmtree(root, ignore_errors=True)

    try:
        image = image_for(request["AppSpecification"]["ImageUri"])
        outputs = _prepare(request, arn, account, root)
        namespace = mount_namespace()
        command = _command(image, request, root, namespace)
        env = _environment(image, request, region, root, namespace is not None)
        workdir = _local(image.workdir, root)
        app = request["AppSpecification"]
        log(f"$ {shlex.join([*app['ContainerEntrypoint'], *app.get('ContainerArguments', [])])}")
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except Exception as err:  # inputs, entrypoint, image: the job's FailureReason
        reason = f"ClientError: {err}" if isinstance(err, OSError) else failure_reason(err)
        run.finish("Failed", reason, discard=discard)
        return
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    finished = _wait(process, run)
    reader.join(_KILL_GRACE)
    for line in lines:
        log(line.rstrip("\n"))
    if not finished:
        log("localaws: the job was stopped; its process was terminated")
        run.finish("Cancelled", discard=discard)
    elif process.returncode != 0:
        tail = " | ".join(line.strip() for line in lines[-3:] if line.strip())
        reason = f"AlgorithmError: exit code {process.returncode}: {tail}"[:1024]
        run.finish("Failed", reason, discard=discard)
    else:

        def commit() -> None:
            for folder, uri in outputs:
                upload_folder(account, folder, uri)

        run.finish("Completed", commit=commit, discard=discard)

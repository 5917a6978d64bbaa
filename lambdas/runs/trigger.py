"""A config uploaded under the data bucket's `train/` starts a run, when it is valid and no run
is going on.

Event: S3's "Object Created" event as EventBridge delivers it (the rule matches the data bucket
and keys `train/*.json`; other keys are ignored here too). The object is checked against the
config's JSON Schema (`recops/config.schema.json`, exported from the model) and the model itself
(`recops.config.parse_config`, which also holds the rules across fields a schema cannot say).
The machine is the one `recops start` chooses without --workflow (`recops.workflow_choice`):
the Personalize machine when the config's `personalize.enabled` (it starts FM → KNN itself when
`factorization_machines.enabled`), else the FM → KNN machine. Valid, and no execution of that
machine RUNNING: StartExecution, unnamed (its run id is the UUID's last group), with input
`{"configObject": {"bucket", "key"}}`; the plan state reads and checks it again. Valid but a run
of that machine going on: nothing starts (one run at a time, so a burst of uploads cannot start a
burst of billable training); the answer names the running execution and the default event bus
gets `recops upload not started`. A config that enables neither workflow is rejected. Invalid: nothing starts, the message is logged and
sent to the default event bus as `recops config rejected`. No reserved concurrency (new accounts'
concurrency quota of 10 leaves none to reserve): two uploads within the same fraction of a
second can both see no run and both start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import jsonschema
from aws_lambda_powertools import Logger, Tracer
from botocore.config import Config

from recops.config import SCHEMA_FILE, ConfigError, parse_config
from recops.workflow_choice import AUTO, FM_KNN, PERSONALIZE, Machine, WorkflowError, choose

SERVICE = "recops-runs"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
TRAIN_PREFIX = "train/"
CONFIG_SUFFIX = ".json"
EVENT_SOURCE = "recops"
REJECTED = "recops config rejected"
NOT_STARTED = "recops upload not started"
MAX_CONFIG_BYTES = 1024 * 1024  # a config is a few kilobytes; more is not one
MAX_MESSAGE = 8 * 1024  # of the rejection's message in the event (events are at most 256 KB)


class EventNotSentError(RuntimeError):
    """PutEvents did not take the rejection event; Lambda's retries of the async invoke retry."""


@dataclass
class Clients:
    s3: Any
    sfn: Any
    events: Any

    @classmethod
    def default(cls) -> Clients:
        config = Config(retries={"mode": "standard"})
        return cls(*(boto3.client(s, config=config) for s in ("s3", "stepfunctions", "events")))


@dataclass(frozen=True)
class Machines:
    """The stack's two run machines (the trigger's environment names them)."""

    personalize: str
    fm_knn: str

    def arn(self, machine: Machine) -> str:
        return {PERSONALIZE: self.personalize, FM_KNN: self.fm_knn}[machine]

    @classmethod
    def from_environment(cls) -> Machines:
        return cls(
            os.environ["PERSONALIZE_STATE_MACHINE_ARN"], os.environ["FM_KNN_STATE_MACHINE_ARN"]
        )


def on_upload(
    event: dict,
    *,
    machines: Machines,
    clients: Clients,
    stack_prefix: str | None = None,
) -> dict[str, Any]:
    """Start a run for a valid uploaded config; what was done, and why."""
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name", "")
    key = (detail.get("object") or {}).get("key", "")
    version = (detail.get("object") or {}).get("version-id")
    if not (key.startswith(TRAIN_PREFIX) and key.endswith(CONFIG_SUFFIX)):
        return {"started": False, "ignored": f"s3://{bucket}/{key} is not a train/*.json config"}
    body = read_config(clients.s3, bucket, key, version)
    source = f"s3://{bucket}/{key}"
    problem = config_problem(body, source, stack_prefix) or nothing_to_run(body, source)
    if problem is not None:
        logger.warning("config rejected", extra={"bucket": bucket, "key": key, "reason": problem})
        send_event(clients.events, REJECTED, bucket, key, problem)
        return {"started": False, "rejected": problem}
    state_machine_arn = machines.arn(chosen_machine(body, source))
    running = running_execution(clients.sfn, state_machine_arn)
    if running is not None:
        logger.info("a run is going on; nothing started", extra={"running": running, "key": key})
        message = f"a run is going on ({running}); upload the config again when it has ended"
        send_event(clients.events, NOT_STARTED, bucket, key, message)
        return {"started": False, "running": running}
    started = clients.sfn.start_execution(
        stateMachineArn=state_machine_arn,
        input=json.dumps({"configObject": {"bucket": bucket, "key": key}}),
    )
    logger.info("run started", extra={"execution": started["executionArn"], "key": key})
    return {"started": True, "executionArn": started["executionArn"]}


def read_config(s3: Any, bucket: str, key: str, version: str | None = None) -> bytes | str:
    """The object's bytes, or the reason it is not a config (too large)."""
    params = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
    response = s3.get_object(**params)
    if response["ContentLength"] > MAX_CONFIG_BYTES:
        response["Body"].close()
        return f"{response['ContentLength']:,} bytes, more than a config's {MAX_CONFIG_BYTES:,}"
    return response["Body"].read()


def config_problem(body: bytes | str, source: str, stack_prefix: str | None = None) -> str | None:
    """Why the uploaded object is not a valid config of this stack, in the model's words, or
    None. stack_prefix: the stack's prefix, when known (the plan refuses another stack's too)."""
    if isinstance(body, str):
        return f"{source}: not a config: {body}"
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{source}: not valid JSON: {err}"
    try:
        config = parse_config(raw, source=source)
    except ConfigError as err:
        return str(err)  # the model's message names every field and the fix
    schema_errors = sorted(config_schema().iter_errors(raw), key=lambda e: list(e.absolute_path))
    if schema_errors:  # the model accepts what its exported schema refuses: a stale schema file
        lines = [
            f"  - {'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message[:300]}"
            for e in schema_errors
        ]
        return f"{source}: does not match recops/config.schema.json:\n" + "\n".join(lines)
    if stack_prefix is not None and config.prefix != stack_prefix:
        return (
            f"{source}: prefix {config.prefix!r} is not this stack's ({stack_prefix!r}); a config "
            f"runs only in the stack it names: set prefix to {stack_prefix!r}, or upload the "
            "config to that stack's data bucket"
        )
    return None


def nothing_to_run(body: bytes | str, source: str) -> str | None:
    """Why a valid config starts no machine (it enables no workflow), or None."""
    try:
        chosen_machine(body, source)
    except WorkflowError as err:
        return str(err)
    return None


def chosen_machine(body: bytes | str, source: str) -> Machine:
    """The machine `recops start` starts for this valid config (no --workflow)."""
    return choose(json.loads(body), AUTO, source).machine


@cache
def config_schema() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def running_execution(sfn: Any, state_machine_arn: str) -> str | None:
    """The ARN of an execution of the machine that is RUNNING, or None."""
    found = sfn.list_executions(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=1
    )["executions"]
    return found[0]["executionArn"] if found else None


def send_event(events: Any, detail_type: str, bucket: str, key: str, message: str) -> None:
    detail = {"bucket": bucket, "key": key, "message": message[:MAX_MESSAGE]}
    answer = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": "default",
            }
        ]
    )
    if answer.get("FailedEntryCount"):
        raise EventNotSentError(f"PutEvents refused the {detail_type!r} event: {answer['Entries']}")


_clients: list[Clients] = []  # created on first use, reused while the environment is warm


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: Any) -> dict[str, Any]:
    if not _clients:
        _clients.append(Clients.default())
    return on_upload(
        event,
        machines=Machines.from_environment(),
        clients=_clients[0],
        stack_prefix=os.environ.get("STACK_PREFIX") or None,
    )

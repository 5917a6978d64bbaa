"""The deployed stack and its runs as the `recops` command reads them (it never imports infra/).

Everything here takes boto3 clients, so the CLI works against any account the session reaches:
a real one, the local server (`AWS_ENDPOINT_URL`), or an in-process `LocalAccount()`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from recops import names

# The stack's outputs the CLI reads (infra/stack.py declares them).
PERSONALIZE_MACHINE = "PersonalizeStateMachineArn"
FM_KNN_MACHINE = "FmKnnStateMachineArn"
MACHINES = {"personalize": PERSONALIZE_MACHINE, "fm-knn": FM_KNN_MACHINE}  # by workflow_choice
ARTIFACTS = "ArtifactsBucketName"
DATA = "DataBucketName"
CHILD_MARK = "-fm"  # a child execution's name ends so (infra/workflows/personalize_start.py)


class NotFoundError(Exception):
    """A stack, execution or output the command needs does not exist; the message says why."""


def read_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs (DescribeStacks): the one place the CLI learns about the deployment."""
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as err:
        if "does not exist" not in str(err):
            raise
        raise NotFoundError(
            f"stack {stack!r} does not exist in this account and region: deploy it "
            "(npx cdk deploy -c config=FILE), or name another with --stack or --config"
        ) from None
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def output(outputs: dict[str, str], key: str, stack: str) -> str:
    if key not in outputs:
        raise NotFoundError(
            f"stack {stack!r} has no output {key}: it was deployed by an older recops; "
            "deploy it again (npx cdk deploy)"
        )
    return outputs[key]


def console_link(region: str, execution_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


# --- executions ---------------------------------------------------------------------------------


def find_execution(sfn: Any, machine_arns: Sequence[str], ref: str | None) -> dict[str, Any]:
    """DescribeExecution of `ref` (an ARN, an execution name or a run id) among the executions
    of the machines, or of the newest run; an FM → KNN execution a Personalize run started
    (its child) is found by its ARN or name, never as the newest run nor by the run id."""
    if ref and ref.startswith("arn:"):
        try:
            return sfn.describe_execution(executionArn=ref)
        except sfn.exceptions.ExecutionDoesNotExist:
            raise NotFoundError(f"no execution {ref}") from None
    where = " or ".join(machine_arns)
    if ref is None:
        found = [run for arn in machine_arns if (run := _newest_run(sfn, arn)) is not None]
        if not found:
            raise NotFoundError(f"{where} has no executions yet: start one with `recops start`")
        latest = max(found, key=lambda e: e["startDate"])
        return sfn.describe_execution(executionArn=latest["executionArn"])
    for arn in machine_arns:
        for summary in _executions(sfn, arn):
            name = summary["name"]
            if ref == name or (not is_child(name) and ref == _run_or_none(name)):
                return sfn.describe_execution(executionArn=summary["executionArn"])
    raise NotFoundError(f"no execution named {ref!r} (or with that run id) of {where}")


def _pages(sfn: Any, machine_arn: str) -> Iterator[list[dict[str, Any]]]:
    """ListExecutions of the machine, page by page (newest first)."""
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn):
        yield page["executions"]


def _executions(sfn: Any, machine_arn: str) -> Iterator[dict[str, Any]]:
    for page in _pages(sfn, machine_arn):
        yield from page


def _newest_run(sfn: Any, machine_arn: str) -> dict[str, Any] | None:
    """The machine's newest execution that is a run of its own (not a Personalize run's child):
    from the first page that holds one (pages list the newest first)."""
    for page in _pages(sfn, machine_arn):
        runs = [e for e in page if not is_child(e["name"])]
        if runs:
            return max(runs, key=lambda e: e["startDate"])
    return None


def is_child(name: str) -> bool:
    """An FM → KNN execution a Personalize run started: its name is the parent's run id, `-<n>`
    after the parent's n-th redrive, then `-fm`."""
    return _child_name(f"[a-z0-9]{{{names.RUN_ID_LENGTH}}}").match(name) is not None


def _child_name(run_pattern: str) -> re.Pattern[str]:
    return re.compile(rf"^{run_pattern}(?:-\d+)?{re.escape(CHILD_MARK)}")


def child_execution(sfn: Any, fm_machine_arn: str, run: str) -> dict[str, Any] | None:
    """DescribeExecution of the newest FM → KNN execution run `run` started, or None."""
    of_run = _child_name(re.escape(run))
    for page in _pages(sfn, fm_machine_arn):
        children = [e for e in page if of_run.match(e["name"])]
        if children:
            newest = max(children, key=lambda e: e["startDate"])
            return sfn.describe_execution(executionArn=newest["executionArn"])
    return None


def _run_or_none(name: str) -> str | None:
    try:
        return names.run_id(name)
    except ValueError:
        return None


def run_of(execution: dict[str, Any]) -> str:
    """The run id: the parent's (`parentRun.runId` of a child's input), else the name's end."""
    try:
        parent = json.loads(execution.get("input") or "{}").get("parentRun")
    except (ValueError, AttributeError):
        parent = None
    if isinstance(parent, dict) and parent.get("runId"):
        return str(parent["runId"])
    return names.run_id(execution["name"])


def deployed_config(sfn: Any, machine_arn: str) -> dict[str, Any] | None:
    """The stack's config as the machine's plan state passes it (`deployedConfig` in the
    definition: a deployment carries its config there and nowhere else), or None."""
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine_arn)["definition"])
    return config_in(definition)


def config_in(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The `deployedConfig` object of a state machine definition, or None."""
    return _member(definition, "deployedConfig")


def _member(value: Any, key: str) -> Any:
    """The first `key` member found in nested dicts and lists, depth first; None if none."""
    if isinstance(value, dict):
        if isinstance(value.get(key), dict):
            return value[key]
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return None
    for child in children:
        found = _member(child, key)
        if found is not None:
            return found
    return None


def new_events(sfn: Any, execution_arn: str, after_id: int = 0) -> list[dict[str, Any]]:
    """History events with an id above `after_id`, oldest first (pages newest-first, stops early)."""
    found = []
    paginator = sfn.get_paginator("get_execution_history")
    pages = paginator.paginate(
        executionArn=execution_arn, reverseOrder=True, PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for event in page["events"]:
            if event["id"] <= after_id:
                return found[::-1]
            found.append(event)
    return found[::-1]


def details(event: dict[str, Any]) -> dict[str, Any]:
    """An event's `…EventDetails` member, whatever its type (one per type in the API model)."""
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


@dataclass
class Progress:
    """Which states an execution entered and left, from its history events."""

    started: datetime
    entered: Counter = field(default_factory=Counter)
    exited: Counter = field(default_factory=Counter)

    def feed(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """(kind, text) for an event worth showing: entered, exited, failed; else None."""
        kind, detail = event["type"], details(event)
        elapsed = elapsed_text(event["timestamp"] - self.started)
        # Work and waiting (Task, Map, Wait states) is shown once per state, however often a
        # poll repeats it; Pass and Choice states are the machine's bookkeeping.
        shown = kind.startswith(("Task", "Map", "Wait"))
        if kind.endswith("StateEntered"):
            self.entered[detail["name"]] += 1
            if shown and self.entered[detail["name"]] == 1:
                return "entered", f"{elapsed}  > {detail['name']}"
            return None
        if kind.endswith("StateExited"):
            self.exited[detail["name"]] += 1
            if shown and self.exited[detail["name"]] == 1:
                return "exited", f"{elapsed}  ok {detail['name']}"
            return None
        if kind.endswith(("Failed", "TimedOut", "Aborted")):
            parts = (detail.get("error"), readable_cause(str(detail.get("cause") or "")))
            reason = ": ".join(part for part in parts if part)
            return "failed", f"{elapsed}  !! {kind}{': ' + shorten(reason) if reason else ''}"
        return None

    def running(self) -> list[str]:
        """States entered and not yet left (a Map's iterations count once per name)."""
        return [name for name in self.entered if self.entered[name] > self.exited[name]]


def readable_cause(cause: str) -> str:
    """A Lambda error's cause reads as its message: `<prefix>{"errorMessage": m, ...}` becomes
    `<prefix>m` (the stack trace stays in the execution's history); any other cause as it is."""
    start = cause.find('{"errorMessage"')
    if start < 0:
        return cause
    try:
        error = json.loads(cause[start:])
    except ValueError:
        return cause
    return cause[:start] + str(error["errorMessage"])


def elapsed_text(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"+{hours}:{rest // 60:02d}:{rest % 60:02d}"


def shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def follow(
    sfn: Any,
    execution_arn: str,
    on_event: Callable[[dict[str, Any]], None],
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Feed every history event to `on_event` as it happens; the final DescribeExecution."""
    last = 0
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        for event in new_events(sfn, execution_arn, last):
            on_event(event)
            last = event["id"]
        if described["status"] != "RUNNING":
            return described
        sleep(poll_seconds)


def progress_of(sfn: Any, execution: dict[str, Any]) -> Progress:
    progress = Progress(execution["startDate"])
    for event in new_events(sfn, execution["executionArn"]):
        progress.feed(event)
    return progress


# --- reports ------------------------------------------------------------------------------------


def metrics_key(run: str) -> str:
    return f"reports/{run}/metrics.json"


def read_metrics(s3: Any, bucket: str, run: str) -> dict[str, Any] | None:
    """The run's metrics.json (written by the evaluation), or None while there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=metrics_key(run))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)

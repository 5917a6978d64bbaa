"""Running a state machine in a row: create it, start it, wait (in real time) for its end."""

from __future__ import annotations

import json
import time
import uuid

ROLE = "arn:aws:iam::123456789012:role/states"


def create(account, definition: dict, **kwargs) -> str:
    """The ARN of a new state machine with this definition."""
    sfn = account.client("stepfunctions")
    return sfn.create_state_machine(
        name=f"m-{uuid.uuid4().hex[:12]}",
        definition=json.dumps(definition),
        roleArn=ROLE,
        **kwargs,
    )["stateMachineArn"]


def finished(account, execution_arn: str, timeout: float = 60) -> dict:
    """DescribeExecution once the execution is no longer RUNNING."""
    sfn = account.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} real seconds")


def run(account, definition: dict, payload: dict | None = None, timeout: float = 60) -> dict:
    """Create, start and wait: the final DescribeExecution."""
    machine = create(account, definition)
    execution = account.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps(payload or {})
    )
    return finished(account, execution["executionArn"], timeout)


def history(account, execution_arn: str) -> list[dict]:
    """Every event of an execution, oldest first."""
    sfn = account.client("stepfunctions")
    events, token = [], None
    while True:
        page = sfn.get_execution_history(
            executionArn=execution_arn, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def task(resource: str, parameters: dict | None = None, **fields) -> dict:
    """A Task state (End unless Next is given)."""
    state = {"Type": "Task", "Resource": resource, **fields}
    if parameters is not None:
        state["Parameters"] = parameters
    if "Next" not in fields:
        state["End"] = True
    return state


def caught(error: str, next_state: str = "Caught") -> list[dict]:
    return [{"ErrorEquals": [error], "Next": next_state}]


def with_catcher(first: dict) -> dict:
    """A machine: `first` as Try, whose catcher goes to a Pass state that ends (present only if
    something goes there: AWS refuses a definition with an unreachable state)."""
    states = {"Try": first}
    if first.get("Catch") or first.get("Next") == "Caught":
        states["Caught"] = {"Type": "Pass", "End": True}
    return {"StartAt": "Try", "States": states}

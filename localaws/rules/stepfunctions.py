"""Step Functions: a definition AWS refuses at CreateStateMachine / UpdateStateMachine.

moto parses the definition's grammar only, so a dangling StartAt, a Next to a state that does
not exist, a state nothing reaches or an `aws-sdk` action the service does not have is accepted
and fails (or silently does nothing) at run time. Here the structural checks AWS makes before
accepting a definition are a Python walk of the states (fast, in-process, and able to ask
botocore's model whether an `aws-sdk` action exists; the npm asl-validator would need a Node
process per call, ~0.4 s, and has no list of SDK actions), with AWS's diagnostics:

    Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: X at /StartAt'
"""

from __future__ import annotations

import functools
import json
import re

import botocore.session

from localaws.rules import Rule
from localaws.validation import Request, RequestRefusedError

DOC = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html"
STATES_DOC = "https://states-language.net/spec.html#toplevelfields"
SDK_DOC = "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html"
# Where a state names the state that follows it: (member, is it a list of objects with Next).
TRANSITIONS = (("Next", False), ("Default", False), ("Choices", True), ("Catch", True))
TERMINAL_TYPES = ("Succeed", "Fail")
# Step Functions names an SDK service by its SDK v2 id; botocore's names differ for a few.
SDK_SERVICE_NAMES = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs"}
SDK_RESOURCE = re.compile(r"arn:aws[a-z-]*:states:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)(\.\w+)?")
UNRECOGNISED = (
    "SCHEMA_VALIDATION_FAILED: The resource provided {arn} is not recognized. The value is not a "
    "valid resource ARN, or the resource is not available in this region. at {where}"
)


@functools.cache
def _botocore_names() -> dict[str, str]:
    names = botocore.session.get_session().get_available_services()
    return {name.replace("-", ""): name for name in names}


@functools.cache
def sdk_action_exists(service: str, action: str) -> bool:
    name = SDK_SERVICE_NAMES.get(service) or _botocore_names().get(service)
    if name is None:
        return False
    model = botocore.session.get_session().get_service_model(name)
    return action[:1].upper() + action[1:] in model.operation_names


def _targets(state: dict, where: str) -> list[tuple[str, str]]:
    """(target state, where it is named) for every transition out of a state."""
    found = []
    for member, listed in TRANSITIONS:
        if listed:
            for index, item in enumerate(state.get(member) or []):
                if isinstance(item, dict) and "Next" in item:
                    found.append((item["Next"], f"{where}/{member}[{index}]/Next"))
        elif isinstance(state.get(member), str):
            found.append((state[member], f"{where}/{member}"))
    return found


def _machine(machine: dict, path: str) -> list[str]:
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        return [f"SCHEMA_VALIDATION_FAILED: These fields are required: [States] at {path or '/'}"]
    problems = []
    start = machine.get("StartAt")
    if start not in states:
        problems.append(
            f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {start} at {path}/StartAt"
        )
    edges: dict[str, list[str]] = {}
    for name, state in states.items():
        where = f"{path}/States/{name}"
        if not isinstance(state, dict):
            continue
        edges[name] = []
        for target, named_at in _targets(state, where):
            edges[name].append(target)
            if target not in states:
                problems.append(
                    f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {target} at {named_at}"
                )
        match = SDK_RESOURCE.fullmatch(str(state.get("Resource", "")))
        if match and not sdk_action_exists(match.group(1), match.group(2)):
            problems.append(UNRECOGNISED.format(arn=state["Resource"], where=f"{where}/Resource"))
        for index, branch in enumerate(state.get("Branches") or []):
            problems += _machine(branch, f"{where}/Branches[{index}]")
        for member in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(member), dict):
                problems += _machine(state[member], f"{where}/{member}")
    if not any(
        isinstance(s, dict) and (s.get("Type") in TERMINAL_TYPES or s.get("End") is True)
        for s in states.values()
    ):
        problems.append("MISSING_END_STATE: Workflow has no terminal state")
    reached, queue = set(), [start] if start in states else []
    while queue:
        name = queue.pop()
        if name not in reached:
            reached.add(name)
            queue += [t for t in edges.get(name, []) if t in states]
    problems += [
        f'MISSING_TRANSITION_TARGET: State "{name}" is not reachable. at {path}/States/{name}'
        for name in states
        if start in states and name not in reached
    ]
    return problems


def definition_problems(definition: str) -> list[str]:
    try:
        machine = json.loads(definition)
    except ValueError as err:
        return [f"INVALID_JSON_DESCRIPTION: {err}"]
    if not isinstance(machine, dict):
        return ["SCHEMA_VALIDATION_FAILED: The definition must be a JSON object at /"]
    return _machine(machine, "")


def _check_definition(request: Request, params: dict) -> None:
    if params.get("definition") is None:
        return
    problems = definition_problems(params["definition"])
    if problems:
        raise RequestRefusedError(
            "InvalidDefinition", f"Invalid State Machine Definition: '{', '.join(problems)}'"
        )


RULES = [
    Rule(
        (("stepfunctions", "CreateStateMachine"), ("stepfunctions", "UpdateStateMachine")),
        DOC,
        _check_definition,
    )
]

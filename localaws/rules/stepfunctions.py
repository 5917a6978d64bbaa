"""Step Functions: a definition AWS refuses at CreateStateMachine / UpdateStateMachine.

moto parses the definition's grammar only, so a dangling StartAt, a Next to a state that does
not exist, a state nothing reaches or an `aws-sdk` action the service does not have is accepted
and fails (or silently does nothing) at run time. Here the structural checks AWS makes before
accepting a definition are a Python walk of the states (fast, in-process, and able to ask
botocore's model whether an `aws-sdk` action exists; the npm asl-validator would need a Node
process per call, ~0.4 s, and has no list of SDK actions), with AWS's diagnostics:

    Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: X at /StartAt'

A Task's request (`Parameters`, JSONata `Arguments`) for a service integration is checked too:
moto accepted any top-level field, where AWS refuses one the API does not have (aws-cdk issue
#10014 quotes it for `sagemaker:createTrainingJob`):

    SCHEMA_VALIDATION_FAILED: The field "X" is not supported by Step Functions at /States/T/Parameters

The fields are the botocore input members of the integration's action, first letter upper-cased
(https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html: "Parameters
in Step Functions are expressed in PascalCase, even if the native service API is in camelCase"),
for `aws-sdk:` and optimized integrations alike; an optimized one botocore has no action for
(`http:invoke`, `eks:call`) is not judged. Nested fields are not checked (yet).
"""

from __future__ import annotations

import functools
import json
import re

import botocore.session
from botocore.model import OperationModel

from localaws.rules import Rule
from localaws.sfn_services import boto_service_name, is_botocore_service
from localaws.validation import Request, RequestRefusedError

DOC = "https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html"
STATES_DOC = "https://states-language.net/spec.html#toplevelfields"
SDK_DOC = "https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html"
# Where a state names the state that follows it: (member, is it a list of objects with Next).
TRANSITIONS = (("Next", False), ("Default", False), ("Choices", True), ("Catch", True))
TERMINAL_TYPES = ("Succeed", "Fail")
# arn:aws:states:::[aws-sdk:]<service>:<action>[.sync|.sync:2|.waitForTaskToken]
INTEGRATION = re.compile(
    r"arn:aws[a-z-]*:states:::(?P<sdk>aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.[A-Za-z0-9:]+)?"
)
UNRECOGNISED = (
    "SCHEMA_VALIDATION_FAILED: The resource provided {arn} is not recognized. The value is not a "
    "valid resource ARN, or the resource is not available in this region. at {where}"
)
UNSUPPORTED_FIELD = (
    'SCHEMA_VALIDATION_FAILED: The field "{field}" is not supported by Step Functions at {where}'
)
# The members of a Task that become the integration's request (JSONPath, JSONata).
REQUEST_MEMBERS = ("Parameters", "Arguments")


@functools.cache
def integration_operation(service: str, action: str) -> OperationModel | None:
    """The botocore operation a Step Functions integration calls, if botocore has it."""
    name = boto_service_name(service)
    if not is_botocore_service(name):
        return None
    model = botocore.session.get_session().get_service_model(name)
    operation = action[:1].upper() + action[1:]
    return model.operation_model(operation) if operation in model.operation_names else None


def sdk_action_exists(service: str, action: str) -> bool:
    return integration_operation(service, action) is not None


@functools.cache
def _request_fields(operation: OperationModel) -> frozenset[str]:
    """The names a Task may give its request: the input members, first letter upper-cased
    (Step Functions writes every parameter in PascalCase, even for camelCase APIs)."""
    members = operation.input_shape.members if operation.input_shape is not None else {}
    return frozenset(name[:1].upper() + name[1:] for name in members)


def _integration_problems(state: dict, where: str) -> list[str]:
    """An aws-sdk action the service lacks; request fields the integration's API does not have."""
    resource = str(state.get("Resource", ""))
    match = INTEGRATION.fullmatch(resource)
    if match is None:
        return []
    operation = integration_operation(match["service"], match["action"])
    if operation is None:
        # An optimized integration botocore cannot name (http:invoke, eks:call) is not judged.
        return (
            [UNRECOGNISED.format(arn=resource, where=f"{where}/Resource")] if match["sdk"] else []
        )
    allowed, problems = _request_fields(operation), []
    for member in REQUEST_MEMBERS:
        request = state.get(member)
        if not isinstance(request, dict):
            continue  # absent, or a JSONata expression computed at run time
        for key in request:
            field = key.removesuffix(".$")
            if field not in allowed:
                problems.append(UNSUPPORTED_FIELD.format(field=field, where=f"{where}/{member}"))
    return problems


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
        problems += _integration_problems(state, where)
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


def invalid_definition(definition: str) -> RequestRefusedError | None:
    """The InvalidDefinition error AWS answers for this definition, or None if it is accepted
    (also used for AWS::StepFunctions::StateMachine, whose handler makes the same call)."""
    problems = definition_problems(definition)
    if not problems:
        return None
    return RequestRefusedError(
        "InvalidDefinition", f"Invalid State Machine Definition: '{', '.join(problems)}'"
    )


def _check_definition(request: Request, params: dict) -> None:
    if params.get("definition") is None:
        return
    failure = invalid_definition(params["definition"])
    if failure is not None:
        raise failure


RULES = [
    Rule(
        (("stepfunctions", "CreateStateMachine"), ("stepfunctions", "UpdateStateMachine")),
        DOC,
        _check_definition,
    )
]

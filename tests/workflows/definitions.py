"""The state machines a synthesized template holds, as dicts: CloudFormation references inside
the definition string become placeholders such as `<Ref:Bucket>` (they only ever sit in strings)."""

from __future__ import annotations

import json
from collections.abc import Iterator


def rendered(part, placeholder: str | None = None) -> str:
    """A CloudFormation string value as text: `Fn::Join`s joined, every other intrinsic shown as
    `<Ref:...>`-style text, or as `placeholder` when given (e.g. one without colons, for a value
    read as an ARN)."""
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and "Fn::Join" in part:
        separator, parts = part["Fn::Join"]
        return separator.join(rendered(p, placeholder) for p in parts)
    if placeholder is not None or not isinstance(part, dict):
        return placeholder or str(part)
    return _text(part)


def _text(part) -> str:
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<Ref:{part['Ref']}>"
    if "Fn::GetAtt" in part:
        return "<GetAtt:{}.{}>".format(*part["Fn::GetAtt"])
    if "Fn::FindInMap" in part:
        return "<FindInMap:{}>".format(".".join(_text(p) for p in part["Fn::FindInMap"]))
    if "Fn::Join" in part:
        separator, parts = part["Fn::Join"]
        return separator.join(_text(p) for p in parts)
    return f"<{next(iter(part))}>"


def machines(template: dict) -> dict[str, dict]:
    """{logical id: definition} for every AWS::StepFunctions::StateMachine."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            found[logical_id] = json.loads(_text(resource["Properties"]["DefinitionString"]))
    return found


def states(definition: dict) -> Iterator[tuple[str, dict]]:
    """(name, state) for every state, inside Map and Parallel branches too."""
    for name, state in definition["States"].items():
        yield name, state
        if "ItemProcessor" in state:
            yield from states(state["ItemProcessor"])
        for branch in state.get("Branches", []):
            yield from states(branch)


def jsonata_expressions(value) -> Iterator[str]:
    """Every JSONata expression (`{% ... %}`) anywhere in a definition."""
    if isinstance(value, dict):
        for item in value.values():
            yield from jsonata_expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from jsonata_expressions(item)
    elif isinstance(value, str) and value.startswith("{%") and value.endswith("%}"):
        yield value[2:-2].strip()

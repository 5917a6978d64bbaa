"""Schemas: Avro records checked here before the service sees them, so a bad schema fails with a
message naming the field instead of a generic InvalidInputException after the dataset group exists.

Schemas are immutable and have no status (the step answers ACTIVE); their name carries a hash of
their content (recops/contracts.py), so a changed schema is a new schema. `params.schema` may be
the Avro record as a dict or as JSON text; `params.domain` (ECOMMERCE, VIDEO_ON_DEMAND) for domain
dataset groups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .core import Family, InvalidStepInputError, json_text
from .core import ensure as _ensure

FAMILY = Family(
    "Schema", arn_kind="schema", normalisers={"schema": json_text}, compare_absent=("domain",)
)
# https://docs.aws.amazon.com/personalize/latest/dg/how-it-works-dataset-schema.html
FIELD_TYPES = frozenset({"string", "int", "long", "float", "double", "boolean", "null"})
AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InvalidSchemaError(InvalidStepInputError):
    """The schema is not an Avro record Personalize can read."""


def ensure(client: Any, event: Mapping[str, Any], arn_prefix: str | None = None) -> dict:
    params = dict(event.get("params") or {})
    record = json_text(params.get("schema"))
    problems = schema_problems(record)
    if problems:
        raise InvalidSchemaError(f"schema {event.get('name')}: " + "; ".join(problems))
    params["schema"] = json.dumps(record, separators=(",", ":"))
    return _ensure(client, FAMILY, {**event, "params": params}, arn_prefix)


def schema_problems(record: Any) -> list[str]:
    """Why Personalize would refuse this Avro record; empty when it would not."""
    if not isinstance(record, dict) or record.get("type") != "record":
        return [
            'the schema must be an Avro record: {"type": "record", "name": ..., "fields": [...]}'
        ]
    problems = []
    if not AVRO_NAME.fullmatch(str(record.get("name", ""))):
        problems.append("the record needs a name of letters, digits and underscores")
    fields = record.get("fields")
    if not isinstance(fields, list) or not fields:
        return [*problems, "the record needs a non-empty list of fields"]
    seen: set[str] = set()
    for index, spec in enumerate(fields):
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or not AVRO_NAME.fullmatch(name):
            problems.append(f"field {index} needs a name of letters, digits and underscores")
            continue
        if name in seen:
            problems.append(f"field {name} is declared twice")
        seen.add(name)
        types = spec.get("type")
        types = types if isinstance(types, list) else [types]
        if any(t not in FIELD_TYPES for t in types) or set(types) == {"null"}:
            problems.append(
                f"field {name} has type {spec.get('type')!r}; Personalize reads "
                f"{sorted(FIELD_TYPES - {'null'})}, optionally in a union with null"
            )
    return problems

"""Personalize rules the service model does not carry: schema content, datasets, recipes."""

from __future__ import annotations

import json
import re

from localaws.rules import Rule
from localaws.validation import Request, RequestRefusedError

INVALID = "InvalidInputException"

# --- schema content -----------------------------------------------------------------------------
SCHEMA_DOC = "https://docs.aws.amazon.com/personalize/latest/dg/how-it-works-dataset-schema.html"
# "Schema data types": the Avro types Personalize accepts for a field (with "null" in a union).
FIELD_TYPES = {"float", "double", "int", "long", "string", "boolean", "null"}
AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# --- required fields, by dataset type (custom dataset groups) -----------------------------------
REQUIRED_FIELDS_DOC = (
    "https://docs.aws.amazon.com/personalize/latest/dg/custom-datasets-and-schemas.html"
)
REQUIRED_FIELDS = {
    # https://docs.aws.amazon.com/personalize/latest/dg/interactions-dataset-requirements.html
    "INTERACTIONS": {"USER_ID": "string", "ITEM_ID": "string", "TIMESTAMP": "long"},
    # https://docs.aws.amazon.com/personalize/latest/dg/users-dataset-requirements.html
    "USERS": {"USER_ID": "string"},
    # https://docs.aws.amazon.com/personalize/latest/dg/items-datasets-requirements.html
    "ITEMS": {"ITEM_ID": "string"},
    # https://docs.aws.amazon.com/personalize/latest/dg/actions-datasets-requirements.html
    "ACTIONS": {"ACTION_ID": "string"},
    # https://docs.aws.amazon.com/personalize/latest/dg/action-interactions-dataset-requirements.html
    "ACTION_INTERACTIONS": {
        "USER_ID": "string",
        "ACTION_ID": "string",
        "TIMESTAMP": "long",
        "EVENT_TYPE": "string",
    },
}

# --- one dataset of each type per dataset group -------------------------------------------------
ONE_PER_TYPE_DOC = "https://docs.aws.amazon.com/personalize/latest/dg/API_CreateDataset.html"

# --- retired recipes ----------------------------------------------------------------------------
RETIRED_RECIPES_DOC = (
    "https://docs.aws.amazon.com/personalize/latest/dg/legacy-user-personalization-recipes.html"
)
RETIRED_RECIPES = {
    "aws-hrnn": "aws-user-personalization-v2",
    "aws-hrnn-metadata": "aws-user-personalization-v2",
    "aws-hrnn-coldstart": "aws-user-personalization-v2",
}


def schema_problems(text: str) -> list[str]:
    """What makes a schema JSON unusable: not an Avro record, or fields Personalize cannot read."""
    try:
        schema = json.loads(text)
    except ValueError as err:
        return [f"not valid JSON ({err})"]
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return ['the top level must be an Avro record ("type": "record")']
    problems = []
    if not isinstance(schema.get("name"), str) or not AVRO_NAME.fullmatch(schema["name"]):
        problems.append("the record needs a name of letters, digits and underscores")
    fields = schema.get("fields")
    if not isinstance(fields, list) or not fields:
        return [*problems, "the record needs a non-empty list of fields"]
    seen = set()
    for index, field in enumerate(fields):
        name = field.get("name") if isinstance(field, dict) else None
        if not isinstance(name, str) or not AVRO_NAME.fullmatch(name):
            problems.append(f"field {index} needs a name of letters, digits and underscores")
            continue
        if name in seen:
            problems.append(f"field {name} is declared twice")
        seen.add(name)
        types = field.get("type")
        types = types if isinstance(types, list) else [types]
        bad = [t for t in types if t not in FIELD_TYPES]
        if bad or types == ["null"]:
            problems.append(
                f"field {name} has type {field.get('type')!r}; allowed: {sorted(FIELD_TYPES)}"
            )
    return problems


def _check_schema(request: Request, params: dict) -> None:
    problems = schema_problems(params["schema"])
    if problems:
        raise RequestRefusedError(INVALID, "Invalid schema: " + "; ".join(problems))


def _field_types(schema: dict) -> dict[str, set[str]]:
    return {
        f["name"]: set(f["type"] if isinstance(f["type"], list) else [f["type"]])
        for f in schema.get("fields", [])
    }


def _check_dataset(request: Request, params: dict) -> None:
    from localaws.personalize import backend_for
    from localaws.personalize.backend import PersonalizeError

    backend = backend_for(request.account, request.region)
    kind = params["datasetType"].upper()
    for existing in backend.list("dataset", params["datasetGroupArn"]):
        if existing.fields["datasetType"].upper() == kind:
            raise RequestRefusedError(
                "ResourceAlreadyExistsException",
                f"Dataset group {params['datasetGroupArn']} already has a dataset of type "
                f"{params['datasetType']}: {existing.arn}. A dataset group holds one dataset "
                "of each type.",
            )
    try:
        schema = json.loads(backend.get(params["schemaArn"], "schema").fields["schema"])
    except PersonalizeError:
        return  # the backend reports the missing schema
    types = _field_types(schema)
    for name, wanted in REQUIRED_FIELDS.get(kind, {}).items():
        if name not in types:
            raise RequestRefusedError(
                INVALID,
                f"The schema of a {params['datasetType']} dataset must have a {name} field "
                f"of type {wanted}.",
            )
        if types[name] != {wanted}:
            raise RequestRefusedError(
                INVALID,
                f"Field {name} of a {params['datasetType']} dataset must be of type {wanted} "
                f"(not nullable); the schema has {sorted(types[name])}.",
            )


def _check_recipe(request: Request, params: dict) -> None:
    recipe = (params.get("recipeArn") or "").rsplit("/", 1)[-1]
    if recipe in RETIRED_RECIPES:
        raise RequestRefusedError(
            INVALID,
            f"Recipe {params['recipeArn']} is no longer available; use "
            f"arn:aws:personalize:::recipe/{RETIRED_RECIPES[recipe]}.",
        )


RULES = [
    Rule((("personalize", "CreateSchema"),), SCHEMA_DOC, _check_schema),
    Rule((("personalize", "CreateDataset"),), ONE_PER_TYPE_DOC, _check_dataset),
    Rule((("personalize", "CreateSolution"),), RETIRED_RECIPES_DOC, _check_recipe),
]

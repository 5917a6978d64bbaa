"""Amazon Personalize import files: CSV bodies and the Avro schemas that describe them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from training.csv_writer import write_csv

_AVRO_TYPES = {
    "USER_ID": "string",
    "ITEM_ID": "string",
    "TIMESTAMP": "long",
    "EVENT_TYPE": "string",
    "EVENT_VALUE": "float",
}


def interactions_schema(columns: list[str]) -> dict:
    """Avro schema for the interactions dataset, in the column order of the CSV."""
    return {
        "type": "record",
        "name": "Interactions",
        "namespace": "com.amazonaws.personalize.schema",
        "fields": [{"name": c, "type": _AVRO_TYPES[c]} for c in columns],
        "version": "1.0",
    }


def metadata_schema(
    name: str, id_column: str, categorical: list[str], numerical: list[str]
) -> dict:
    fields = [{"name": id_column, "type": "string"}]
    fields += [{"name": c, "type": ["null", "string"], "categorical": True} for c in categorical]
    fields += [{"name": c, "type": ["null", "float"]} for c in numerical]
    return {
        "type": "record",
        "name": name,
        "namespace": "com.amazonaws.personalize.schema",
        "fields": fields,
        "version": "1.0",
    }


def write_interactions(columns: dict[str, object], directory: Path) -> dict:
    """interactions.csv (training part only) and interactions.schema.json; returns the schema.

    columns: canonical name -> values (csv_writer's forms: an array, or (ids, codes))."""
    names = [c for c in _AVRO_TYPES if c in columns]
    if "TIMESTAMP" not in names:
        raise ValueError("Personalize interactions need a TIMESTAMP column; map one in the config")
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory / "interactions.csv", {c: columns[c] for c in names})
    schema = interactions_schema(names)
    (directory / "interactions.schema.json").write_text(json.dumps(schema, indent=2))
    return schema


def write_metadata(
    frame: pd.DataFrame,
    directory: Path,
    *,
    kind: str,
    id_column: str,
    categorical: list[str],
    numerical: list[str],
) -> int:
    """users.csv or items.csv with its schema; '|' separates multiple categorical values."""
    canonical = "USER_ID" if kind == "users" else "ITEM_ID"
    out = frame[[id_column, *categorical, *numerical]].rename(columns={id_column: canonical})
    out = out.drop_duplicates(subset=canonical, keep="last")
    directory.mkdir(parents=True, exist_ok=True)
    out.to_csv(directory / f"{kind}.csv", index=False)
    schema = metadata_schema(kind.capitalize(), canonical, categorical, numerical)
    (directory / f"{kind}.schema.json").write_text(json.dumps(schema, indent=2))
    return len(out)

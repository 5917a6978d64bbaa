"""Amazon Personalize import files: CSV bodies and the Avro schemas that describe them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from training.csv_writer import write_csv
from training.personalize_schemas import AVRO_TYPES, interactions_schema, metadata_schema


def write_interactions(columns: dict[str, object], directory: Path) -> dict:
    """interactions.csv (training part only) and interactions.schema.json; returns the schema.

    columns: canonical name -> values (csv_writer's forms: an array, or (ids, codes))."""
    names = [c for c in AVRO_TYPES if c in columns]
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

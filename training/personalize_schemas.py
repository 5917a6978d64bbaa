"""The Avro schemas of the Personalize import files, with no numpy or pandas.

Why a module of its own: `recops.contracts` names each schema by a hash of its content, and the
plan Lambda computes the contracts, so the schema builders must import in a Lambda bundle that
has no numpy. `training.personalize_files` (which writes the CSVs with pandas) imports them from
here, so the schema prep writes and the schema the contracts name are one function.
"""

from __future__ import annotations

AVRO_TYPES = {
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
        "fields": [{"name": c, "type": AVRO_TYPES[c]} for c in columns],
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

"""Plan entries and parents for the Personalize step tests, built with the steps themselves and
settled on the local account's clock as the state machine will (describe, wait, describe)."""

from __future__ import annotations

from typing import Any

from bench.datasets import synthetic_interactions
from lambdas.personalize import core, handlers
from localaws import clock

PREFIX = "arn:aws:personalize:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/personalize"
BUCKET = "recops-data"
TAGS = {"recops:stack": "recops-test"}
FIELDS = {
    "INTERACTIONS": [("USER_ID", "string"), ("ITEM_ID", "string"), ("TIMESTAMP", "long")],
    "USERS": [("USER_ID", "string"), ("AGE", "int")],
    "ITEMS": [("ITEM_ID", "string"), ("GENRE", "string")],
}


def avro(kind: str, extra: list[tuple[str, str]] = ()) -> dict:
    fields = [{"name": n, "type": t} for n, t in [*FIELDS[kind], *extra]]
    return {"type": "record", "name": kind.title(), "fields": fields, "version": "1.0"}


def run(step: str, name: str, params: dict | None = None, **parents: str) -> dict:
    """One step as the handler runs it, minus the Lambda: the same function, a fresh client."""
    event = {"name": name, "params": params or {}, "tags": TAGS, **parents}
    return handlers.STEPS[step](core.personalize_client(), event, PREFIX)


def settle(step: str, result: dict, limit: int = 200) -> str:
    """Poll as the state machine will: describe a virtual minute apart until a final status."""
    family = FAMILIES[step]
    client = core.personalize_client()
    for _ in range(limit):
        status = core.describe(client, family, result["arn"]).get("status", "ACTIVE")
        if status in ("ACTIVE", "CREATE FAILED"):
            return status
        clock.advance(60)
    raise AssertionError(f"{result['arn']} never settled")


def interactions_csv(n_interactions: int = 3000) -> bytes:
    frame = synthetic_interactions(
        n_users=120, n_items=80, n_interactions=n_interactions, n_tastes=4, seed=3
    )
    frame = frame.rename(
        columns={"user_id": "USER_ID", "item_id": "ITEM_ID", "timestamp": "TIMESTAMP"}
    )
    return frame[["USER_ID", "ITEM_ID", "TIMESTAMP"]].to_csv(index=False).encode()


def put_data(account: Any, key: str, body: bytes) -> str:
    s3 = account.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def active_group(name: str = "g", **params: Any) -> str:
    group = run("datasetGroup", name, params)
    assert settle("datasetGroup", group) == "ACTIVE"
    return group["arn"]


def group_with_interactions(account: Any, name: str = "g", **params: Any) -> dict[str, str]:
    """An ACTIVE dataset group whose interactions are imported: what a solution version needs."""
    group = active_group(name, **params)
    schema = run("schema", f"{name}-interactions", {"schema": avro("INTERACTIONS")})
    dataset = run(
        "dataset",
        f"{name}-interactions",
        {"datasetType": "INTERACTIONS"},
        datasetGroupArn=group,
        schemaArn=schema["arn"],
    )
    assert settle("dataset", dataset) == "ACTIVE"
    location = put_data(account, f"{name}/interactions.csv", interactions_csv())
    job = run(
        "datasetImportJob",
        f"{name}-import-x1",
        {"dataSource": {"dataLocation": location}, "roleArn": ROLE},
        datasetArn=dataset["arn"],
    )
    assert settle("datasetImportJob", job) == "ACTIVE"
    return {"datasetGroupArn": group, "schemaArn": schema["arn"], "datasetArn": dataset["arn"]}


def active_version(
    group: str, recipe: str = "aws-popularity-count", name: str = "pop"
) -> dict[str, str]:
    solution = run("solution", name, {"recipeArn": recipe}, datasetGroupArn=group)
    assert settle("solution", solution) == "ACTIVE"
    version = run("solutionVersion", f"{name}-x1", solutionArn=solution["arn"])
    assert settle("solutionVersion", version) == "ACTIVE"
    return {"solutionArn": solution["arn"], "solutionVersionArn": version["arn"]}


FAMILIES = handlers.FAMILIES

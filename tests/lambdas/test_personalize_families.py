"""Every Personalize step, in workflow order on one local account: the first run creates, a second
run of the same plan entry creates nothing and returns the same resource."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest

from lambdas.personalize import core, handlers
from localaws import LocalAccount
from tests.lambdas.personalize_world import (
    FAMILIES,
    PREFIX,
    ROLE,
    avro,
    interactions_csv,
    put_data,
    settle,
)


class RecordingClient:
    """The Personalize client, counting the Create calls that reach it."""

    def __init__(self, client) -> None:
        self._client, self.creates = client, Counter()

    def __getattr__(self, name: str):
        if name.startswith("create_"):
            self.creates[name] += 1
        return getattr(self._client, name)


@dataclass
class Chain:
    client: RecordingClient
    results: dict[str, tuple[dict, dict]] = field(default_factory=dict)
    creates: dict[str, int] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def twice(self, step: str, name: str, params: dict | None = None, **parents: str) -> dict:
        """Run the step, then run it again as a re-run of the workflow would."""
        event = {"name": name, "params": params or {}, "tags": {"recops:stack": "t"}, **parents}
        before = sum(self.client.creates.values())
        first = handlers.STEPS[step](self.client, event, PREFIX)
        again = handlers.STEPS[step](self.client, json.loads(json.dumps(event)), PREFIX)
        self.results.setdefault(step, (first, again))
        self.creates[step] = self.creates.get(step, 0) + sum(self.client.creates.values()) - before
        if step != "schema":
            assert settle(step, first) in ("ACTIVE", "CREATE FAILED")
        return first


@pytest.fixture(scope="module")
def chain():
    with LocalAccount() as account:
        chain = Chain(RecordingClient(core.personalize_client()))
        interactions = chain.twice("schema", "interactions", {"schema": avro("INTERACTIONS")})
        users = chain.twice("schema", "users", {"schema": json.dumps(avro("USERS"))})
        items = chain.twice("schema", "items", {"schema": avro("ITEMS")})
        group = chain.twice("datasetGroup", "g", {})["arn"]
        kms = {"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/mrk-1", "roleArn": ROLE}
        vod = chain.twice("datasetGroup", "vod", {"domain": "VIDEO_ON_DEMAND", **kms})["arn"]
        datasets = {}
        for kind, schema in (("INTERACTIONS", interactions), ("USERS", users), ("ITEMS", items)):
            datasets[kind] = chain.twice(
                "dataset",
                f"g-{kind.lower()}",
                {"datasetType": kind},
                datasetGroupArn=group,
                schemaArn=schema["arn"],
            )["arn"]
        location = put_data(account, "import/interactions.csv", interactions_csv())
        source = {"dataSource": {"dataLocation": location}, "roleArn": ROLE}
        chain.twice("datasetImportJob", "full-x1", source, datasetArn=datasets["INTERACTIONS"])
        chain.twice(
            "datasetImportJob",
            "more-x1",
            {**source, "importMode": "INCREMENTAL"},
            datasetArn=datasets["INTERACTIONS"],
        )
        expression = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watch")'
        chain.twice("filter", "seen", {"filterExpression": expression}, datasetGroupArn=group)
        chain.twice("eventTracker", "events", datasetGroupArn=group)
        solution = chain.twice(
            "solution", "pop", {"recipeArn": "aws-popularity-count"}, datasetGroupArn=group
        )["arn"]
        version = chain.twice("solutionVersion", "pop-x1", solutionArn=solution)["arn"]
        chain.metrics = handlers.STEPS["solutionMetrics"](
            chain.client, {"solutionVersionArn": version}
        )
        put_data(account, "batch/in/users.json", b'{"userId": "1"}\n')
        chain.twice(
            "batchInferenceJob",
            "pop-x1",
            {
                "roleArn": ROLE,
                "numResults": 5,
                "jobInput": {"s3DataSource": {"path": "s3://recops-data/batch/in/"}},
                "jobOutput": {"s3DataDestination": {"path": "s3://recops-data/batch/out/"}},
            },
            solutionVersionArn=version,
        )
        chain.twice("campaign", "pop", solutionVersionArn=version)
        chain.twice(
            "recommender", "top", {"recipeArn": "aws-vod-most-popular"}, datasetGroupArn=vod
        )
        yield chain


def test_the_chain_covers_every_step(chain):
    assert set(chain.results) | {"solutionMetrics"} == set(handlers.STEPS)


@pytest.mark.parametrize("step", sorted(FAMILIES))
def test_missing_is_created_and_existing_is_returned(chain, step):
    first, again = chain.results[step]
    assert first["created"] is True
    assert again["created"] is False
    assert again["arn"] == first["arn"]
    assert first["arn"].startswith(PREFIX + ":")
    assert first["status"] in ("CREATE PENDING", "ACTIVE")  # ACTIVE: schemas, which have none
    made = {"schema": 3, "datasetGroup": 2, "dataset": 3, "datasetImportJob": 2}.get(step, 1)
    assert chain.creates[step] == made  # one Create per resource, none on the second run


@pytest.mark.parametrize(
    "step",
    sorted(FAMILIES),
)
def test_every_resource_is_listed_once(chain, step):
    client, family = chain.client, FAMILIES[step]
    first, _ = chain.results[step]
    described = core.describe(client, family, first["arn"])
    parent = {family.parent: described[family.parent]} if family.parent in described else {}
    listed = [s[family.arn_field] for s in core.list_all(client, family, parent)]
    assert listed.count(first["arn"]) == 1


def test_event_tracker_gives_its_tracking_id(chain):
    first, again = chain.results["eventTracker"]
    assert first["trackingId"]
    assert again["trackingId"] == first["trackingId"]


def test_solutions_do_not_train_automatically_unless_asked(chain):
    first, _ = chain.results["solution"]
    described = core.describe(chain.client, FAMILIES["solution"], first["arn"])
    assert described["performAutoTraining"] is False
    assert described["recipeArn"] == "arn:aws:personalize:::recipe/aws-popularity-count"


def test_campaigns_default_to_one_tps(chain):
    first, _ = chain.results["campaign"]
    assert core.describe(chain.client, FAMILIES["campaign"], first["arn"])["minProvisionedTPS"] == 1


def test_solution_metrics_are_returned_not_written(chain):
    (_, version) = chain.results["solutionVersion"]
    assert chain.metrics["solutionVersionArn"] == version["arn"]
    assert chain.metrics["metrics"]
    assert all(isinstance(v, float | int) for v in chain.metrics["metrics"].values())


def test_outcomes_are_json_for_the_state_machine(chain):
    for first, again in chain.results.values():
        assert json.loads(json.dumps([first, again])) == [first, again]
        assert set(first) <= {"arn", "status", "created", "failureReason", "trackingId"}

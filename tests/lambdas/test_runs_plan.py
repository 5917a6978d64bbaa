"""The plan step (lambdas/runs/plan.py) against the local account: which config a run uses, what
it receives, and every refusal before anything is billed, with its message."""

from __future__ import annotations

import copy
import io
import json
import re

import pytest
from botocore.stub import Stubber

from lambdas.runs import data_checks, quotas
from lambdas.runs.errors import (
    DataRejectedError,
    InvalidConfigError,
    QuotaExceededError,
    RegionNotSupportedError,
)
from lambdas.runs.plan import Clients, plan
from localaws import LocalAccount
from recops.config import parse_config
from recops.contracts import contracts

BUCKET = "recops-test-data"
EXECUTION = "0f6e2bd4-2f52-4a8e-9d71-5c3a1e2b9f10"
STACK = "recops-test"
REGION = "us-east-1"
CONFIG = {
    "prefix": STACK,
    "data": {"interactions": {"path": "raw/interactions.csv"}},
    "personalize": {
        "solutions": [
            {"name": "user-personalization", "recipe": "aws-user-personalization-v2"},
            {"name": "popularity", "recipe": "aws-popularity-count"},
        ],
        "batch_inference": [{"solution": "user-personalization"}],
    },
}


def interactions(n: int, users: int = 50, header: str = "user_id,item_id,timestamp") -> bytes:
    """n rows over `users` users taking turns: after 2 * users rows every user has two."""
    rows = [f"u{i % users},i{i % 97},{1_600_000_000 + i}" for i in range(n)]
    return "\n".join([header, *rows, ""]).encode()


@pytest.fixture
def account():
    with LocalAccount() as local:
        local.client("s3").create_bucket(Bucket=BUCKET)
        yield local


def put(account, key: str, body: bytes | str) -> None:
    account.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


def event(input_: dict | None = None, deployed: dict | None = None, **extra) -> dict:
    return {
        "input": {} if input_ is None else input_,
        "deployedConfig": deployed or CONFIG,
        "executionName": EXECUTION,
        **extra,
    }


def run_plan(evt: dict, region: str = REGION) -> dict:
    return plan(evt, data_bucket=BUCKET, region=region, clients=Clients.default())


def changed(change) -> dict:
    config = copy.deepcopy(CONFIG)
    change(config)
    return config


# --- which config -------------------------------------------------------------------------------


def test_an_empty_input_plans_the_deployed_config(account):
    put(account, "raw/interactions.csv", interactions(3000))
    result = run_plan(event())
    assert result["runId"] == "5c3a1e2b9f10"
    assert result["stack"] == STACK
    assert result["contracts"] == contracts(parse_config(CONFIG))
    assert result["checks"]["config"] == "the deployed config"
    assert result["checks"]["region"] == {"region": REGION, "offersPersonalize": True}
    assert json.loads(json.dumps(result)) == result  # what the state machine receives is JSON


def test_a_config_in_the_input_replaces_the_deployed_one(account):
    put(account, "raw/interactions.csv", interactions(3000))
    given = changed(lambda c: c["personalize"]["solutions"].pop())
    result = run_plan(event({"config": given}))
    assert result["checks"]["config"] == "the execution input's config"
    assert [s["key"] for s in result["contracts"]["personalize"]["solutions"]] == [
        "user-personalization"
    ]


def test_a_config_object_in_the_data_bucket_is_read_and_validated(account):
    put(account, "raw/interactions.csv", interactions(3000))
    given = changed(lambda c: c.update(evaluation={"k_values": [10]}))
    put(account, "train/small.json", json.dumps(given))
    result = run_plan(event({"configObject": {"bucket": BUCKET, "key": "train/small.json"}}))
    assert result["checks"]["config"] == f"s3://{BUCKET}/train/small.json"
    assert result["contracts"]["evaluation"]["kValues"] == [10]


@pytest.mark.parametrize(
    ("location", "body", "words"),
    [
        ({"bucket": BUCKET, "key": "train/none.json"}, None, "train/none.json: no such object"),
        ({"bucket": BUCKET, "key": "train/bad.json"}, b"{prefix", "train/bad.json: not valid JSON"),
        ({"bucket": "elsewhere", "key": "train/x.json"}, None, "is not the stack's data bucket"),
        ({"bucket": BUCKET}, None, "configObject must be {'bucket', 'key'}"),
    ],
)
def test_a_config_object_that_cannot_be_read_is_refused(account, location, body, words):
    if body is not None:
        put(account, location["key"], body)
    with pytest.raises(InvalidConfigError, match=re.escape(words)):
        run_plan(event({"configObject": location}))


def test_a_config_of_another_stack_is_refused(account):
    other = changed(lambda c: c.update(prefix="recops-other"))
    with pytest.raises(InvalidConfigError) as refused:
        run_plan(event({"config": other}))
    assert str(refused.value) == (
        "the execution input's config: prefix 'recops-other' is not this stack's "
        "('recops-test'); a config runs only in the stack it names, since the prefix names "
        "every resource. Set prefix to 'recops-test', or deploy a stack for 'recops-other' "
        "(cdk deploy -c config=FILE) and start the run there"
    )


def test_an_invalid_config_is_refused_in_the_models_words(account):
    bad = changed(lambda c: c["personalize"]["solutions"][0].update(recipe="aws-hrnn"))
    with pytest.raises(InvalidConfigError) as refused:
        run_plan(event({"config": bad}))
    assert str(refused.value).startswith(
        "the execution input's config: 1 problem(s) in the pipeline config:\n"
        "  - personalize.solutions.0.recipe: Input should be 'aws-user-personalization'"
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda c: (
                c["personalize"]["solutions"].append(
                    {"name": "similar", "recipe": "aws-similar-items"}
                )
                or c["personalize"]["batch_inference"].append({"solution": "similar"})
            ),
            "personalize.batch_inference.1: solution 'similar' uses aws-similar-items, which "
            "does not recommend items for a user",
        ),
        (
            lambda c: c["personalize"].update(
                domain="VIDEO_ON_DEMAND",
                recommenders=[{"name": "top", "recipe": "aws-vod-top-picks"}],
            ),
            "a domain dataset group's interactions need an EVENT_TYPE column",
        ),
        (
            lambda c: c["personalize"]["batch_inference"][0].update(num_results=10),
            "num_results 10 is below the largest evaluation K (25)",
        ),
    ],
    ids=["similar-items-batch", "vod-without-event-type", "k-above-num-results"],
)
def test_what_personalize_would_refuse_in_the_config_is_refused(account, change, words):
    with pytest.raises(InvalidConfigError, match=re.escape(words)):
        run_plan(event({"config": changed(change)}))


@pytest.mark.parametrize(
    "given",
    [{"config": CONFIG, "configObject": {"bucket": BUCKET, "key": "k"}}, {"conf": CONFIG}, []],
)
def test_an_input_that_does_not_say_which_config_is_refused(account, given):
    with pytest.raises(InvalidConfigError, match=r"start the execution with \{\} \(the deployed"):
        run_plan(event(given))


def test_an_execution_name_without_a_run_id_is_refused(account):
    with pytest.raises(InvalidConfigError, match="must end in 12 lower-case letters or digits"):
        run_plan(event(executionName="my-run"))


# --- the data -----------------------------------------------------------------------------------


def test_counting_stops_as_soon_as_the_minimums_are_met(account):
    """200,000 rows uploaded; 1,000 read (the 1,000th interaction, when 50 users have two)."""
    config = changed(
        lambda c: c["data"]["interactions"].update(
            path="raw/ml/",
            format="tsv",
            columns={"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "ts"},
        )
    )
    header = "user_id:token\titem_id:token\tts"
    body = interactions(200_000, header="user_id,item_id,ts").replace(b",", b"\t")
    body = header.encode() + body[body.index(b"\n") :]
    put(account, "raw/ml/ml.inter", body)
    put(account, "raw/ml/more.inter", body)
    put(account, "raw/ml/_SUCCESS", b"")
    checks = run_plan(event(deployed=config))["checks"]["data"]["interactions"]
    assert checks == {
        "format": "tsv",
        "counted": True,
        "columnsChecked": True,
        "files": 2,
        "filesRead": 1,
        "rowsRead": 1000,
        "interactions": 1000,
        "usersWithTwo": 50,
        "stoppedEarly": True,
    }


@pytest.mark.parametrize(
    ("body", "counts"),
    [
        (interactions(999), "holds 999 interactions and 50 users with 2 or more"),
        (interactions(1500, users=1480), "holds 1,500 interactions and 20 users with 2 or more"),
    ],
    ids=["999-interactions", "20-users-with-two"],
)
def test_data_below_personalizes_minimums_is_refused(account, body, counts):
    put(account, "raw/interactions.csv", body)
    with pytest.raises(DataRejectedError) as refused:
        run_plan(event())
    assert str(refused.value) == (
        f"data.interactions.path 'raw/interactions.csv' (s3://{BUCKET}/raw/interactions.csv, "
        f"1 csv file(s)) {counts}; Amazon Personalize needs at least 1,000 interactions and 25 "
        "users with 2 or more to train (https://docs.aws.amazon.com/personalize/latest/dg/"
        "limits.html): add interactions under data.interactions.path, or remove "
        "personalize.solutions and personalize.recommenders (or set personalize.enabled to "
        "false) to run without Personalize"
    )


def test_rows_with_a_missing_id_are_read_but_not_counted(account):
    """Missing as prep reads it (training.input_formats.MISSING_TEXT): empty, or null spelled
    NULL, NaN, nan, None; "NA" is an id. Blank lines are no rows."""
    bad = [",i1,5", "u1,,5", "NULL,i1,5", "u1,NaN,5", "None,i1,5", "u1,nan,5", "u2"]
    good = ["NA,i1,5", "u3,NULLS,7", '"u,4",i5,9']
    body = "\n".join(["user_id,item_id,timestamp", *bad, "", *good, "", ""]).encode()
    put(account, "raw/interactions.csv", body)
    config = changed(lambda c: c["personalize"].update(solutions=[], batch_inference=[]))
    checks = run_plan(event(deployed=config))["checks"]["data"]["interactions"]
    assert (checks["rowsRead"], checks["interactions"]) == (10, 3)


def test_rows_without_an_event_type_are_not_counted_when_one_is_mapped(account):
    rows = ["user_id,item_id,timestamp,event", "u1,i1,5,click", "u1,i2,5,", "u1,i3,5,NULL"]
    put(account, "raw/interactions.csv", "\n".join(rows).encode())
    config = changed(
        lambda c: (
            c["data"]["interactions"].update(columns={"event_type": "event"})
            or c["personalize"].update(solutions=[], batch_inference=[])
        )
    )
    checks = run_plan(event(deployed=config))["checks"]["data"]["interactions"]
    assert (checks["rowsRead"], checks["interactions"]) == (3, 1)


def test_missing_data_is_refused_naming_the_path_and_the_fix(account):
    put(account, "raw/interactions/part-0.parquet", b"PAR1")
    config = changed(lambda c: c["data"]["interactions"].update(path="raw/interactions"))
    with pytest.raises(DataRejectedError) as refused:
        run_plan(event(deployed=config))
    assert str(refused.value) == (
        "data.interactions.path 'raw/interactions': there is no object "
        f"s3://{BUCKET}/raw/interactions and no csv file (.csv) under "
        f"s3://{BUCKET}/raw/interactions/: upload the data there (aws s3 cp FILE "
        f"s3://{BUCKET}/raw/interactions/), or set data.interactions.path to where it is and "
        "data.interactions.format to its format"
    )


def test_every_file_needs_the_columns_the_config_names(account):
    put(account, "raw/parts/a.csv", interactions(3000))
    put(account, "raw/parts/b.csv", interactions(10, header="user_id,item_id,time"))
    config = changed(lambda c: c["data"]["interactions"].update(path="raw/parts/"))
    with pytest.raises(DataRejectedError) as refused:
        run_plan(event(deployed=config))
    assert str(refused.value) == (
        f"s3://{BUCKET}/raw/parts/b.csv has no column named as the config says: "
        "data.interactions.columns.timestamp is 'timestamp'. The file's columns: "
        "['user_id', 'item_id', 'time']. Set those fields to the file's column names, or give "
        "the file a header line with them"
    )


def test_an_empty_file_is_refused(account):
    put(account, "raw/interactions.csv", b"")
    with pytest.raises(DataRejectedError, match=r"interactions\.csv is empty: the first line must"):
        run_plan(event())


def test_metadata_files_need_their_id_and_feature_columns(account):
    put(account, "raw/interactions.csv", interactions(3000))
    put(account, "raw/items.csv", b"item_id,genre\ni1,drama\n")
    config = changed(
        lambda c: c["data"].update(
            items={"path": "raw/items.csv", "id_column": "item_id", "categorical": ["genre"]},
            users={"path": "raw/users.csv", "id_column": "user", "numerical": ["age"]},
        )
    )
    put(account, "raw/users.csv", b"user_id,age\nu1,30\n")
    with pytest.raises(DataRejectedError, match=r"data\.users\.id_column is 'user'"):
        run_plan(event(deployed=config))
    put(account, "raw/users.csv", b"user,years\nu1,30\n")
    with pytest.raises(DataRejectedError, match=r"data.users.numerical.0 is 'age'\. The file's"):
        run_plan(event(deployed=config))
    put(account, "raw/users.csv", b"user,age\nu1,30\n")
    checks = run_plan(event(deployed=config))["checks"]["data"]
    assert checks["items"] == {"format": "csv", "files": 1, "columnsChecked": True}


def test_parquet_is_listed_but_not_counted_and_the_checks_say_why(account):
    put(account, "raw/pq/part-0.parquet", b"PAR1 not read")
    config = changed(lambda c: c["data"]["interactions"].update(path="raw/pq/", format="parquet"))
    checks = run_plan(event(deployed=config))["checks"]["data"]["interactions"]
    assert checks == {
        "format": "parquet",
        "files": 1,
        "counted": False,
        "columnsChecked": False,
        "why": data_checks.PARQUET_NOT_READ,
    }
    assert "pyarrow" in checks["why"]


def test_the_minimums_apply_only_when_personalize_trains(account):
    put(account, "raw/interactions.csv", interactions(40))
    config = changed(lambda c: c["personalize"].update(solutions=[], batch_inference=[]))
    checks = run_plan(event(deployed=config))["checks"]["data"]["interactions"]
    assert (checks["interactions"], checks["stoppedEarly"]) == (40, False)


# --- the region and the quotas ------------------------------------------------------------------


def test_a_region_without_personalize_is_refused(account):
    put(account, "raw/interactions.csv", interactions(3000))
    with pytest.raises(RegionNotSupportedError) as refused:
        run_plan(event(), region="af-south-1")
    assert str(refused.value).startswith(
        "Amazon Personalize is not offered in af-south-1 (botocore's endpoint data), where this "
        "stack is deployed: deploy the stack in a region that offers it (ap-northeast-1, "
    )
    assert str(refused.value).endswith("), or set personalize.enabled to false")


def test_a_full_account_has_no_room_for_a_new_dataset_group(account):
    put(account, "raw/interactions.csv", interactions(3000))
    personalize = account.client("personalize")
    for n in range(5):
        personalize.create_dataset_group(name=f"other-{n}")
    with pytest.raises(QuotaExceededError) as refused:
        run_plan(event())
    assert str(refused.value) == (
        "Amazon Personalize: the account has 5 active dataset groups in us-east-1 (['other-0', "
        "'other-1', 'other-2', 'other-3', 'other-4']) and this stack's, recops-test--group, does "
        "not exist yet: one more is above the quota of 5 (documented default, "
        "https://docs.aws.amazon.com/personalize/latest/dg/limits.html (Service Quotas answered "
        "NoSuchResourceException)). Delete a dataset group that is no longer needed, or request "
        "an increase of 'Active dataset groups' in the Service Quotas console "
        "(https://docs.aws.amazon.com/personalize/latest/dg/limits.html)"
    )


def test_the_stacks_own_group_needs_no_new_slot(account):
    put(account, "raw/interactions.csv", interactions(3000))
    personalize = account.client("personalize")
    for n in range(4):
        personalize.create_dataset_group(name=f"other-{n}")
    personalize.create_dataset_group(name=f"{STACK}--group")
    quota = run_plan(event())["checks"]["quotas"]["datasetGroup"]
    assert (quota["limit"], quota["used"], quota["afterRun"]) == (5, 5, 5)


def test_leftover_solutions_count_against_the_groups_quota(account):
    put(account, "raw/interactions.csv", interactions(3000))
    personalize = account.client("personalize")
    group = personalize.create_dataset_group(name=f"{STACK}--group")["datasetGroupArn"]
    account.clock.advance(600)  # the group is ACTIVE
    for n in range(9):
        personalize.create_solution(
            name=f"{STACK}--old-{n}",
            datasetGroupArn=group,
            recipeArn="arn:aws:personalize:::recipe/aws-popularity-count",
        )
    with pytest.raises(QuotaExceededError) as refused:
        run_plan(event())
    assert str(refused.value).startswith(
        "personalize.solutions: 2 in the config and 9 more already in the group "
        "(['recops-test--old-0', 'recops-test--old-1', 'recops-test--old-2', "
    )
    assert "make 11 active solutions per dataset group (recops-test--group), above the quota " in (
        str(refused.value)
    )
    assert "Delete those left over, or use fewer entries in personalize.solutions" in str(
        refused.value
    )
    solutions = run_plan(event({"config": changed(lambda c: c["personalize"]["solutions"].pop())}))[
        "checks"
    ]["quotas"]["solutions"]
    assert (solutions["used"], solutions["afterRun"], solutions["limit"]) == (9, 10, 10)


def test_quota_values_are_the_accounts_when_service_quotas_answers():
    import boto3

    client = boto3.client("service-quotas", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "list_aws_default_service_quotas",
            {
                "Quotas": [
                    {"QuotaName": "Active dataset groups", "QuotaCode": "L-AAAA1111", "Value": 5.0},
                    {
                        "QuotaName": "Active solutions per dataset group",
                        "QuotaCode": "L-BBBB2222",
                        "Value": 10.0,
                    },
                ]
            },
            {"ServiceCode": "personalize"},
        )
        stub.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": "L-AAAA1111", "Value": 20.0}},
            {"ServiceCode": "personalize", "QuotaCode": "L-AAAA1111"},
        )
        stub.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=None)
        values = quotas.quota_values(client, (quotas.DATASET_GROUPS, *quotas.PER_GROUP[:2]))
    assert values == {
        "datasetGroup": (20, "Service Quotas L-AAAA1111, applied"),
        "solutions": (10, "Service Quotas L-BBBB2222, AWS default"),
        "filters": (
            30,
            f"documented default, {quotas.LIMITS_DOC} (no Service Quotas entry "
            "'Active filters per dataset group')",
        ),
    }


def test_the_file_reader_streams_lines_as_csv_reads_them():
    class Body(io.BytesIO):
        def iter_chunks(self, size):
            while chunk := self.read(3):  # tiny chunks: lines and characters split across them
                yield chunk

    class S3:
        def get_object(self, **_):
            return {"Body": Body('\ufeffa,b\r\n"x\ny",é\r\nlast'.encode())}

    import csv

    lines = data_checks.object_lines(S3(), "b", "k")
    assert list(csv.reader(lines)) == [["a", "b"], ["x\ny", "é"], ["last"]]


def test_data_the_step_may_not_read_is_refused_naming_the_field():
    from botocore.exceptions import ClientError

    class Forbidden:
        def get_paginator(self, _):
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2")

    source = parse_config(changed(lambda c: c["data"]["interactions"].update(path="x/i.csv")))
    with pytest.raises(DataRejectedError) as refused:
        data_checks.check_interactions(Forbidden(), BUCKET, source.data.interactions)
    assert str(refused.value) == (
        f"data.interactions.path 'x/i.csv': the plan step may not read s3://{BUCKET}/x/i.csv "
        "(AccessDenied). The stack lets its steps and jobs read only part of the data bucket "
        "(raw/ in its layout): upload the data under raw/ and set data.interactions.path to it"
    )


def test_the_deployed_config_as_the_stack_passes_it_plans_the_same(account):
    """The stack passes its config as model_dump(mode="json", exclude_none=True)."""
    put(account, "raw/interactions.csv", interactions(3000))
    dumped = parse_config(CONFIG).model_dump(mode="json", exclude_none=True)
    assert run_plan(event(deployed=dumped))["contracts"] == run_plan(event())["contracts"]


def test_an_empty_part_among_good_files_is_left_to_prep_which_skips_it(account):
    """Prep skips and lists 0-byte parts (training/prep.py); the plan does not refuse them."""
    put(account, "raw/interactions/part-0.csv", interactions(3000))
    put(account, "raw/interactions/part-1.csv", b"")
    config = changed(lambda c: c["data"]["interactions"].update(path="raw/interactions/"))
    planned = run_plan(event(deployed=config))
    assert planned["checks"]["data"]["interactions"]["files"] == 1

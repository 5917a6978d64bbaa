"""recops.names: every name valid for its service, owned by exactly one stack, deterministic."""

import itertools
import json
import uuid

import botocore.session
import pytest
import regex

from recops import contracts, names
from recops.config import parse_config
from tests.conftest import DEMO_CONFIG

RUN = "9b1c2d3e4f5a"
# Stacks whose plain prefixes overlap: "recops-demo-*" matches every name of "recops-demo-eu".
STACKS = ["recops-demo", "recops-demo-eu", "recops-demo-e", "recops-d", "abc", "abc-d", "abc1"]
_MODELS = botocore.session.get_session()


def _model_rule(service: str, operation: str, member: str) -> tuple[regex.Pattern, int]:
    shape = _MODELS.get_service_model(service).operation_model(operation).input_shape
    meta = shape.members[member].metadata
    return regex.compile(meta["pattern"]), meta["max"]


PERSONALIZE = _model_rule("personalize", "CreateSolution", "name")
SAGEMAKER = _model_rule("sagemaker", "CreateTrainingJob", "TrainingJobName")


def _valid(name: str, rule: tuple[regex.Pattern, int]) -> bool:
    pattern, longest = rule
    return bool(pattern.fullmatch(name)) and 1 <= len(name) <= longest


def _plan_names(plan: dict, run: str = RUN, attempt: int = 0) -> list[str]:
    entries = [plan["datasetGroup"], plan["eventTracker"]]
    entries += [e for key, value in plan.items() if isinstance(value, list) for e in value]
    result = []
    for entry in entries:
        if not isinstance(entry, dict) or "key" not in entry:
            continue
        result.append(entry.get("name") or names.run_owned(entry["stem"], run, attempt))
    return result


def _rich_config(prefix: str = "recops-demo") -> dict:
    raw = json.loads(DEMO_CONFIG.read_text())
    raw["prefix"] = prefix
    long_name = "a-very-long-solution-name-for-testing-x"  # 39 characters, within the 40 allowed
    raw["personalize"]["solutions"] += [
        {"name": long_name, "recipe": "aws-trending-now"},
        {"name": long_name[:-1] + "y", "recipe": "aws-trending-now"},
    ]
    raw["personalize"]["batch_inference"] += [
        {"solution": long_name},
        {"solution": long_name[:-1] + "y"},
    ]
    raw["personalize"]["event_tracker"] = True
    raw["personalize"]["campaigns"] = [{"name": "realtime", "solution": "user-personalization"}]
    return raw


def test_every_name_the_demo_config_gives_is_valid_for_its_service(demo_config):
    plan = contracts.personalize_plan(demo_config)
    for attempt in (0, 1, names.MAX_ATTEMPT):
        for name in _plan_names(plan, attempt=attempt):
            assert _valid(name, PERSONALIZE), name
    stems = contracts.sagemaker_contract(demo_config)["jobs"]
    for stem in stems.values():
        for attempt in (0, names.MAX_ATTEMPT):
            assert _valid(names.run_owned(stem, RUN, attempt, "sagemaker"), SAGEMAKER), stem


def test_the_longest_prefix_and_longest_names_still_fit():
    prefix = "r" * names.PREFIX_MAX
    config = parse_config(_rich_config(prefix))
    plan = contracts.personalize_plan(config)
    all_names = _plan_names(plan, attempt=names.MAX_ATTEMPT)
    assert max(len(n) for n in all_names) <= 63
    assert all(_valid(n, PERSONALIZE) for n in all_names)
    batch = [names.run_owned(e["stem"], RUN) for e in plan["batchInferenceJobs"]]
    assert len(set(batch)) == len(batch), "two long solution names must give two batch names"


def test_long_labels_are_cut_with_a_hash_the_same_way_every_time():
    label = "a-very-long-solution-name-for-testing-x"
    stem = names.run_stem("recops-demo", label)
    assert stem == names.run_stem("recops-demo", label)
    assert stem != names.run_stem("recops-demo", label[:-1] + "y")
    assert stem.startswith("recops-demo--a-very-long")
    assert stem.endswith(f"-{names.short_hash(label, names.LABEL_HASH_LENGTH)}-")
    longest = names.run_owned(stem, RUN, names.MAX_ATTEMPT)
    assert len(longest) <= 63
    assert names.run_stem("recops-demo", "popularity") == "recops-demo--popularity-"


@pytest.mark.parametrize(("stack", "other"), list(itertools.permutations(STACKS, 2)))
def test_no_name_of_one_stack_is_selected_for_another(stack, other):
    config = parse_config(_rich_config(stack))
    plan = contracts.personalize_plan(config)
    jobs = contracts.sagemaker_contract(config)["jobs"].values()
    given = _plan_names(plan) + [names.run_owned(s, RUN, 0, "sagemaker") for s in jobs]
    assert all(names.owned_by(n, stack) for n in given)
    assert not [n for n in given if names.owned_by(n, other)]


def test_plain_prefixes_would_overlap_which_is_why_the_separator_exists():
    assert "recops-demo-eu--group".startswith("recops-demo-")
    assert not names.owned_by("recops-demo-eu--group", "recops-demo")
    assert not names.owned_by("recops-demo--group", "recops-demo-eu")
    assert names.owned_prefix("recops-demo") == "recops-demo--"


@pytest.mark.parametrize(
    "prefix",
    [
        "ab",
        "r" * 21,
        "recops--demo",
        "recops-",
        "-recops",
        "1recops",
        "Recops",
        "rec_ops",
        "rec ops",
    ],
)
def test_prefixes_that_could_break_ownership_or_names_are_refused_in_words(prefix):
    problem = names.prefix_problem(prefix)
    assert problem is not None
    assert "3 to 20 characters" in problem
    assert "no two hyphens in a row" in problem
    with pytest.raises(ValueError, match="is not a valid prefix"):
        names.owned_prefix(prefix)


def test_schema_names_carry_a_hash_of_their_content():
    schema = {"type": "record", "name": "Interactions", "fields": [{"name": "USER_ID"}]}
    first = names.schema_name("recops-demo", "interactions", schema)
    assert first == names.schema_name("recops-demo", "interactions", dict(schema))
    changed = {**schema, "fields": [{"name": "USER_ID"}, {"name": "ITEM_ID"}]}
    assert names.schema_name("recops-demo", "interactions", changed) != first
    assert names.schema_name("recops-demo", "interactions", schema, "ECOMMERCE") != first
    assert first.startswith("recops-demo--interactions-")
    assert len(first.rsplit("-", 1)[1]) == names.SCHEMA_HASH_LENGTH


def test_run_id_is_the_last_twelve_characters_of_a_uuid_execution_name():
    name = str(uuid.UUID("3f2a6c1e-1b2c-4d5e-8f90-9b1c2d3e4f5a"))
    assert names.run_id(name) == "9b1c2d3e4f5a"
    assert names.run_id("weekly-retrain-000000000042") == "000000000042"
    for bad in ("short", "nightly-RUN-ABCDEFGHIJKL", "run_with_underscores_x"):
        with pytest.raises(ValueError, match="must end in 12 lower-case letters or digits"):
            names.run_id(bad)


def test_a_redrive_gets_a_new_name_and_a_retry_within_an_attempt_keeps_it():
    stem = names.run_stem("recops-demo", "prep", "sagemaker")
    first = names.run_owned(stem, RUN, 0, "sagemaker")
    assert first == "recops-demo--prep-9b1c2d3e4f5a"
    assert first == names.run_owned(stem, RUN, 0, "sagemaker")
    assert names.run_owned(stem, RUN, 1, "sagemaker") == first + "-1"
    with pytest.raises(ValueError, match="redrive count"):
        names.run_owned(stem, RUN, names.MAX_ATTEMPT + 1)


def test_sagemaker_names_refuse_what_personalize_allows():
    assert names.check_personalize_name("recops-demo--user_personalization")
    with pytest.raises(ValueError, match="letters, digits and hyphens"):
        names.check_sagemaker_name("recops-demo--user_personalization")
    with pytest.raises(ValueError, match="1 to 63 characters"):
        names.check_personalize_name("x" * 64)
    with pytest.raises(ValueError, match="not a valid SageMaker"):
        names.run_stem("recops-demo", "user_personalization", "sagemaker")


def test_every_resource_is_tagged_with_its_stack(demo_config):
    plan = contracts.personalize_plan(demo_config)
    tag = {"tagKey": names.STACK_TAG_KEY, "tagValue": "recops-demo"}
    for family, entries in plan.items():
        if family in ("stack", "tags", "schemas") or not entries:
            continue  # CreateSchema takes no tags: schemas are found by owned_by
        for entry in entries if isinstance(entries, list) else [entries]:
            assert tag in entry["create"]["tags"], (family, entry["key"])
    assert contracts.sagemaker_contract(demo_config)["tags"] == [
        {"Key": names.STACK_TAG_KEY, "Value": "recops-demo"}
    ]

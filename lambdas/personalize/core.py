"""Describe-or-create for Amazon Personalize: one control flow, resource families declared as data.

Why: every Personalize resource is created by a Lambda step (CloudFormation cannot make most of
them) and polled by the state machine (Wait + aws-sdk Describe + Choice; never inside a Lambda).
A re-run must create nothing new, a lost create race must resolve to the winner, and a leftover
with another configuration must fail loudly instead of being reused silently.

Input of every step: one resolved plan entry (recops/contracts.py makes them) plus parent ARNs:

    {
      "name": "recops-demo--similar-items",           # name, or jobName for the job families
      "params": {"recipeArn": "aws-similar-items"},   # the Create call's fields, as the API names them
      "tags": {"recops:stack": "recops-demo"},         # optional; sent where the Create call takes tags
      "datasetGroupArn": "arn:aws:personalize:...",   # parent ARNs from earlier steps, top level:
    }                                                 # every top-level "...Arn" joins the request

or, as the state machine passes them, one entry of recops.contracts.personalize_plan as it is,
with the values its `fill` references resolved (`step_input` turns it into the shape above):

    {
      "entry": {"key": "popularity", "name": "recops-demo--popularity",
                "create": {"name": ..., "recipeArn": ..., "tags": [{"tagKey": .., "tagValue": ..}]},
                "fill": {"datasetGroupArn": "arn:datasetGroup:main"}},
      "refs": {"arn:datasetGroup:main": "arn:aws:personalize:...", "run:name": "...", ...}
    }

Output, for the state machine to poll: {"arn": ..., "status": ..., "created": bool}, plus
"failureReason" when the service gives one, "updated": true when an updatable field was changed
in place (campaigns, recommenders), and a family's extras (an event tracker's "trackingId").

ensure() does, for any family:
1. check the name against the model's pattern and length (63, `^[a-zA-Z0-9][a-zA-Z0-9\\-_]*`);
2. find it: Describe the ARN built from the name where the service builds it so
   (`arn:<partition>:personalize:<region>:<account>:<kind>/<name>`: schema, dataset-group,
   dataset-import-job, filter, solution, campaign, recommender, batch-inference-job), otherwise List
   under the parent, every page, and match the name (datasets: their ARN carries the dataset type;
   event trackers: a generated id; solution versions: a generated id, and ListSolutionVersions has
   no names, so each is described, newest first);
3. missing: Create. ResourceAlreadyExistsException (a racing create, or a leftover whose ARN is
   not the one built) finds it again by listing and goes on as in 4;
4. found: compare every asked field with the described one (`differences`); any difference that
   the service cannot change in place raises ConfigurationMismatchError naming the field, the
   existing value and the asked one. Compared after normalising: dicts are compared on the asked
   keys only (the service fills in defaults such as campaignConfig.itemExplorationConfig), a field
   the service omits reads as its documented default (Family.defaults), a recipe by its name.
   A field the plan leaves out is not compared, except where leaving it out is itself a choice
   (Family.compare_absent: a dataset group's domain and KMS key, a schema's domain, a solution's
   eventType, a batch job's filterArn).
   Never compared: tags (no Describe returns them; `NOT_DESCRIBED` is checked by a test against
   botocore's model, so a new create-only field shows up there).

Errors propagate with their names: the Lambda error type is the AWS error code
(ResourceInUseException: a parent not ACTIVE yet; LimitExceededException; ResourceNotFoundException;
InvalidInputException), or ConfigurationMismatchError / InvalidStepInputError / InvalidSchemaError for what no
retry can fix. Throttling is retried by botocore's standard retry mode (`RETRIES`).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
import botocore.session
from aws_lambda_powertools import Logger
from botocore import xform_name
from botocore.config import Config

SERVICE = "recops-personalize"  # Powertools' service name: the logs' and traces' key
LOG = Logger(service=SERVICE, child=True)
# Throttling (ThrottlingException, TooManyRequestsException) and transient 5xx are retried here,
# with jittered exponential backoff; everything else reaches the state machine at once.
# total_max_attempts counts the first call: 5 retries, jittered backoff of at most 1, 2, 4, 8, 16 s
# (worst case ~31 s: give the function a timeout of a minute or more). AWS_MAX_ATTEMPTS, botocore's
# own variable, overrides the count (tests use it to give up sooner).
RETRIES = {"mode": "standard", "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "6"))}
MODEL = botocore.session.get_session().get_service_model("personalize")
NOT_DESCRIBED = frozenset({"tags"})  # create fields no Describe returns; never compared


class InvalidStepInputError(ValueError):
    """The plan entry cannot be sent: a bad name, an unknown field. A plan bug; never retried."""


class ConfigurationMismatchError(Exception):
    """The resource exists with another configuration than the one asked. Never retried: delete
    the leftover, or give the new configuration a new name."""


def personalize_client(config: Config | None = None, **kwargs: Any) -> Any:
    """The Personalize client every step uses: standard retries absorb throttling."""
    ours = Config(retries=dict(RETRIES))  # a copy: botocore rewrites the dict it is given
    return boto3.client("personalize", config=ours.merge(config) if config else ours, **kwargs)


@dataclass(frozen=True)
class Family:
    """What differs between Personalize resource types; the control flow is `ensure`."""

    noun: str  # the API's noun: CreateDatasetGroup, DescribeDatasetGroup, ListDatasetGroups
    arn_kind: str | None = None  # the ARN is built from the name; None: found by listing
    parent: str | None = None  # the request field naming the parent (its ARN gives the region)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # what an omitted field means
    normalisers: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    # fields compared even when the plan leaves them out, since leaving them out is a choice
    # (a custom dataset group has no domain; a batch job without filterArn filters nothing)
    compare_absent: tuple[str, ...] = ()
    updatable: tuple[str, ...] = ()  # fields Update<noun> changes in place
    update_status: str | None = None  # the described member holding an update's status
    extras: tuple[str, ...] = ()  # described fields returned with the outcome

    @property
    def key(self) -> str:
        """The Describe response's member: datasetGroup."""
        return self.noun[0].lower() + self.noun[1:]

    @property
    def arn_field(self) -> str:
        return f"{self.key}Arn"

    @cached_property
    def create_fields(self) -> frozenset[str]:
        return frozenset(MODEL.operation_model(f"Create{self.noun}").input_shape.members)

    @cached_property
    def described_fields(self) -> frozenset[str]:
        output = MODEL.operation_model(f"Describe{self.noun}").output_shape
        return frozenset(output.members[self.key].members)

    @property
    def name_field(self) -> str:
        return "jobName" if "jobName" in self.create_fields else "name"


@dataclass(frozen=True)
class Difference:
    field: str
    existing: Any
    asked: Any

    def __str__(self) -> str:
        return f"{self.field} is {_show(self.existing)}, asked {_show(self.asked)}"


def ensure(
    client: Any, family: Family, event: Mapping[str, Any], arn_prefix: str | None = None
) -> dict:
    """Describe-or-create one resource; `arn_prefix` (arn:<partition>:personalize:<region>:<account>)
    lets families without a parent ARN (schemas, dataset groups) be found without listing."""
    request = request_for(family, event)
    existing = find(client, family, request, arn_prefix)
    if existing is None:
        try:
            response = call(client, f"Create{family.noun}", request)
        except client.exceptions.ResourceAlreadyExistsException:
            existing = find(client, family, request, arn_prefix, by_listing=True)
            if existing is None:  # e.g. a second dataset of one type under another name
                raise
            LOG.info(
                "%s %s was created meanwhile; using it", family.key, existing[family.arn_field]
            )
        else:
            described = describe(client, family, response[family.arn_field])
            LOG.info("created %s %s", family.key, described[family.arn_field])
            return outcome(family, described, created=True)
    return _reconcile(client, family, request, existing)


UPDATING = ("CREATE PENDING", "CREATE IN_PROGRESS")


def _reconcile(client: Any, family: Family, request: dict, existing: dict) -> dict:
    """The existing resource if it is the one asked; updated in place where the service can.

    An update still in progress counts as done for the comparison (the resource serves its old
    configuration until then): a re-run finds it and polls it instead of updating again."""
    pending = (existing.get(family.update_status) or {}) if family.update_status else {}
    updating = pending.get("status") in UPDATING
    if updating:
        existing = {**existing, **{f: pending[f] for f in family.updatable if f in pending}}
    found = differences(family, request, existing)
    fixed = [d for d in found if d.field not in family.updatable]
    if fixed:
        raise ConfigurationMismatchError(mismatch_message(family, existing, fixed))
    if not found:
        return outcome(family, existing, created=False, updated=updating)
    arn = existing[family.arn_field]
    update = {f: request[f] for f in family.updatable if f in request}
    call(client, f"Update{family.noun}", {family.arn_field: arn, **update})
    LOG.info("updated %s %s: %s", family.key, arn, "; ".join(map(str, found)))
    return outcome(family, describe(client, family, arn), created=False, updated=True)


def step_input(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A plan entry with its references resolved, as {"name", "params", "tags"}; any other input
    as it is. Every `fill` reference must be in `refs`: a missing one is a workflow bug."""
    if "entry" not in event:
        return event
    entry, refs = event["entry"], event.get("refs") or {}
    request = copy.deepcopy(entry.get("create") or {})
    for path, reference in (entry.get("fill") or {}).items():
        if reference not in refs:
            raise InvalidStepInputError(
                f"plan entry {entry.get('key')}: {path} needs {reference!r}, not in refs "
                f"{sorted(refs)}"
            )
        *parents, leaf = path.split(".")
        target = request
        for member in parents:
            target = target.setdefault(member, {})
        target[leaf] = refs[reference]
    tags = {t["tagKey"]: t["tagValue"] for t in request.pop("tags", None) or []}
    name = request.pop("jobName", None) or request.pop("name", None)
    return {"name": name, "params": request, "tags": tags}


def request_for(family: Family, event: Mapping[str, Any]) -> dict:
    """The Create request: params, the top-level parent ARNs, the name, the tags in API form."""
    name = event.get("name")
    if not isinstance(name, str):
        raise InvalidStepInputError(f"a {family.key} step needs a 'name' (string); got {name!r}")
    check_name(family, name)
    params = {k: v for k, v in (event.get("params") or {}).items() if v is not None}
    parents = {k: v for k, v in event.items() if k.endswith("Arn") and v is not None}
    clashes = sorted(k for k in params.keys() & parents.keys() if params[k] != parents[k])
    if clashes:
        raise InvalidStepInputError(f"{family.key} {name}: {clashes} given twice, with two values")
    request = {**params, **parents, family.name_field: name}
    tags = event.get("tags") or {}
    if tags and "tags" in family.create_fields:
        request["tags"] = [{"tagKey": k, "tagValue": str(v)} for k, v in sorted(tags.items())]
    unknown = sorted(request.keys() - family.create_fields)
    if unknown:
        raise InvalidStepInputError(
            f"{family.key} {name}: Create{family.noun} has no field {unknown}; "
            f"it takes {sorted(family.create_fields)}"
        )
    shape = MODEL.operation_model(f"Create{family.noun}").input_shape
    missing = sorted(set(shape.required_members) - request.keys())
    if missing:  # before any call: a missing parent ARN would otherwise list the whole account
        raise InvalidStepInputError(f"{family.key} {name}: Create{family.noun} needs {missing}")
    return request


def check_name(family: Family, name: str) -> None:
    """The name against the model's length and pattern, before anything is called."""
    rules = MODEL.operation_model(f"Create{family.noun}").input_shape.members[family.name_field]
    longest, pattern = rules.metadata.get("max", 63), rules.metadata.get("pattern", "")
    if not 1 <= len(name) <= longest or not re.fullmatch(pattern.lstrip("^"), name):
        raise InvalidStepInputError(
            f"{family.key} name {name!r} must be 1 to {longest} characters, a letter or digit "
            "first, then letters, digits, '-' or '_'"
        )


def find(
    client: Any,
    family: Family,
    request: dict,
    arn_prefix: str | None = None,
    by_listing: bool = False,
) -> dict | None:
    """The described resource of this name, or None."""
    prefix = arn_prefix_of(request.get(family.parent or "")) or arn_prefix
    if family.arn_kind and prefix and not by_listing:
        arn = f"{prefix}:{family.arn_kind}/{request[family.name_field]}"
        try:
            return describe(client, family, arn)
        except client.exceptions.ResourceNotFoundException:
            return None
    return _find_by_listing(client, family, request)


def _find_by_listing(client: Any, family: Family, request: dict) -> dict | None:
    name = request[family.name_field]
    summaries = list(list_all(client, family, request))
    named = [s for s in summaries if s.get(family.name_field) == name]
    if named:
        return describe(client, family, named[0][family.arn_field])
    if summaries and family.name_field not in summaries[0]:  # ListSolutionVersions: no names
        for summary in sorted(summaries, key=lambda s: s["creationDateTime"], reverse=True):
            described = describe(client, family, summary[family.arn_field])
            if described.get(family.name_field) == name:
                return described
    return None


def list_all(client: Any, family: Family, request: dict) -> Iterator[dict]:
    """Every summary the List call returns under the request's parent, page after page."""
    operation = MODEL.operation_model(f"List{family.noun}s")
    scope = {
        k: request[k] for k in operation.input_shape.members if k.endswith("Arn") and k in request
    }
    (items,) = [k for k, s in operation.output_shape.members.items() if s.type_name == "list"]
    token = None
    while True:
        page = call(client, operation.name, {**scope, **({"nextToken": token} if token else {})})
        yield from page.get(items, [])
        token = page.get("nextToken")
        if not token:
            return


def describe(client: Any, family: Family, arn: str) -> dict:
    return call(client, f"Describe{family.noun}", {family.arn_field: arn})[family.key]


def call(client: Any, operation: str, params: Mapping[str, Any]) -> dict:
    """One API call by its model name (CreateDatasetGroup), so families stay data."""
    return getattr(client, xform_name(operation))(**params)


def arn_prefix_of(arn: str | None) -> str | None:
    """arn:<partition>:personalize:<region>:<account> of a regional Personalize ARN."""
    parts = (arn or "").split(":")
    if len(parts) < 6 or parts[2] != "personalize" or not parts[3] or not parts[4]:
        return None
    return ":".join(parts[:5])


def differences(family: Family, request: dict, described: dict) -> list[Difference]:
    """Each asked field whose described value is another (see the module docstring)."""
    found = []
    for name, asked in {**dict.fromkeys(family.compare_absent), **request}.items():
        if name == family.name_field or name in NOT_DESCRIBED:
            continue
        existing = described.get(name, family.defaults.get(name))
        normal = family.normalisers.get(name, _as_is)
        if asked is None:
            if existing not in (None, "", {}, []):
                found.append(Difference(name, existing, asked))
        elif existing is None or not same(normal(asked), normal(existing)):
            found.append(Difference(name, existing, asked))
    return found


def same(asked: Any, existing: Any) -> bool:
    """Equal where asked: dicts on the asked keys, lists item by item, 1 == 1.0, True != 1."""
    if isinstance(asked, Mapping):
        return isinstance(existing, Mapping) and all(
            k in existing and same(v, existing[k]) for k, v in asked.items() if v is not None
        )
    if isinstance(asked, list):
        return (
            isinstance(existing, list)
            and len(asked) == len(existing)
            and all(same(a, e) for a, e in zip(asked, existing, strict=True))
        )
    if isinstance(asked, bool) or isinstance(existing, bool):
        return type(asked) is type(existing) and asked == existing
    return asked == existing


def mismatch_message(family: Family, existing: dict, found: list[Difference]) -> str:
    name = existing.get(family.name_field)
    return (
        f"{family.key} {name} ({existing[family.arn_field]}) exists with another configuration: "
        + "; ".join(map(str, found))
        + ". Delete it, or give this configuration another name."
    )


def outcome(family: Family, described: dict, created: bool, updated: bool = False) -> dict:
    """What the state machine polls on: the ARN, the status (schemas have none: ACTIVE at once)."""
    status = described.get("status", "ACTIVE")
    if updated and family.update_status:
        status = (described.get(family.update_status) or {}).get("status", status)
    result = {"arn": described[family.arn_field], "status": status, "created": created}
    if updated:
        result["updated"] = True
    if described.get("failureReason"):
        result["failureReason"] = described["failureReason"]
    result.update({k: described[k] for k in family.extras if k in described})
    return result


def json_text(value: Any) -> Any:
    """A JSON document as data, so whitespace and key order never count as a difference."""
    return json.loads(value) if isinstance(value, str) else value


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def recipe_name(value: Any) -> Any:
    """arn:aws:personalize:::recipe/aws-sims and aws-sims are one recipe."""
    return value.rsplit("/", 1)[-1] if isinstance(value, str) else value


def _as_is(value: Any) -> Any:
    return value


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 300 else text[:297] + "..."

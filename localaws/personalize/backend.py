"""The Personalize resources: one create / describe / list / delete core, families declared as data.

Lifecycle as the service has it, in virtual time (localaws/clock.py): CREATE PENDING -> CREATE
IN_PROGRESS -> ACTIVE (or CREATE FAILED with a failureReason), each for the seconds the family's
entry in `clock.DURATIONS` gives; delete -> DELETE PENDING -> gone. A resource's status is read
off its timeline at the clock's time, so Describe and List agree and nothing moves because
somebody looked. The work a resource does (an import reading S3, a solution version training)
runs when it becomes ACTIVE; any failure there ends it CREATE FAILED with the reason, never an
internal error. Errors as the service raises them: ResourceNotFoundException,
ResourceAlreadyExistsException, ResourceInUseException (a delete out of order or in a
transitional state, a parent not ACTIVE), InvalidInputException, LimitExceededException.
"""

from __future__ import annotations

import datetime
import io
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from localaws import clock
from localaws.personalize import standins

CREATE_PENDING, CREATE_IN_PROGRESS, ACTIVE = "CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"
CREATE_FAILED, DELETE_PENDING = "CREATE FAILED", "DELETE PENDING"
TRANSITIONAL = ("CREATE PENDING", "CREATE IN_PROGRESS", "CREATE STOPPING", DELETE_PENDING)
MAX_DATASET_GROUPS = 5  # the default quota of active dataset groups per region
# https://docs.aws.amazon.com/personalize/latest/dg/limits.html: 50 tags per resource; one metric
# attribution per dataset group.
MAX_TAGS = 50
ONE_PER_GROUP = ("metricAttribution",)


class PersonalizeError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def not_found(arn: str) -> PersonalizeError:
    return PersonalizeError("ResourceNotFoundException", f"Could not find resource with ARN {arn}")


@dataclass(frozen=True)
class Family:
    """What differs between resource types; everything else is the shared core."""

    name: str  # the API's noun, e.g. "datasetGroup"
    arn_kind: str  # e.g. "dataset-group"
    parents: tuple[str, ...] = ()  # request fields holding parent ARNs that must be ACTIVE
    has_status: bool = True
    deletable: bool = True
    children: tuple[tuple[str, str], ...] = ()  # (family, field) whose items block a delete
    list_filter: str | None = None  # the list call's filter field

    @property
    def arn_field(self) -> str:
        return f"{self.name}Arn"


FAMILIES = {
    f.name: f
    for f in [
        Family("schema", "schema", has_status=False, children=(("dataset", "schemaArn"),)),
        Family(
            "datasetGroup",
            "dataset-group",
            children=tuple(
                (child, "datasetGroupArn")
                for child in (
                    "dataset",
                    "solution",
                    "filter",
                    "eventTracker",
                    "recommender",
                    "metricAttribution",
                )
            ),
        ),
        Family(
            "dataset",
            "dataset",
            parents=("datasetGroupArn", "schemaArn"),
            children=(("datasetImportJob", "datasetArn"),),
            list_filter="datasetGroupArn",
        ),
        Family(
            "datasetImportJob",
            "dataset-import-job",
            parents=("datasetArn",),
            deletable=False,
            list_filter="datasetArn",
        ),
        Family("filter", "filter", parents=("datasetGroupArn",), list_filter="datasetGroupArn"),
        Family(
            "eventTracker",
            "event-tracker",
            parents=("datasetGroupArn",),
            list_filter="datasetGroupArn",
        ),
        Family(
            "solution",
            "solution",
            parents=("datasetGroupArn",),
            children=(("campaign", "solutionArn"), ("solutionVersion", "solutionArn")),
            list_filter="datasetGroupArn",
        ),
        Family(
            "solutionVersion",
            "solution",
            parents=("solutionArn",),
            deletable=False,
            list_filter="solutionArn",
        ),
        Family("campaign", "campaign", parents=("solutionVersionArn",), list_filter="solutionArn"),
        Family(
            "metricAttribution",
            "metric-attribution",
            parents=("datasetGroupArn",),
            list_filter="datasetGroupArn",
        ),
        Family(
            "recommender",
            "recommender",
            parents=("datasetGroupArn",),
            list_filter="datasetGroupArn",
        ),
        Family(
            "batchInferenceJob",
            "batch-inference-job",
            parents=("solutionVersionArn",),
            deletable=False,
            list_filter="solutionVersionArn",
        ),
    ]
}


@dataclass
class Faults:
    """Injected failures, for tests of retry and failure handling (also reachable from outside
    the process through `python -m localaws faults`)."""

    throttle_next: int = 0
    throttle_only: str | None = None  # the operation throttled (None: any)
    fail: dict[str, list[str]] = field(default_factory=dict)  # family -> reasons, used in order
    slow: dict[str, float] = field(default_factory=dict)  # family -> extra seconds, next one

    def throttle(self, calls: int, operation: str | None = None) -> None:
        """The next `calls` requests (of `operation` only, when given, e.g. DescribeDatasetGroup)
        fail with ThrottlingException."""
        self.throttle_next, self.throttle_only = int(calls), operation

    def fail_next(self, family: str, reason: str = "InternalServerError") -> None:
        """The next resource of this family (e.g. datasetImportJob) ends CREATE FAILED with this
        reason."""
        if family not in FAMILIES:
            raise ValueError(f"unknown Personalize resource {family!r}; one of {sorted(FAMILIES)}")
        self.fail.setdefault(family, []).append(reason)

    def fail_next_solution_version(self, reason: str = "InternalServerError") -> None:
        """The next solution version created ends CREATE FAILED with this reason."""
        self.fail_next("solutionVersion", reason)

    def slow_next(self, family: str, seconds: float) -> None:
        """The next resource of this family (e.g. solutionVersion) takes this much longer."""
        if family not in FAMILIES:
            raise ValueError(f"unknown Personalize resource {family!r}; one of {sorted(FAMILIES)}")
        self.slow[family] = self.slow.get(family, 0.0) + float(seconds)


@dataclass
class Resource:
    family: Family
    fields: dict[str, Any]
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (virtual time, status)
    gone_at: float | None = None  # deleted, and gone from then on
    deleted: bool = False
    activated: bool = False  # its work (import, training, ...) has run
    planned_failure: str | None = None  # an injected fault, decided at creation
    model: standins.Model | None = None
    data: pd.DataFrame | None = None  # a dataset's imported rows
    metrics: dict[str, float] = field(default_factory=dict)  # a solution version's
    tags: dict[str, str] = field(default_factory=dict)
    update: dict[str, Any] | None = None  # an Update* in progress or done: fields and timeline

    def update_summary(self) -> dict[str, Any]:
        """latestCampaignUpdate / latestRecommenderUpdate as the service describes it."""
        now = clock.time()
        reached = [step for step in self.update["timeline"] if step[0] <= now]
        when, status = reached[-1]
        return {
            **self.update["fields"],
            "status": status,
            "creationDateTime": _at(self.update["timeline"][0][0]),
            "lastUpdatedDateTime": _at(when),
        }

    @property
    def arn(self) -> str:
        return self.fields[self.family.arn_field]

    @property
    def status(self) -> str | None:
        return self.fields.get("status")

    def schedule(self, *steps: tuple[float, str]) -> None:
        """From now on, these (time, status) steps replace whatever was still to come."""
        now = clock.time()
        self.timeline = [step for step in self.timeline if step[0] <= now] + list(steps)


def _now() -> datetime.datetime:
    return clock.now()


def _at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class PersonalizeBackend:
    """One account and region's Personalize, with hooks that do the work on activation."""

    def __init__(self, account: str, region: str, read_s3: Callable, write_s3: Callable):
        """read_s3(uri) -> [(key, body)] under the URI; write_s3(uri, body)."""
        self.account, self.region = account, region
        self.read_s3, self.write_s3 = read_s3, write_s3
        self.resources: dict[str, Resource] = {}
        self.faults = Faults()
        self.lock = threading.RLock()
        self.on_active: dict[str, Callable[[Resource], None]] = {
            "datasetImportJob": self._import,
            "solutionVersion": self._train,
            "campaign": self._serve_solution_version,
            "recommender": self._train_recommender,
            "batchInferenceJob": self._batch_inference,
        }

    # --- the core --------------------------------------------------------------------------

    def arn(self, family: Family, name: str, parent: str | None = None) -> str:
        if family.name == "solutionVersion":
            return f"{parent}/{uuid.uuid4().hex[:8]}"
        if family.name == "dataset":
            group = parent.rsplit("/", 1)[-1]
            return f"arn:aws:personalize:{self.region}:{self.account}:dataset/{group}/{name}"
        return f"arn:aws:personalize:{self.region}:{self.account}:{family.arn_kind}/{name}"

    def get(self, arn: str, family: str | None = None) -> Resource:
        """The resource as it is now; ResourceNotFoundException if it is not (or no longer)."""
        with self.lock:
            resource = self.resources.get(arn)
            if resource is not None and not resource.deleted:
                self._settle(resource)
            if resource is None or resource.deleted or (family and resource.family.name != family):
                raise not_found(arn)
            return resource

    def create(self, family_name: str, request: dict, arn: str | None = None) -> Resource:
        family = FAMILIES[family_name]
        with self.lock:
            name = request.get("name") or request.get("jobName")
            for existing in self.resources.values():
                same = existing.family is family and not existing.deleted
                if (
                    same
                    and name
                    and (existing.fields.get("name") or existing.fields.get("jobName")) == name
                ):
                    raise PersonalizeError(
                        "ResourceAlreadyExistsException",
                        f"Another resource with name {name} already exists.",
                    )
            for parent_field in family.parents:
                if parent_field in request:
                    parent = self.get(request[parent_field])
                    if parent.family.has_status and parent.status != ACTIVE:
                        raise PersonalizeError(
                            "ResourceInUseException",
                            f"{parent.arn} is in status {parent.status}; it must be ACTIVE first.",
                        )
            if family_name in ONE_PER_GROUP:
                group = request.get("datasetGroupArn")
                if any(r.fields.get("datasetGroupArn") == group for r in self._all(family_name)):
                    raise PersonalizeError(
                        "LimitExceededException",
                        f"{group} already has a {family_name}; the limit is one per dataset group.",
                    )
            if family_name == "datasetGroup":
                live = [r for r in self._all("datasetGroup") if r.status != CREATE_FAILED]
                if len(live) >= MAX_DATASET_GROUPS:
                    raise PersonalizeError(
                        "LimitExceededException",
                        f"The maximum number of dataset groups ({MAX_DATASET_GROUPS}) is reached.",
                    )
            parent_arn = (
                request.get("solutionArn")
                if family_name == "solutionVersion"
                else request.get("datasetGroupArn")
            )
            fields = dict(request)
            tags = {t["tagKey"]: t["tagValue"] for t in fields.pop("tags", None) or []}
            if len(tags) > MAX_TAGS:
                raise PersonalizeError("TooManyTagsException", f"At most {MAX_TAGS} tags.")
            fields[family.arn_field] = arn or self.arn(family, name or "", parent_arn)
            start = clock.time()
            fields["creationDateTime"] = fields["lastUpdatedDateTime"] = _at(start)
            resource = Resource(family, fields, tags=tags)
            if family.has_status:
                life = clock.lifecycle(f"personalize.{family_name}")
                working = life.working + self.faults.slow.pop(family_name, 0.0)
                resource.schedule(
                    (start, CREATE_PENDING),
                    (start + life.pending, CREATE_IN_PROGRESS),
                    (start + life.pending + working, ACTIVE),
                )
                if self.faults.fail.get(family_name):
                    resource.planned_failure = self.faults.fail[family_name].pop(0)
                self._settle(resource)
            self.resources[resource.arn] = resource
            return resource

    def describe(self, arn: str, family: str | None = None) -> Resource:
        return self.get(arn, family)

    def _settle(self, resource: Resource) -> None:
        """The resource as it is at the clock's time: status, timestamps, its work done."""
        now = clock.time()
        if resource.gone_at is not None and now >= resource.gone_at:
            resource.deleted = True
            return
        if not resource.timeline:
            return
        reached = [step for step in resource.timeline if step[0] <= now] or resource.timeline[:1]
        when, status = reached[-1]
        if status == ACTIVE and not resource.activated and resource.status != ACTIVE:
            resource.activated = True
            failure = self._activate(resource)
            if failure is not None:
                resource.timeline = [*reached[:-1], (when, CREATE_FAILED)]
                resource.fields["failureReason"] = failure
                status = CREATE_FAILED
        resource.fields["status"] = status
        resource.fields["lastUpdatedDateTime"] = _at(when)
        self._apply_update(resource)

    def _activate(self, resource: Resource) -> str | None:
        """Run the resource's work; the failure reason if it failed (the service's wording)."""
        hook = self.on_active.get(resource.family.name)
        if resource.planned_failure is not None:
            return resource.planned_failure
        if hook is None:
            return None
        try:
            with clock.holding():
                hook(resource)
        except PersonalizeError as err:
            return err.message
        except Exception as err:  # any other failure of the work is the resource's, not a 500
            return f"{type(err).__name__}: {err}"
        return None

    def list(self, family_name: str, filter_arn: str | None = None) -> list[Resource]:
        with self.lock:
            family = FAMILIES[family_name]
            found = []
            for resource in self._all(family_name):
                if filter_arn and family.list_filter:
                    owner = resource.fields.get(family.list_filter)
                    if family_name == "campaign":  # campaigns are listed by solution
                        owner = resource.fields["solutionVersionArn"].rsplit("/", 1)[0]
                    if owner != filter_arn:
                        continue
                found.append(resource)
            return found

    def _all(self, family_name: str) -> list[Resource]:
        found = []
        for resource in list(self.resources.values()):
            if resource.family.name == family_name and not resource.deleted:
                self._settle(resource)
                if not resource.deleted:
                    found.append(resource)
        return found

    def delete(self, arn: str, family_name: str) -> None:
        with self.lock:
            resource = self.get(arn, family_name)
            family = resource.family
            if not family.deletable:
                raise PersonalizeError(
                    "InvalidInputException", f"{family.name} resources cannot be deleted."
                )
            if resource.status not in (None, ACTIVE, CREATE_FAILED, "INACTIVE"):
                raise PersonalizeError(
                    "ResourceInUseException",
                    f"{arn} is in status {resource.status}; it can be deleted when ACTIVE or CREATE FAILED.",
                )
            for child_family, child_field in family.children:
                for child in self._all(child_family):
                    linked = child.fields.get(child_field) == arn
                    if child_family == "campaign" and family.name == "solution":
                        linked = child.fields["solutionVersionArn"].startswith(arn + "/")
                    if child_family in ("solutionVersion", "datasetImportJob"):
                        # versions go with their solution; finished imports do not block
                        linked = linked and child.status in (CREATE_PENDING, CREATE_IN_PROGRESS)
                    if linked:
                        raise PersonalizeError(
                            "ResourceInUseException",
                            f"{arn} is used by {child.arn} ({child.status or 'in use'}); delete that first.",
                        )
            if family.has_status:
                now = clock.time()
                resource.schedule((now, DELETE_PENDING))
                resource.gone_at = now + clock.lifecycle(f"personalize.{family.name}").deleting
                self._settle(resource)
            else:
                resource.deleted = True
            if family.name == "solution":
                for version in self._all("solutionVersion"):
                    if version.fields["solutionArn"] == arn:
                        version.deleted = True

    def start_update(self, resource: Resource, fields: dict[str, Any]) -> None:
        """An update in its own lifecycle; a second one while it runs is refused."""
        if resource.update is not None and not resource.update["applied"]:
            raise PersonalizeError(
                "ResourceInUseException", f"{resource.arn} has an update in progress."
            )
        if "solutionVersionArn" in fields:
            version = self.get(fields["solutionVersionArn"], "solutionVersion")
            if version.status != ACTIVE:
                raise PersonalizeError(
                    "ResourceInUseException", f"{version.arn} is {version.status}."
                )
        now = clock.time()
        life = clock.lifecycle(f"personalize.{resource.family.name}")
        resource.update = {
            "fields": fields,
            "applied": False,
            "timeline": [
                (now, CREATE_PENDING),
                (now + life.pending, CREATE_IN_PROGRESS),
                (now + life.ready_after, ACTIVE),
            ],
        }

    def _apply_update(self, resource: Resource) -> None:
        update = resource.update
        if update is None or update["applied"] or clock.time() < update["timeline"][-1][0]:
            return
        update["applied"] = True
        resource.fields.update(update["fields"])

    def change_status(self, resource: Resource, passing: str, final: str) -> None:
        """A stop or start: `passing` now, `final` once the service has done it."""
        now = clock.time()
        resource.schedule(
            (now, passing), (now + clock.lifecycle("personalize.stop").working, final)
        )
        self._settle(resource)

    # --- hooks: the work done when a resource becomes ACTIVE -----------------------------------

    def _import(self, job: Resource) -> None:
        dataset = self.get(job.fields["datasetArn"], "dataset")
        schema = json.loads(self.get(dataset.fields["schemaArn"], "schema").fields["schema"])
        location = job.fields["dataSource"]["dataLocation"]
        try:
            bodies = [body for _, body in self.read_s3(location)]
        except Exception as err:  # moto's MissingBucket and the like: the job fails, as in AWS
            raise PersonalizeError(
                "InvalidInputException",
                f"Failed to access {location}: {getattr(err, 'code', type(err).__name__)}",
            ) from err
        if not bodies:
            raise PersonalizeError("InvalidInputException", f"No data found at {location}.")
        frame = pd.concat(
            [pd.read_csv(io.BytesIO(b), dtype=str) for b in bodies], ignore_index=True
        )
        check_against_schema(frame, schema)
        frame = coerce_to_schema(frame, schema)
        if job.fields.get("importMode", "FULL") == "INCREMENTAL" and dataset.data is not None:
            frame = pd.concat([dataset.data, frame], ignore_index=True)
        dataset.data = frame
        dataset.fields["latestDatasetUpdate"] = {
            "status": ACTIVE,
            "creationDateTime": _now(),
            "lastUpdatedDateTime": _now(),
        }

    def interactions(self, dataset_group_arn: str) -> pd.DataFrame:
        for dataset in self._all("dataset"):
            if (
                dataset.fields["datasetGroupArn"] == dataset_group_arn
                and dataset.fields["datasetType"].upper() == "INTERACTIONS"
            ):
                if dataset.data is None or dataset.data.empty:
                    break
                return dataset.data
        raise PersonalizeError(
            "InvalidInputException", "The dataset group has no imported interactions."
        )

    def _train(self, version: Resource) -> None:
        solution = self.get(version.fields["solutionArn"], "solution")
        data = self.interactions(solution.fields["datasetGroupArn"])
        enough_users = (data["USER_ID"].value_counts() >= 2).sum()
        if len(data) < 1000 or enough_users < 25:
            raise PersonalizeError(
                "InvalidInputException",
                f"There should be at least 1000 interactions and 25 users with at least 2 interactions "
                f"each; found {len(data)} interactions and {enough_users} such users.",
            )
        recipe = solution.fields.get("recipeArn", "")
        version.model = standins.train(recipe, data)
        version.fields["recipeArn"] = recipe
        version.fields["trainingHours"] = 0.0
        version.fields["localStandIn"] = version.model.stand_in
        version.metrics = standins.offline_metrics(recipe, data)

    def _serve_solution_version(self, campaign: Resource) -> None:
        version = self.get(campaign.fields["solutionVersionArn"], "solutionVersion")
        if version.status != ACTIVE:
            raise PersonalizeError("ResourceInUseException", f"{version.arn} is not ACTIVE.")

    def _train_recommender(self, recommender: Resource) -> None:
        data = self.interactions(recommender.fields["datasetGroupArn"])
        recommender.model = standins.train(recommender.fields["recipeArn"], data)

    def model_of(self, arn: str) -> standins.Model:
        resource = self.get(arn)
        if resource.status != ACTIVE:
            raise PersonalizeError(
                "ResourceInUseException", f"{arn} is in status {resource.status}."
            )
        if resource.family.name == "campaign":
            resource = self.get(resource.fields["solutionVersionArn"])
        if resource.model is None:
            raise PersonalizeError("InvalidInputException", f"{arn} has no trained model.")
        return resource.model

    def recommend(
        self,
        arn: str,
        user_id: str | None,
        item_id: str | None,
        n: int,
        filter_arn: str | None = None,
    ) -> list[tuple[str, float]]:
        model = self.model_of(arn)
        kind = standins.recipe_type(model.recipe)
        if kind == "PERSONALIZED_RANKING":
            raise PersonalizeError(
                "InvalidInputException",
                f"{arn} uses a PERSONALIZED_RANKING recipe: call GetPersonalizedRanking.",
            )
        if kind == "RELATED_ITEMS":
            if item_id is None:
                raise PersonalizeError(
                    "InvalidInputException", f"itemId is required for {arn} (RELATED_ITEMS)."
                )
            try:
                scores = model.item_scores(item_id)
            except KeyError:  # an unknown item gets popular items, as the service does
                scores = model.popularity.astype(float)
        elif user_id is None:
            raise PersonalizeError(
                "InvalidInputException", f"userId is required for {arn} (USER_PERSONALIZATION)."
            )
        else:
            scores = model.user_scores(user_id)
        exclude = None
        if filter_arn:
            self._check_filter(filter_arn)
            exclude = model.seen_items(user_id) if user_id is not None else None
        best = standins.top(scores, n, exclude)
        return [(str(model.item_ids[i]), float(scores[i])) for i in best]

    def _check_filter(self, filter_arn: str) -> None:
        expression = self.get(filter_arn, "filter").fields["filterExpression"]
        if (
            not expression.replace(" ", "")
            .upper()
            .startswith("EXCLUDEITEMIDWHEREINTERACTIONS.EVENT_TYPEIN")
        ):
            raise PersonalizeError(
                "InvalidInputException",
                f"localaws evaluates only 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (...)' filters, not {expression!r}",
            )

    def _batch_inference(self, job: Resource) -> None:
        version = self.get(job.fields["solutionVersionArn"], "solutionVersion")
        n = int(job.fields.get("numResults") or 25)
        source = job.fields["jobInput"]["s3DataSource"]["path"]
        target = job.fields["jobOutput"]["s3DataDestination"]["path"].rstrip("/")
        inputs = self.read_s3(source)
        if not inputs:
            raise PersonalizeError("InvalidInputException", f"No input found at {source}.")
        for key, body in inputs:
            lines = []
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    pairs = self.recommend(
                        version.arn,
                        request.get("userId"),
                        request.get("itemId"),
                        n,
                        job.fields.get("filterArn"),
                    )
                    output = {
                        "recommendedItems": [p[0] for p in pairs],
                        "scores": [p[1] for p in pairs],
                    }
                    lines.append(
                        {
                            "input": request,
                            "output": output,
                            "error": None,
                            "localStandIn": version.model.stand_in,
                        }
                    )
                except PersonalizeError as err:
                    lines.append({"input": request, "output": None, "error": err.message})
            body_out = "\n".join(json.dumps(line) for line in lines) + "\n"
            self.write_s3(f"{target}/{key.rsplit('/', 1)[-1]}.out", body_out.encode())


_AVRO_CHECKS = {"long": "integer", "int": "integer", "float": "number", "double": "number"}


def _field_types(schema: dict) -> dict[str, tuple[str, bool]]:
    """name -> (base type, required)."""
    out = {}
    for f in schema.get("fields", []):
        kind = f["type"]
        optional = isinstance(kind, list) and "null" in kind
        base = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
        out[f["name"]] = (base, not optional)
    return out


def check_against_schema(frame: pd.DataFrame, schema: dict) -> None:
    """What the service checks on import: required columns present, values of the right type."""
    types = _field_types(schema)
    missing = [
        name for name, (_, required) in types.items() if required and name not in frame.columns
    ]
    if missing:
        raise PersonalizeError(
            "InvalidInputException", f"Input CSV is missing the following columns: {missing}"
        )
    unknown = [c for c in frame.columns if c not in types]
    if unknown:
        raise PersonalizeError(
            "InvalidInputException", f"Input CSV has columns not in the schema: {unknown}"
        )
    for name, (base, required) in types.items():
        if name not in frame:
            continue
        values = frame[name]
        if required and values.isna().any():
            raise PersonalizeError(
                "InvalidInputException", f"Column {name} has empty values; it is required."
            )
        kind = _AVRO_CHECKS.get(base)
        if kind:
            numbers = pd.to_numeric(values.dropna(), errors="coerce")
            bad = numbers.isna() | ((numbers % 1 != 0) if kind == "integer" else False)
            if bad.any():
                example = values.dropna()[bad.to_numpy()].iloc[0]
                raise PersonalizeError(
                    "InvalidInputException", f"Column {name} must be {base}; found {example!r}."
                )


def coerce_to_schema(frame: pd.DataFrame, schema: dict) -> pd.DataFrame:
    out = frame.copy()
    for name, (base, _) in _field_types(schema).items():
        if name in out and base in _AVRO_CHECKS:
            out[name] = pd.to_numeric(out[name])
    return out

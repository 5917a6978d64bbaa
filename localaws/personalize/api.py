"""The Personalize and Personalize Runtime APIs over HTTP, validated against botocore's model.

Every request is checked by localaws.validation (the model's constraints and Personalize's rules;
a bad call fails as the service would, with InvalidInputException), dispatched by family, its
response reduced to the operation's output shape, timestamps as epoch seconds (the JSON
protocol's form), and List* results paged (localaws.paging).
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, StructureShape

from localaws import paging, validation
from localaws.personalize import standins
from localaws.personalize.backend import (
    ACTIVE,
    FAMILIES,
    MAX_TAGS,
    PersonalizeBackend,
    PersonalizeError,
)

_SESSION = botocore.session.get_session()
CONTROL = _SESSION.get_service_model("personalize")
_FAMILY_BY_NOUN = {f.name[0].upper() + f.name[1:]: f for f in FAMILIES.values()}
_PLURAL = {
    "Schemas": "schema",
    "DatasetGroups": "datasetGroup",
    "Datasets": "dataset",
    "DatasetImportJobs": "datasetImportJob",
    "Filters": "filter",
    "EventTrackers": "eventTracker",
    "Solutions": "solution",
    "SolutionVersions": "solutionVersion",
    "Campaigns": "campaign",
    "Recommenders": "recommender",
    "BatchInferenceJobs": "batchInferenceJob",
    "MetricAttributions": "metricAttribution",
}
# Service defaults that cost money when nobody asks: kept, so a caller that forgets is visible.
_DEFAULTS = {
    "solution": {"performAutoTraining": True, "performHPO": False},
    "campaign": {"minProvisionedTPS": 1},
}


def validate(backend: PersonalizeBackend, service: str, operation: str, params: dict) -> None:
    """The generic model-driven check (localaws.validation), as a PersonalizeError."""
    request = validation.Request(service, operation, backend.account, backend.region)
    try:
        validation.check_request(request, params)
    except validation.RequestRefusedError as failure:
        raise PersonalizeError(failure.code, failure.message) from None


def _respond(service: str, operation: str, result: dict, params: dict) -> dict:
    """The wire form of the result: shaped, paged, and checked when responses are checked."""
    output = validation.service_model(service).operation_model(operation).output_shape
    if output is None:
        return {}
    try:
        wire = _wire(_shaped(paging.page(service, operation, result, params), output))
    except validation.RequestRefusedError as failure:
        raise PersonalizeError(failure.code, failure.message) from None
    if validation.CHECK_RESPONSES:
        validation.check_response(service, operation, wire)
    return wire


def _wire(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _shaped(value: Any, shape) -> Any:
    """Only what the shape declares (a real response has nothing else)."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return {k: _shaped(v, shape.members[k]) for k, v in value.items() if k in shape.members}
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_shaped(v, shape.member) for v in value]
    return value


def handle_control(backend: PersonalizeBackend, operation: str, params: dict) -> dict:
    if operation not in CONTROL.operation_names:
        raise PersonalizeError("UnknownOperationException", f"Unknown operation {operation}")
    validate(backend, "personalize", operation, params)
    faults = backend.faults
    if faults.throttle_next > 0 and faults.throttle_only in (None, operation):
        faults.throttle_next -= 1
        raise PersonalizeError("ThrottlingException", "Rate exceeded")
    return _respond("personalize", operation, _dispatch(backend, operation, params), params)


def _dispatch(backend: PersonalizeBackend, operation: str, params: dict) -> dict:
    verb, noun = re.match(r"([A-Z][a-z]+)(.*)", operation).groups()
    special = _SPECIAL.get(operation)
    if special is not None:
        return special(backend, params)
    if verb == "Create" and noun in _FAMILY_BY_NOUN:
        family = _FAMILY_BY_NOUN[noun]
        request = {**_DEFAULTS.get(family.name, {}), **params}
        resource = backend.create(family.name, request)
        return {family.arn_field: resource.arn}
    if verb == "Describe" and noun in _FAMILY_BY_NOUN:
        family = _FAMILY_BY_NOUN[noun]
        resource = backend.describe(params[family.arn_field], family.name)
        return {family.name: {**resource.fields, **_derived(backend, resource)}}
    if verb == "Delete" and noun in _FAMILY_BY_NOUN:
        family = _FAMILY_BY_NOUN[noun]
        backend.delete(params[family.arn_field], family.name)
        return {}
    if verb == "List" and noun in _PLURAL:
        family = FAMILIES[_PLURAL[noun]]
        filter_arn = next((v for k, v in params.items() if k.endswith("Arn")), None)
        output = CONTROL.operation_model(operation).output_shape
        (key,) = [k for k, v in output.members.items() if v.type_name == "list"]  # `Filters`!
        return {key: [r.fields for r in backend.list(family.name, filter_arn)]}
    raise PersonalizeError("LocalAwsNotImplemented", f"localaws does not implement {operation}")


def _derived(backend: PersonalizeBackend, resource) -> dict:
    """Describe fields computed from other resources (a solution's latest version)."""
    if resource.update is not None:
        return {f"latest{resource.family.name.capitalize()}Update": resource.update_summary()}
    if resource.family.name != "solution":
        return {}
    versions = [
        v for v in backend.list("solutionVersion", resource.arn) if v.fields.get("solutionArn")
    ]
    if not versions:
        return {}
    latest = max(versions, key=lambda v: v.fields["creationDateTime"])
    summary = {k: v for k, v in latest.fields.items() if k != "name"}
    summary.setdefault("trainingMode", "FULL")
    return {"latestSolutionVersion": summary}


def _stop_solution_version(backend: PersonalizeBackend, params: dict) -> dict:
    version = backend.get(params["solutionVersionArn"], "solutionVersion")
    if version.status not in ("CREATE PENDING", "CREATE IN_PROGRESS"):
        raise PersonalizeError(
            "ResourceInUseException",
            f"{version.arn} is {version.status}; only training can be stopped.",
        )
    backend.change_status(version, "CREATE STOPPING", "CREATE STOPPED")
    return {}


def _recommender_state(passing: str, final: str, allowed: tuple[str, ...]):
    def change(backend: PersonalizeBackend, params: dict) -> dict:
        recommender = backend.get(params["recommenderArn"], "recommender")
        if recommender.status not in allowed:
            raise PersonalizeError(
                "ResourceInUseException", f"{recommender.arn} is {recommender.status}."
            )
        backend.change_status(recommender, passing, final)
        return {"recommenderArn": recommender.arn}

    return change


def _update(family: str, fields: tuple[str, ...]):
    """UpdateCampaign / UpdateRecommender: the change has a lifecycle of its own (latest*Update);
    the resource stays ACTIVE and serves its old configuration until the update is ACTIVE."""

    def update(backend: PersonalizeBackend, params: dict) -> dict:
        arn_field = FAMILIES[family].arn_field
        resource = backend.get(params[arn_field], family)
        if resource.status not in (ACTIVE, "CREATE FAILED"):
            raise PersonalizeError(
                "ResourceInUseException", f"{resource.arn} is {resource.status}."
            )
        backend.start_update(resource, {k: v for k, v in params.items() if k in fields})
        return {arn_field: resource.arn}

    return update


def _metrics(backend: PersonalizeBackend, params: dict) -> dict:
    version = backend.describe(params["solutionVersionArn"], "solutionVersion")
    if version.status != ACTIVE:
        raise PersonalizeError("ResourceInUseException", f"{version.arn} is {version.status}.")
    return {"solutionVersionArn": version.arn, "metrics": version.metrics}


def _recipes(backend: PersonalizeBackend, params: dict) -> dict:
    names = {**standins.USER_RECIPES, **standins.ITEM_RECIPES}
    return {
        "recipes": [
            {"name": n, "recipeArn": f"arn:aws:personalize:::recipe/{n}", "status": ACTIVE}
            for n in names
        ]
    }


def _describe_recipe(backend: PersonalizeBackend, params: dict) -> dict:
    name = params["recipeArn"].rsplit("/", 1)[-1]
    try:
        stand_in = standins.stand_in_for(name)
    except ValueError:
        raise PersonalizeError(
            "ResourceNotFoundException", f"Could not find recipe {params['recipeArn']}"
        ) from None
    return {
        "recipe": {
            "name": name,
            "recipeArn": params["recipeArn"],
            "status": ACTIVE,
            "description": f"localaws stand-in: {stand_in}",
        }
    }


def _create_event_tracker(backend: PersonalizeBackend, params: dict) -> dict:
    resource = backend.create(
        "eventTracker", {**params, "trackingId": f"localaws-{len(backend.resources)}"}
    )
    return {"eventTrackerArn": resource.arn, "trackingId": resource.fields["trackingId"]}


def _resource_for_tags(backend: PersonalizeBackend, arn: str):
    resource = backend.resources.get(arn)
    if resource is None or resource.deleted:
        raise PersonalizeError("ResourceNotFoundException", f"Could not find resource {arn}")
    return resource


def _tag(backend: PersonalizeBackend, params: dict) -> dict:
    resource = _resource_for_tags(backend, params["resourceArn"])
    tags = {**resource.tags, **{t["tagKey"]: t["tagValue"] for t in params["tags"]}}
    if len(tags) > MAX_TAGS:
        raise PersonalizeError(
            "TooManyTagsException", f"{resource.arn} would have {len(tags)} tags; at most 50."
        )
    resource.tags = tags
    return {}


def _untag(backend: PersonalizeBackend, params: dict) -> dict:
    resource = _resource_for_tags(backend, params["resourceArn"])
    for key in params["tagKeys"]:
        resource.tags.pop(key, None)
    return {}


def _list_tags(backend: PersonalizeBackend, params: dict) -> dict:
    resource = _resource_for_tags(backend, params["resourceArn"])
    return {"tags": [{"tagKey": k, "tagValue": v} for k, v in resource.tags.items()]}


def _metric_attribution_metrics(backend: PersonalizeBackend, params: dict) -> dict:
    attribution = backend.get(params["metricAttributionArn"], "metricAttribution")
    return {"metrics": attribution.fields.get("metrics", [])}


def _update_metric_attribution(backend: PersonalizeBackend, params: dict) -> dict:
    attribution = backend.get(params["metricAttributionArn"], "metricAttribution")
    if attribution.status != ACTIVE:
        raise PersonalizeError(
            "ResourceInUseException", f"{attribution.arn} is {attribution.status}."
        )
    removed = set(params.get("removeMetrics") or [])
    metrics = [m for m in attribution.fields.get("metrics", []) if m["metricName"] not in removed]
    names = {m["metricName"] for m in metrics}
    for metric in params.get("addMetrics") or []:
        if metric["metricName"] in names:
            raise PersonalizeError(
                "ResourceAlreadyExistsException", f"Metric {metric['metricName']} already exists."
            )
        metrics.append(metric)
    attribution.fields["metrics"] = metrics
    if "metricsOutputConfig" in params:
        attribution.fields["metricsOutputConfig"] = params["metricsOutputConfig"]
    return {"metricAttributionArn": attribution.arn}


_SPECIAL = {
    "TagResource": _tag,
    "UntagResource": _untag,
    "ListTagsForResource": _list_tags,
    "ListMetricAttributionMetrics": _metric_attribution_metrics,
    "UpdateMetricAttribution": _update_metric_attribution,
    "StopSolutionVersionCreation": _stop_solution_version,
    "StopRecommender": _recommender_state("STOP IN_PROGRESS", "INACTIVE", (ACTIVE,)),
    "StartRecommender": _recommender_state("START IN_PROGRESS", ACTIVE, ("INACTIVE",)),
    "UpdateCampaign": _update(
        "campaign", ("solutionVersionArn", "minProvisionedTPS", "campaignConfig")
    ),
    "UpdateRecommender": _update("recommender", ("recommenderConfig",)),
    "GetSolutionMetrics": _metrics,
    "ListRecipes": _recipes,
    "DescribeRecipe": _describe_recipe,
    "CreateEventTracker": _create_event_tracker,
}


def handle_runtime(backend: PersonalizeBackend, operation: str, params: dict) -> dict:
    return _respond("personalize-runtime", operation, _runtime(backend, operation, params), params)


def _runtime(backend: PersonalizeBackend, operation: str, params: dict) -> dict:
    validate(backend, "personalize-runtime", operation, params)
    arn = params.get("campaignArn") or params.get("recommenderArn")
    if arn is None:
        raise PersonalizeError(
            "InvalidInputException", "Provide a campaignArn or a recommenderArn."
        )
    if operation == "GetRecommendations":
        pairs = backend.recommend(
            arn,
            params.get("userId"),
            params.get("itemId"),
            int(params.get("numResults", 25)),
            params.get("filterArn"),
        )
        items = [{"itemId": item, "score": score} for item, score in pairs]
        return {"itemList": items, "recommendationId": f"localaws-{backend.model_of(arn).stand_in}"}
    if operation == "GetPersonalizedRanking":
        model = backend.model_of(arn)
        scores = model.user_scores(params["userId"])
        index = model.item_ids.get_indexer(params["inputList"])
        ranked = sorted(
            zip(params["inputList"], index, strict=True),
            key=lambda p: -scores[p[1]] if p[1] >= 0 else float("inf"),
        )
        return {
            "personalizedRanking": [
                {"itemId": item, "score": float(scores[i]) if i >= 0 else 0.0} for item, i in ranked
            ],
            "recommendationId": f"localaws-{model.stand_in}",
        }
    raise PersonalizeError("LocalAwsNotImplemented", f"localaws does not implement {operation}")


def runtime_operation(path: str) -> str:
    return {
        "/recommendations": "GetRecommendations",
        "/personalize-ranking": "GetPersonalizedRanking",
    }.get(path.rstrip("/"), path)


def error_body(err: PersonalizeError) -> str:
    return json.dumps({"__type": err.code, "message": err.message})

"""Room in the account for what the run creates: Amazon Personalize's quotas, checked before
anything is billed, so a run does not train for an hour and then fail on a full account.

Each quota's value is the account's own when Service Quotas answers for Personalize (the quota
found by its name in ListAWSDefaultServiceQuotas, then GetServiceQuota for the value applied to
the account, the AWS default when none is applied), otherwise the default documented on the
limits page (`LIMITS_DOC`). `checks` says which source each value came from.

What is counted against each quota: the account's dataset groups in the region (the stack's own
group, when it exists, needs no new slot), and in the stack's group the config's solutions,
filters, campaigns and recommenders together with those already there under other names (left
over from an earlier config). Resources whose creation failed hold no slot. Transient quotas
(trainings or imports in progress at once) are not refused here: the steps retry
LimitExceededException with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .errors import QuotaExceededError

LIMITS_DOC = "https://docs.aws.amazon.com/personalize/latest/dg/limits.html"
SERVICE_CODE = "personalize"
NO_SLOT = ("CREATE FAILED",)  # statuses that hold no slot


@dataclass(frozen=True)
class Quota:
    key: str  # the plan's family ("datasetGroup", "solutions", ...), and the key in `checks`
    name: str  # the quota's name in Service Quotas, matched without regard to case
    documented: int  # the default on the limits page (LIMITS_DOC)
    field: str  # the config field whose entries take the slots
    list_call: str  # the Personalize List call that finds what is already there


DATASET_GROUPS = Quota("datasetGroup", "Active dataset groups", 5, "prefix", "list_dataset_groups")
PER_GROUP = (
    Quota(
        "solutions",
        "Active solutions per dataset group",
        10,
        "personalize.solutions",
        "list_solutions",
    ),
    Quota("filters", "Active filters per dataset group", 30, "personalize.filters", "list_filters"),
    Quota(
        "campaigns",
        "Active campaigns per dataset group",
        5,
        "personalize.campaigns",
        "list_campaigns",  # by solution: every solution of the group is asked
    ),
    Quota(
        "recommenders",
        "Recommenders per dataset group",
        5,
        "personalize.recommenders",
        "list_recommenders",
    ),
)


def check_quotas(personalize: Any, service_quotas: Any, plan: dict, region: str) -> dict:
    """Each quota, its value and source, what is used and what is used after the run; raises
    QuotaExceededError naming the quota, the config field and the fix."""
    limits = quota_values(service_quotas, (DATASET_GROUPS, *PER_GROUP))
    groups = listing(personalize, DATASET_GROUPS.list_call)
    group_name = plan["datasetGroup"]["name"]
    ours = next((g for g in groups if g["name"] == group_name), None)
    used = [g["name"] for g in groups if g.get("status") not in NO_SLOT]
    checks = {DATASET_GROUPS.key: usage(limits[DATASET_GROUPS.key], used, [group_name])}
    if checks[DATASET_GROUPS.key]["afterRun"] > checks[DATASET_GROUPS.key]["limit"]:
        limit, source = limits[DATASET_GROUPS.key]
        raise QuotaExceededError(
            f"Amazon Personalize: the account has {len(used)} active dataset groups in {region} "
            f"({sorted(used)[:10]}) and this stack's, {group_name}, does not exist yet: one more "
            f"is above the quota of {limit} ({source}). Delete a dataset group that is no longer "
            f"needed, or request an increase of '{DATASET_GROUPS.name}' in the Service Quotas "
            f"console ({LIMITS_DOC})"
        )
    existing = _in_group(personalize, ours["datasetGroupArn"]) if ours else {}
    for quota in PER_GROUP:
        wanted = [entry["name"] for entry in plan[quota.key]]
        found = existing.get(quota.key, [])
        checks[quota.key] = usage(limits[quota.key], found, wanted)
        if checks[quota.key]["afterRun"] > checks[quota.key]["limit"]:
            raise QuotaExceededError(_over_group_quota(quota, limits, found, wanted, group_name))
    return checks


def usage(limit: tuple[int, str], used: list[str], wanted: list[str]) -> dict[str, Any]:
    """The quota (value, source), the slots in use, and the slots in use once the run created
    what it wants (what is there already takes no new slot)."""
    return {
        "limit": limit[0],
        "source": limit[1],
        "used": len(used),
        "afterRun": len(set(used) | set(wanted)),
    }


def _over_group_quota(
    quota: Quota, limits: dict, found: list[str], wanted: list[str], group: str
) -> str:
    limit, source = limits[quota.key]
    others = sorted(set(found) - set(wanted))
    return (
        f"{quota.field}: {len(wanted)} in the config"
        + (f" and {len(others)} more already in the group ({others[:10]})" if others else "")
        + f" make {len(set(found) | set(wanted))} {quota.name.lower()} ({group}), above the "
        f"quota of {limit} ({source}). "
        + ("Delete those left over, or " if others else "")
        + f"use fewer entries in {quota.field}, or request an increase of '{quota.name}' in the "
        f"Service Quotas console ({LIMITS_DOC})"
    )


def _in_group(personalize: Any, group_arn: str) -> dict[str, list[str]]:
    """The names of what already holds a slot in the group, by family."""
    found: dict[str, list[str]] = {}
    solutions = listing(personalize, "list_solutions", datasetGroupArn=group_arn)
    for quota in PER_GROUP:
        if quota.list_call == "list_campaigns":
            items = [
                campaign
                for solution in solutions
                for campaign in listing(
                    personalize, quota.list_call, solutionArn=solution["solutionArn"]
                )
            ]
        elif quota.list_call == "list_solutions":
            items = solutions
        else:
            items = listing(personalize, quota.list_call, datasetGroupArn=group_arn)
        found[quota.key] = [i["name"] for i in items if i.get("status") not in NO_SLOT]
    return found


def listing(client: Any, call: str, **params: Any) -> list[dict]:
    """Every item of a List call, all pages (the call's one list member)."""
    result = client.get_paginator(call).paginate(**params).build_full_result()
    return next(value for value in result.values() if isinstance(value, list))


def quota_values(service_quotas: Any, quotas: tuple[Quota, ...]) -> dict[str, tuple[int, str]]:
    """quota key -> (value, where it came from)."""
    documented = {q.key: (q.documented, f"documented default, {LIMITS_DOC}") for q in quotas}
    try:
        defaults = listing(
            service_quotas, "list_aws_default_service_quotas", ServiceCode=SERVICE_CODE
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "error")
        return {
            key: (value, f"{source} (Service Quotas answered {code})")
            for key, (value, source) in documented.items()
        }
    by_name = {entry["QuotaName"].lower(): entry for entry in defaults}
    values = {}
    for quota in quotas:
        entry = by_name.get(quota.name.lower())
        if entry is None:
            value, source = documented[quota.key]
            values[quota.key] = (value, f"{source} (no Service Quotas entry '{quota.name}')")
            continue
        values[quota.key] = _applied(service_quotas, entry)
    return values


def _applied(service_quotas: Any, entry: dict) -> tuple[int, str]:
    """The value applied to the account, or the AWS default when none is."""
    try:
        applied = service_quotas.get_service_quota(
            ServiceCode=SERVICE_CODE, QuotaCode=entry["QuotaCode"]
        )["Quota"]
        return int(applied["Value"]), f"Service Quotas {entry['QuotaCode']}, applied"
    except ClientError:
        return int(entry["Value"]), f"Service Quotas {entry['QuotaCode']}, AWS default"

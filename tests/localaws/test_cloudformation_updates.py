"""CloudFormation stack updates as AWS runs them: new first, old in cleanup, failures rolled back."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.localaws import cfn
from tests.localaws.fidelity import Behaviour, rows

GUIDE = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide"
BEHAVIORS = f"{GUIDE}/using-cfn-updating-stacks-update-behaviors.html"
MONITOR = f"{GUIDE}/using-cfn-updating-stacks-monitor-stack.html"
STATUS_CODES = f"{GUIDE}/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes"


def _deployed(account, name: str, resources: dict, outputs: dict | None = None):
    """A recorder, a CloudFormation client and the id of a stack created with these resources."""
    recorder = cfn.Recorder(account, Path(tempfile.mkdtemp()) / "requests.jsonl", f"r-{name}")
    client = account.client("cloudformation")
    body = cfn.template(resources(recorder.arn), outputs)
    stack_id = client.create_stack(StackName=name, TemplateBody=body)["StackId"]
    assert cfn.settled(client, stack_id)["StackStatus"] == "CREATE_COMPLETE"
    return recorder, client, stack_id


def _update(client, stack_id: str, resources: dict, outputs: dict | None = None) -> dict:
    client.update_stack(StackName=stack_id, TemplateBody=cfn.template(resources, outputs))
    return cfn.settled(client, stack_id)


def removing_a_custom_resource_deletes_it_in_cleanup(account) -> None:
    recorder, client, stack_id = _deployed(
        account, "live", lambda token: {"Old": cfn.custom(token, "Custom::EmptyBuckets")}
    )
    stack = _update(
        client,
        stack_id,
        {"Fresh": {"Type": "AWS::S3::Bucket"}, "New": cfn.custom(recorder.arn, Echo="n")},
    )
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert recorder.kinds() == [("Create", "Old"), ("Create", "New"), ("Delete", "Old")]
    delete = recorder.requests()[-1]
    assert delete["StackStatus"] == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    fresh = client.describe_stack_resource(StackName=stack_id, LogicalResourceId="Fresh")
    assert fresh["StackResourceDetail"]["PhysicalResourceId"] in delete["Buckets"]
    assert cfn.stack_statuses(client, stack_id)[-3:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_COMPLETE",
    ]


def removed_resources_go_in_dependency_order(account) -> None:
    def resources(token: str) -> dict:
        return {
            "Base": cfn.custom(token),
            "Middle": cfn.custom(token, Needs={"Ref": "Base"}),
            "Top": cfn.custom(token, Needs={"Fn::GetAtt": ["Middle", "Echo"]}),
        }

    recorder, client, stack_id = _deployed(account, "layers", resources)
    assert recorder.kinds() == [("Create", "Base"), ("Create", "Middle"), ("Create", "Top")]
    stack = _update(client, stack_id, {"Other": {"Type": "AWS::S3::Bucket"}})
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert recorder.kinds()[3:] == [("Delete", "Top"), ("Delete", "Middle"), ("Delete", "Base")]


def a_new_physical_id_replaces_and_deletes_the_old_in_cleanup(account) -> None:
    recorder, client, stack_id = _deployed(
        account, "replaced", lambda token: {"Thing": cfn.custom(token, Physical="one", Echo="1")}
    )
    stack = _update(client, stack_id, {"Thing": cfn.custom(recorder.arn, Physical="two", Echo="2")})
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    update, delete = recorder.requests()[1:]
    assert (update["RequestType"], update["PhysicalResourceId"]) == ("Update", "one")
    assert update["OldProperties"]["Echo"] == "1"
    assert (delete["RequestType"], delete["PhysicalResourceId"]) == ("Delete", "one")
    assert delete["Properties"]["Echo"] == "1"  # the old resource's own properties
    assert delete["StackStatus"] == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    thing = client.describe_stack_resource(StackName=stack_id, LogicalResourceId="Thing")
    assert thing["StackResourceDetail"]["PhysicalResourceId"] == "two"


def a_failed_update_rolls_back(account) -> None:
    outputs = {"Echo": {"Value": {"Fn::GetAtt": ["Kept", "Echo"]}}}
    recorder, client, stack_id = _deployed(
        account, "rolled", lambda token: {"Kept": cfn.custom(token, Echo="before")}, outputs
    )
    stack = _update(
        client,
        stack_id,
        {
            "Kept": cfn.custom(recorder.arn, Echo="after"),
            "Added": cfn.custom(recorder.arn, Fail="Create", Needs={"Ref": "Kept"}),
        },
        outputs,
    )
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"] == "before"
    seen = [
        (r["RequestType"], r["LogicalResourceId"], r["StackStatus"]) for r in recorder.requests()
    ]
    assert seen[1:] == [
        ("Update", "Kept", "UPDATE_IN_PROGRESS"),
        ("Create", "Added", "UPDATE_IN_PROGRESS"),
        ("Update", "Kept", "UPDATE_ROLLBACK_IN_PROGRESS"),
        ("Delete", "Added", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"),
    ]
    back = recorder.requests()[3]
    assert (back["Properties"]["Echo"], back["OldProperties"]["Echo"]) == ("before", "after")
    reasons = [
        e.get("ResourceStatusReason") or ""
        for e in client.describe_stack_events(StackName=stack_id)["StackEvents"]
        if e["ResourceStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
    ]
    assert reasons == ["The following resource(s) failed to create: [Added]. "]
    resources = client.describe_stack_resources(StackName=stack_id)["StackResources"]
    assert [r["LogicalResourceId"] for r in resources] == ["Kept"]


def a_delete_keeps_what_a_failed_delete_still_needs(account) -> None:
    def resources(token: str) -> dict:
        return {
            "Base": cfn.custom(token),
            "Stuck": cfn.custom(token, Fail="Delete", Needs={"Ref": "Base"}),
            "Free": cfn.custom(token),
        }

    recorder, client, stack_id = _deployed(account, "stuck", resources)
    client.delete_stack(StackName="stuck")
    stack = cfn.settled(client, stack_id)
    assert stack["StackStatus"] == "DELETE_FAILED"
    deleted = [logical for kind, logical in recorder.kinds() if kind == "Delete"]
    assert sorted(deleted) == ["Free", "Stuck"]  # Base is still needed by Stuck
    assert stack["StackStatusReason"] == "The following resource(s) failed to delete: [Stuck]. "
    remaining = client.describe_stack_resources(StackName=stack_id)["StackResources"]
    assert sorted(r["LogicalResourceId"] for r in remaining) == ["Base", "Stuck"]


UPDATES = [
    Behaviour(
        "cfn-update-removed-custom-resource-deleted-in-cleanup",
        f"{MONITOR}; {STATUS_CODES} (UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: ongoing removal of old "
        "resources after a successful stack update)",
        removing_a_custom_resource_deletes_it_in_cleanup,
    ),
    Behaviour(
        "cfn-update-removed-resources-dependency-order",
        f"{GUIDE}/aws-attribute-dependson.html (deleted in the reverse order of creation)",
        removed_resources_go_in_dependency_order,
    ),
    Behaviour(
        "cfn-custom-resource-replacement-deletes-old-in-cleanup",
        f"{GUIDE}/crpg-ref-responses.html (a different PhysicalResourceId is a replacement: a "
        f"delete request to the old resource); {BEHAVIORS} (replacement: create, then delete)",
        a_new_physical_id_replaces_and_deletes_the_old_in_cleanup,
    ),
    Behaviour(
        "cfn-update-failure-rolls-back",
        f"{MONITOR} (Events generated when a resource update fails); {STATUS_CODES} "
        "(UPDATE_ROLLBACK_IN_PROGRESS, UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS)",
        a_failed_update_rolls_back,
    ),
    Behaviour(
        "cfn-delete-failure-keeps-dependencies",
        f"{STATUS_CODES} (DELETE_FAILED: some resources might still be running); "
        f"{GUIDE}/aws-attribute-dependson.html",
        a_delete_keeps_what_a_failed_delete_still_needs,
    ),
]


@rows(*UPDATES)
def test_updates(behaviour, account):
    behaviour.check(account)

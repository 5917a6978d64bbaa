"""CloudFormation custom resource: empty the stack's buckets when the stack is deleted.

S3 refuses to delete a bucket that still holds objects (or object versions), so without this
`cdk destroy` would fail or leave data behind. Create and Update do nothing.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import boto3

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; returns how many were deleted."""
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    try:
        pages = list(paginator.paginate(Bucket=bucket))
    except s3.exceptions.NoSuchBucket:
        LOG.info("bucket %s is already gone", bucket)
        return 0
    for page in pages:
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            errors = response.get("Errors", [])
            if errors:
                raise RuntimeError(
                    f"could not delete {len(errors)} objects in {bucket}: {errors[:3]}"
                )
            deleted += len(batch)
    LOG.info("emptied %s: %d object versions deleted", bucket, deleted)
    return deleted


def handler(event: dict, context: Any) -> dict:
    status, reason, data = "SUCCESS", "", {}
    try:
        if event["RequestType"] == "Delete":
            s3 = boto3.client("s3")
            buckets = event["ResourceProperties"].get("BucketNames", [])
            data = {name: str(empty_bucket(s3, name)) for name in buckets}
    except Exception as err:  # CloudFormation must hear back, or the stack waits an hour
        LOG.exception("emptying buckets failed")
        status, reason = "FAILED", f"{type(err).__name__}: {err}"
    return _respond(event, context, status, reason, data)


def _respond(event: dict, context: Any, status: str, reason: str, data: dict) -> dict:
    body = {
        "Status": status,
        "Reason": reason or f"see log stream {getattr(context, 'log_stream_name', '?')}",
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    url = event.get("ResponseURL")
    if url:
        encoded = json.dumps(body).encode()
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"ResponseURL is not an HTTP(S) URL: {url[:40]}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=encoded, method="PUT", headers={"Content-Type": ""}
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - scheme checked above
            pass
    return body

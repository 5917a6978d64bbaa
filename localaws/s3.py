"""Local S3 objects by s3:// URI, read and written straight in moto's S3 backend.

The emulated services (SageMaker jobs, Personalize imports and batch jobs) read their inputs and
write their outputs here, as the real ones do in S3, without going through HTTP.
"""

from __future__ import annotations

from moto.s3.models import s3_backends


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def objects_under(account: str, uri: str) -> list[tuple[str, bytes]]:
    """(key, body) of the object at the URI or every object under it as a prefix, in key order."""
    bucket_name, prefix = split_uri(uri)
    bucket = s3_backends[account]["aws"].get_bucket(bucket_name)
    return [
        (name, key.value)
        for name, key in sorted(bucket.keys.items())
        if name.startswith(prefix) and not name.endswith("/")
    ]


def put(account: str, uri: str, body: bytes) -> None:
    bucket_name, key = split_uri(uri)
    s3_backends[account]["aws"].put_object(bucket_name, key, body)

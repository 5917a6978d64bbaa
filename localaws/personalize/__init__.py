"""Amazon Personalize for the local account.

Gap closed (moto 5.2.5): moto implements only create/describe/list/delete_schema, no
CloudFormation types, and no Personalize Runtime. Here every control-plane operation a workflow
uses and the runtime's GetRecommendations / GetPersonalizedRanking are served (backend.py, api.py),
with recipe stand-ins that really train (standins.py). `backend_for(account, region).faults`
injects throttling and failed solution versions.
"""

from __future__ import annotations

import contextlib
import json
import re
from urllib.parse import urlparse

from moto.backend_index import backend_url_patterns
from moto.core import DEFAULT_ACCOUNT_ID
from moto.personalize import urls as personalize_urls
from moto.s3.models import s3_backends

from localaws.personalize.api import error_body, handle_control, handle_runtime, runtime_operation
from localaws.personalize.backend import PersonalizeBackend, PersonalizeError

RUNTIME_URL = r"https?://personalize-runtime\.(.+)\.amazonaws\.com"
_BACKENDS: dict[tuple[str, str], PersonalizeBackend] = {}
_JSON = {"Content-Type": "application/x-amz-json-1.1"}


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read_s3(account: str):
    def read(uri: str, with_keys: bool = False):
        bucket_name, prefix = _split(uri)
        bucket = s3_backends[account]["aws"].get_bucket(bucket_name)
        found = [
            (name, key.value)
            for name, key in sorted(bucket.keys.items())
            if (
                name == prefix
                or name.startswith(prefix.rstrip("/") + "/")
                or (prefix.endswith("/") and name.startswith(prefix))
            )
            and not name.endswith("/")
        ]
        return found if with_keys else [body for _, body in found]

    return read


def _write_s3(account: str):
    def write(uri: str, body: bytes) -> None:
        bucket, key = _split(uri)
        s3_backends[account]["aws"].put_object(bucket, key, body)

    return write


def backend_for(account: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> PersonalizeBackend:
    key = (account, region)
    if key not in _BACKENDS:
        _BACKENDS[key] = PersonalizeBackend(account, region, _read_s3(account), _write_s3(account))
    return _BACKENDS[key]


def _region(headers) -> str:
    match = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/", headers.get("Authorization", ""))
    return match.group(1) if match else "us-east-1"


def _body(request) -> dict:
    raw = getattr(request, "data", None)  # werkzeug-style requests (moto's normalised form)
    if raw is None:
        raw = getattr(request, "body", None)
    if hasattr(raw, "read"):
        raw = raw.read()
    if isinstance(raw, bytes):
        raw = raw.decode()
    return json.loads(raw or "{}")


def _respond(call):
    try:
        return 200, dict(_JSON), json.dumps(call())
    except PersonalizeError as err:
        status = 404 if err.code == "ResourceNotFoundException" else 400
        return status, dict(_JSON), error_body(err)


def control_dispatch(request, full_url: str, headers):
    operation = headers.get("X-Amz-Target", "").split(".")[-1]
    backend = backend_for(DEFAULT_ACCOUNT_ID, _region(headers))
    return _respond(lambda: handle_control(backend, operation, _body(request)))


def runtime_dispatch(request, full_url: str, headers):
    operation = runtime_operation(urlparse(full_url).path)
    backend = backend_for(DEFAULT_ACCOUNT_ID, _region(headers))
    return _respond(lambda: handle_runtime(backend, operation, _body(request)))


@contextlib.contextmanager
def install():
    saved_paths, saved_bases = dict(personalize_urls.url_paths), list(personalize_urls.url_bases)
    pattern = ("personalize", re.compile(RUNTIME_URL))
    personalize_urls.url_paths.clear()
    personalize_urls.url_paths.update(
        {
            "{0}/$": control_dispatch,
            "{0}/recommendations$": runtime_dispatch,
            "{0}/personalize-ranking$": runtime_dispatch,
        }
    )
    personalize_urls.url_bases.append(RUNTIME_URL)
    backend_url_patterns.append(pattern)
    _BACKENDS.clear()
    try:
        yield
    finally:
        personalize_urls.url_paths.clear()
        personalize_urls.url_paths.update(saved_paths)
        personalize_urls.url_bases[:] = saved_bases
        backend_url_patterns.remove(pattern)
        _BACKENDS.clear()

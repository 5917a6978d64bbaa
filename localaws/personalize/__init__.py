"""Amazon Personalize for the local account.

Gap closed (moto 5.2.5): moto implements only create/describe/list/delete_schema, no
CloudFormation types, and no Personalize Runtime. Here every control-plane operation a workflow
uses and the runtime's GetRecommendations / GetPersonalizedRanking are served (backend.py, api.py),
with recipe stand-ins that really train (standins.py). `backend_for(account, region).faults`
injects throttling and failed solution versions.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from urllib.parse import urlparse

from moto.backend_index import backend_url_patterns
from moto.core import DEFAULT_ACCOUNT_ID
from moto.personalize import urls as personalize_urls

from localaws import clock, s3
from localaws.personalize.api import error_body, handle_control, handle_runtime, runtime_operation
from localaws.personalize.backend import PersonalizeBackend, PersonalizeError

RUNTIME_URL = r"https?://personalize-runtime\.(.+)\.amazonaws\.com"
_BACKENDS: dict[tuple[str, str], PersonalizeBackend] = {}
_JSON = {"Content-Type": "application/x-amz-json-1.1"}


def backend_for(account: str = DEFAULT_ACCOUNT_ID, region: str = "us-east-1") -> PersonalizeBackend:
    key = (account, region)
    if key not in _BACKENDS:
        _BACKENDS[key] = PersonalizeBackend(
            account,
            region,
            functools.partial(s3.objects_under, account),
            functools.partial(s3.put, account),
        )
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
        with clock.holding():  # a request being answered is work: the clock waits for it
            return 200, dict(_JSON), json.dumps(call())
    except PersonalizeError as err:
        status = 400  # every Personalize error, ResourceNotFoundException included
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

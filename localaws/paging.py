"""List calls that page as AWS pages them, from botocore's paginator model.

Gap closed: localaws's own services (Personalize) returned every item at once and ignored
`maxResults` and `nextToken`. `page()` cuts any operation's result by its paginator config
(input token, limit key, result key): at most `maxResults` items, a `nextToken` while more
remain, and an unknown or foreign token refused with the operation's declared token error.
"""

from __future__ import annotations

import base64
import functools
import json

import botocore.session

from localaws.validation import RequestRefusedError, invalid_token_code

DEFAULT_PAGE = 100  # the largest maxResults these services accept, and their default


@functools.cache
def _paginators(service: str) -> dict:
    try:
        model = botocore.session.get_session().get_paginator_model(service)
    except Exception:  # a service without paginators
        return {}
    return model._paginator_config


def _encode(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([operation, offset]).encode()).decode()


def _decode(service: str, operation: str, token: str) -> int:
    try:
        named, offset = json.loads(base64.urlsafe_b64decode(token.encode()))
        if named == operation and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError):
        pass
    raise RequestRefusedError(invalid_token_code(service, operation), "Invalid next token.")


def page(service: str, operation: str, result: dict, params: dict) -> dict:
    """The page of the result the request asked for, with a token while more remain."""
    config = _paginators(service).get(operation)
    if not config or not isinstance(config.get("result_key"), str):
        return result
    key, items = config["result_key"], result.get(config["result_key"])
    if not isinstance(items, list):
        return result
    token = params.get(config["input_token"])
    start = _decode(service, operation, token) if token else 0
    end = start + int(params.get(config.get("limit_key", ""), 0) or DEFAULT_PAGE)
    paged = {**result, key: items[start:end]}
    if end < len(items):
        paged[config["output_token"]] = _encode(operation, end)
    return paged

"""`account`: the local account, or a real one for `aws` rows when RECOPS_REAL_AWS=1."""

from __future__ import annotations

import boto3
import pytest

from localaws import LocalAccount
from tests.localaws.fidelity import REAL_AWS


class RealAccount:
    """The caller's own AWS account (credentials and region from the environment)."""

    clock = faults = None

    def client(self, service: str):
        return boto3.client(service)


@pytest.fixture
def account(request):
    if REAL_AWS:
        if request.node.get_closest_marker("aws") is None:
            pytest.skip("local-only row (RECOPS_REAL_AWS=1 runs the aws rows)")
        yield RealAccount()
        return
    with LocalAccount() as local:
        yield local


@pytest.fixture
def server(tmp_path, monkeypatch):
    """`python -m localaws start` with its own state file: (the server module, its environment)."""
    from localaws import server as localaws_server

    monkeypatch.setattr(localaws_server, "STATE", tmp_path / "server.json")
    state = localaws_server.start()
    try:
        yield localaws_server, localaws_server.environment(state["port"])
    finally:
        localaws_server.stop()

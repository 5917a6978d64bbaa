"""The bucket-emptying custom resource against moto's S3."""

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from moto import mock_aws

from tests.conftest import REPO


def _load_handler():
    path = REPO / "lambdas" / "empty_buckets" / "handler.py"
    spec = importlib.util.spec_from_file_location("empty_buckets_handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(request_type, buckets, url=None):
    return {
        "RequestType": request_type,
        "ResourceProperties": {"BucketNames": buckets},
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "RequestId": "r1",
        "LogicalResourceId": "EmptyOnDelete",
        "ResponseURL": url,
    }


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="versioned")
        client.put_bucket_versioning(
            Bucket="versioned", VersioningConfiguration={"Status": "Enabled"}
        )
        for i in range(3):
            client.put_object(Bucket="versioned", Key="a", Body=str(i).encode())
        client.delete_object(Bucket="versioned", Key="a")  # a delete marker too
        client.create_bucket(Bucket="plain")
        client.put_object(Bucket="plain", Key="b", Body=b"x")
        yield client


def test_delete_empties_every_version_so_the_bucket_can_go(s3, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    body = _load_handler().handler(_event("Delete", ["versioned", "plain", "gone"]), None)
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {"versioned": "4", "plain": "1", "gone": "0"}
    for bucket in ("versioned", "plain"):
        s3.delete_bucket(Bucket=bucket)  # raises BucketNotEmpty if anything was left


def test_create_leaves_objects_and_answers_cloudformation(s3, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    received = []

    class Capture(BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/response"
    _load_handler().handler(_event("Create", ["plain"], url), None)
    thread.join(timeout=10)
    server.server_close()
    assert len(received) == 1
    assert received[0]["Status"] == "SUCCESS"
    assert s3.list_objects_v2(Bucket="plain")["KeyCount"] == 1

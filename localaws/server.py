"""`python -m localaws start | stop | status | env | serve`: the local account as a server.

`start` runs `serve` in the background on a free localhost port and prints the environment
variables that point the AWS CLI, boto3 and the CDK CLI at it (`eval` its output). `status` lists
every resource of every service the product uses, the CDK bootstrap's apart from the rest, so
"nothing of the stack is left" can be shown. `stop` ends it and prints the `unset` line for those
variables (`eval` it too); `env [--unset]` prints either line again. The server's state file is
per checkout: `.localaws/server.json` beside this package (gitignored), or $LOCALAWS_STATE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def state_file() -> Path:
    """Where `start` records the running server: per checkout unless $LOCALAWS_STATE says."""
    return Path(os.environ.get("LOCALAWS_STATE", CHECKOUT / ".localaws" / "server.json"))


STATE = state_file()
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(port: int) -> dict[str, str]:
    # `localhost`, not 127.0.0.1: moto reads an IP host in a template URL as a bucket name.
    return {
        "AWS_ENDPOINT_URL": f"http://localhost:{port}",
        "AWS_ACCESS_KEY_ID": "localaws",
        "AWS_SECRET_ACCESS_KEY": "localaws",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": REGION,
        # Node 20 makes jsii and the CDK CLI print an end-of-life banner on every command; the
        # Makefile silences it the same way.
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "NODE_NO_WARNINGS": "1",
    }


def serve(port: int) -> None:
    """Run moto's server with every localaws extension until SIGTERM."""
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from localaws import EXTENSIONS, admin, clock, lambda_runtime, sagemaker, validation

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    clock.reset()
    os.environ["MOTO_PORT"] = str(port)  # moto's Step Functions calls services back through it
    lambda_runtime.ENDPOINT_URL = f"http://localhost:{port}"
    sagemaker.set_local_endpoint(lambda_runtime.ENDPOINT_URL)  # processing jobs may call it
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        for extension in (*EXTENSIONS, admin):
            stack.enter_context(extension.install())
        stack.enter_context(validation.install())
        server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
        server.start()
        print(f"localaws serving on http://localhost:{port}", flush=True)
        stop.wait()
        server.stop()


def start() -> dict:
    if STATE.exists():
        state = json.loads(STATE.read_text())
        if _alive(state["pid"]):
            return state
    port = free_port()
    log = STATE.with_suffix(".log")
    STATE.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "localaws", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localaws server exited: {log.read_text()[-2000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            break
        time.sleep(0.2)
    else:
        process.terminate()
        raise RuntimeError("localaws server did not start within 60 s")
    state = {"pid": process.pid, "port": port, "log": str(log)}
    STATE.write_text(json.dumps(state))
    return state


def stop() -> bool:
    if not STATE.exists():
        return False
    state = json.loads(STATE.read_text())
    STATE.unlink()
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
        for _ in range(50):
            if not _alive(state["pid"]):
                break
            time.sleep(0.1)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def inventory(client) -> dict[str, list[str]]:
    """Every resource the product creates, by service: empty lists mean an empty account."""
    found: dict[str, list[str]] = {}
    s3 = client("s3")
    found["s3 buckets"] = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    stacks = client("cloudformation").describe_stacks().get("Stacks", [])
    found["cloudformation stacks"] = [f"{s['StackName']} ({s['StackStatus']})" for s in stacks]
    found["iam roles"] = [r["RoleName"] for r in client("iam").list_roles().get("Roles", [])]
    found["lambda functions"] = [
        f["FunctionName"] for f in client("lambda").list_functions().get("Functions", [])
    ]
    found["step functions state machines"] = [
        m["name"] for m in client("stepfunctions").list_state_machines().get("stateMachines", [])
    ]
    sagemaker = client("sagemaker")
    found["sagemaker jobs"] = [
        *(
            j["ProcessingJobName"]
            for j in sagemaker.list_processing_jobs().get("ProcessingJobSummaries", [])
        ),
        *(
            j["TrainingJobName"]
            for j in sagemaker.list_training_jobs().get("TrainingJobSummaries", [])
        ),
        *(
            j["TransformJobName"]
            for j in sagemaker.list_transform_jobs().get("TransformJobSummaries", [])
        ),
    ]
    found["sagemaker models"] = [m["ModelName"] for m in sagemaker.list_models().get("Models", [])]
    personalize = client("personalize")
    groups = personalize.list_dataset_groups().get("datasetGroups", [])
    found["personalize dataset groups"] = [g["name"] for g in groups]
    found["personalize schemas"] = [
        s["name"] for s in personalize.list_schemas().get("schemas", [])
    ]
    per_group = {
        "datasets": "list_datasets",
        "solutions": "list_solutions",
        "filters": "list_filters",
        "eventTrackers": "list_event_trackers",
        "recommenders": "list_recommenders",
    }
    for key, call in per_group.items():
        found[f"personalize {key}"] = [
            item["name"]
            for group in groups
            for item in getattr(personalize, call)(datasetGroupArn=group["datasetGroupArn"]).get(
                key, []
            )
        ]
    found["personalize campaigns"] = [
        c["name"] for c in personalize.list_campaigns().get("campaigns", [])
    ]
    found["ssm parameters"] = [
        p["Name"]
        for page in client("ssm").get_paginator("describe_parameters").paginate()
        for p in page.get("Parameters", [])
    ]
    found["ecr repositories"] = [
        r["repositoryName"] for r in client("ecr").describe_repositories().get("repositories", [])
    ]
    found["cloudwatch log groups"] = [
        g["logGroupName"]
        for page in client("logs").get_paginator("describe_log_groups").paginate()
        for g in page.get("logGroups", [])
    ]
    return found


def bootstrap_names(client) -> set[str]:
    """Physical ids of the CDK bootstrap stack's resources: what `cdk destroy` leaves, by design."""
    from botocore.exceptions import ClientError

    try:
        resources = client("cloudformation").describe_stack_resources(StackName="CDKToolkit")
    except ClientError:  # not bootstrapped
        return set()
    return {r["PhysicalResourceId"] for r in resources["StackResources"]}


def report(found: dict[str, list[str]], bootstrap: set[str]) -> list[str]:
    """The status lines: the CDK bootstrap's resources, then everything else, then a verdict."""

    def kept(name: str) -> bool:
        return name in bootstrap or name.startswith("CDKToolkit (")

    lines = ["CDK bootstrap (CDKToolkit; `cdk destroy` keeps it, as in AWS):"]
    lines += [
        f"  {service}: {', '.join(n for n in names if kept(n))}"
        for service, names in found.items()
        if any(kept(n) for n in names)
    ]
    if len(lines) == 1:
        lines.append("  (not bootstrapped)")
    rest = {service: [n for n in names if not kept(n)] for service, names in found.items()}
    lines.append("Everything else:")
    lines += [
        f"  {service}: {len(names)}" + (f"  {', '.join(names)}" if names else "")
        for service, names in rest.items()
    ]
    left = sum(len(names) for names in rest.values())
    if not any(found.values()):
        lines.append("The account is empty.")
    elif not left:
        lines.append("Nothing is left but the CDK bootstrap.")
    else:
        lines.append(f"Left besides the CDK bootstrap: {left} resource(s), listed above.")
    return lines


def unset_line() -> str:
    return "unset " + " ".join(environment(0))


def _admin(target: str, method: str | None, pairs: list[str]) -> int:
    from localaws import admin

    if not STATE.exists():
        print("localaws is not running; start it with: python -m localaws start", file=sys.stderr)
        return 1
    endpoint = environment(json.loads(STATE.read_text())["port"])["AWS_ENDPOINT_URL"]
    try:
        if method is None:  # the clock's time, or what a fault target offers
            method, pairs = ("time" if target == "clock" else "help"), []
        result = admin.post(endpoint, target, method, admin.parse_args(pairs))
    except ValueError as err:
        print(f"localaws: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="start the local account in the background")
    commands.add_parser("stop", help="stop it")
    commands.add_parser("status", help="list every resource in it")
    env_parser = commands.add_parser("env", help="print the export (or --unset) line again")
    env_parser.add_argument("--unset", action="store_true", help="the line that clears them")
    serve_parser = commands.add_parser("serve", help="run it in the foreground")
    serve_parser.add_argument("--port", type=int, default=0)
    for name, text in (("faults", "inject a fault"), ("clock", "read or move virtual time")):
        sub = commands.add_parser(name, help=f"{text} (see localaws/admin.py)")
        if name == "faults":
            sub.add_argument("target", help="personalize | sagemaker")
        sub.add_argument("method", nargs="?", help="omit to list the methods")
        sub.add_argument("args", nargs="*", help="name=value (JSON values)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port or free_port())
        return 0
    if args.command in ("faults", "clock"):
        return _admin(getattr(args, "target", "clock"), args.method, args.args)
    if args.command == "start":
        state = start()
        print(f"# localaws running (pid {state['pid']}); log: {state['log']}")
        for key, value in environment(state["port"]).items():
            print(f"export {key}={value}")
        return 0
    if args.command == "stop":
        print("# localaws stopped" if stop() else "# localaws was not running")
        print("# clear the variables `start` exported (eval this output, or run this line):")
        print(unset_line())
        return 0
    if args.command == "env" and args.unset:
        print(unset_line())
        return 0
    if not STATE.exists():
        print("localaws is not running; start it with: python -m localaws start", file=sys.stderr)
        return 1
    import boto3

    env = environment(json.loads(STATE.read_text())["port"])
    if args.command == "env":
        for key, value in env.items():
            print(f"export {key}={value}")
        return 0
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )

    def client(service: str):
        return session.client(service, endpoint_url=env["AWS_ENDPOINT_URL"])

    print("\n".join(report(inventory(client), bootstrap_names(client))))
    return 0

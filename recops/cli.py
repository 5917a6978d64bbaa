"""`recops`: start the deployed pipeline, follow it, and read its leaderboard and cost.

The command reads the deployment from the stack's CloudFormation outputs and never imports
infra/. It works against whatever account boto3 reaches: a real one, the local server
(`eval "$(python -m localaws start)"` sets AWS_ENDPOINT_URL), or, in tests, a boto3 Session
passed as the click context's `obj`.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from recops import costs, kms_policy, names, prices, render, runs
from recops.config import ConfigError, load_config
from recops.workflow_choice import AUTO, MACHINE_OF, Choice, Workflow, WorkflowError, choose

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "movielens-demo.json"
POLL_SECONDS = 5.0

app = typer.Typer(
    help="Start the recops pipeline of a deployed stack, follow it, read its leaderboard and cost.",
    no_args_is_help=True,
    add_completion=False,
)

STACK_HELP = (
    "The stack's name. Default: the prefix of --config, else of the demo config "
    "(config/movielens-demo.json, stack recops-demo)."
)
Stack = Annotated[str | None, typer.Option("--stack", help=STACK_HELP)]
Region = Annotated[
    str | None,
    typer.Option("--region", help="AWS region. Default: AWS_REGION, or your profile's."),
]
WORKFLOW_HELP = (
    "Which state machine runs: auto (the config's personalize.enabled: the Personalize machine, "
    "which also runs FM → KNN when factorization_machines.enabled; else the FM → KNN machine), "
    "personalize (Personalize only), fm-knn (the FM → KNN machine alone), both (Personalize and "
    "FM → KNN, one prep, one leaderboard)."
)
WorkflowOption = Annotated[Workflow, typer.Option("--workflow", help=WORKFLOW_HELP)]
Execution = Annotated[
    str | None,
    typer.Argument(
        help="An execution ARN, execution name or run id. Default: the newest execution."
    ),
]


class UsageError(Exception):
    """Something the user can fix; printed as it is, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Deployment:
    """The boto3 session, the stack's name and (read once) its outputs."""

    def __init__(self, ctx: typer.Context, stack: str, region: str | None) -> None:
        injected = ctx.obj if isinstance(ctx.obj, boto3.Session) else None
        self.session = injected or boto3.Session(region_name=region)
        self.region = region or self.session.region_name
        if not self.region:
            raise UsageError("no AWS region: pass --region or set AWS_REGION", 2)
        self.stack = stack
        self._outputs: dict[str, str] | None = None
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def output(self, key: str) -> str:
        if self._outputs is None:
            self._outputs = runs.read_outputs(self.client("cloudformation"), self.stack)
        return runs.output(self._outputs, key, self.stack)

    def has_output(self, key: str) -> bool:
        if self._outputs is None:
            self._outputs = runs.read_outputs(self.client("cloudformation"), self.stack)
        return key in self._outputs

    def machines(self) -> list[str]:
        """The stack's run machines (a stack of an older recops has the Personalize one only)."""
        present = [key for key in runs.MACHINES.values() if self.has_output(key)]
        return [self.output(key) for key in present or [runs.PERSONALIZE_MACHINE]]

    def execution(self, ref: str | None) -> dict[str, Any]:
        return runs.find_execution(self.client("stepfunctions"), self.machines(), ref)

    def child(self, described: dict[str, Any]) -> dict[str, Any] | None:
        """The FM → KNN execution a Personalize run started, if any."""
        if not self.has_output(runs.FM_KNN_MACHINE) or described["stateMachineArn"] != (
            self.output(runs.PERSONALIZE_MACHINE)
        ):
            return None
        sfn = self.client("stepfunctions")
        return runs.child_execution(sfn, self.output(runs.FM_KNN_MACHINE), runs.run_of(described))

    def deployed_config(self) -> dict[str, Any]:
        """The config the stack was deployed with, as its machine's plan state passes it."""
        key = next(k for k in runs.MACHINES.values() if self.has_output(k))
        machine = self.output(key)
        found = runs.deployed_config(self.client("stepfunctions"), machine)
        if found is None:
            raise UsageError(
                f"cannot read the deployed config from {machine} (its definition has no "
                "deployedConfig): pass the config with --config FILE"
            )
        return found

    def metrics(self, run: str) -> dict[str, Any] | None:
        return runs.read_metrics(self.client("s3"), self.output(runs.ARTIFACTS), run)


def _console() -> Console:
    return Console(highlight=False)


def _stack_name(stack: str | None, config_file: Path | None) -> str:
    if stack:
        return stack
    source = config_file or DEMO_CONFIG
    if not source.exists():
        raise UsageError(f"{source} not found: pass --stack NAME or --config FILE", 2)
    try:
        return json.loads(source.read_text(encoding="utf-8"))["prefix"]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{source}: no prefix to name the stack by; pass --stack", 2) from None


def _validated(config_file: Path) -> tuple[Any, dict[str, Any]]:
    """The validated config and the file's own JSON, or a UsageError naming what to change."""
    if not config_file.is_file():
        raise UsageError(f"{config_file}: no such config file", 2)
    try:
        config = load_config(config_file)
    except ConfigError as err:
        raise UsageError(str(err), 2) from None
    return config, json.loads(config_file.read_text(encoding="utf-8"))


def _run(command: Any) -> None:
    """Print what went wrong the way the user should read it, and exit with its code."""
    try:
        command()
    except UsageError as problem:
        _fail(str(problem), problem.code)
    except runs.NotFoundError as missing:
        _fail(str(missing), 1)
    except (BotoCoreError, ClientError) as err:  # no credentials, access denied, throttled...
        _fail(f"AWS refused or could not be reached: {err}", 1)


def _fail(message: str, code: int) -> None:
    Console(stderr=True, highlight=False).print(f"recops: {message}", soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def start(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run with this config instead of the deployed one; it is validated first and "
            "nothing starts if it is refused.",
        ),
    ] = None,
    workflow: WorkflowOption = AUTO,
    stack: Stack = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run's states until it ends.")
    ] = False,
    region: Region = None,
    poll_seconds: Annotated[float, typer.Option(hidden=True)] = POLL_SECONDS,
) -> None:
    """Start a run (the state machine --workflow chooses) and print where to follow it."""

    def command() -> None:
        raw: dict[str, Any] | None = None
        if config is not None:
            validated, raw = _validated(config)
            if stack and stack != validated.prefix:
                raise UsageError(
                    f"{config}: prefix {validated.prefix!r} is not the stack {stack!r}: every "
                    "name and grant of a stack is scoped to its prefix; deploy this config as "
                    "its own stack, or set its prefix to the stack's",
                    2,
                )
        deployment = Deployment(ctx, _stack_name(stack, config), region)
        machine_key, execution_input = _what_to_start(deployment, raw, str(config), workflow)
        machine = deployment.output(machine_key)
        started = deployment.client("stepfunctions").start_execution(
            stateMachineArn=machine, input=json.dumps(execution_input)
        )
        arn = started["executionArn"]
        run = names.run_id(arn.rsplit(":", 1)[1])
        console = _console()
        for key, value in (
            ("execution", arn),
            ("run", run),
            ("console", runs.console_link(deployment.region, arn)),
        ):
            console.print(f"{key:<10} {value}", soft_wrap=True)
        if wait:
            _wait(deployment, console, arn, run, poll_seconds)

    _run(command)


def _what_to_start(
    deployment: Deployment, raw: dict[str, Any] | None, source: str, workflow: Workflow
) -> tuple[str, dict[str, Any]]:
    """The stack output naming the machine to start, and the execution's input: `{}` for the
    deployed config as deployed, else `{"config": ...}` (the file's, or the rewritten one)."""
    if workflow in MACHINE_OF:  # a stack without that machine: say so before anything else
        deployment.output(runs.MACHINES[MACHINE_OF[workflow]])
    elif raw is None and not deployment.has_output(runs.FM_KNN_MACHINE):
        return runs.PERSONALIZE_MACHINE, {}  # auto on a stack of an older recops: one machine
    deployed = raw is None
    if deployed:
        raw, source = deployment.deployed_config(), f"the deployed config of {deployment.stack}"
    choice = _choice(raw, workflow, source)
    if deployed and not choice.rewritten:
        return runs.MACHINES[choice.machine], {}
    return runs.MACHINES[choice.machine], {"config": choice.raw}


def _choice(raw: dict[str, Any], workflow: Workflow, source: str) -> Choice:
    try:
        return choose(raw, workflow, source)
    except (ConfigError, WorkflowError) as err:
        raise UsageError(str(err), 2) from None


def _wait(
    deployment: Deployment, console: Console, arn: str, run: str, poll_seconds: float
) -> None:
    sfn = deployment.client("stepfunctions")
    progress = runs.Progress(sfn.describe_execution(executionArn=arn)["startDate"])

    def show(event: dict[str, Any]) -> None:
        line = progress.feed(event)
        if line:
            style = {"failed": "red", "exited": "green"}.get(line[0])
            console.print(line[1], style=style, soft_wrap=True)
        status.update(f"running: {', '.join(progress.running()) or '...'}")

    with console.status("starting...") as status:
        described = runs.follow(sfn, arn, show, poll_seconds)
    console.print()
    render.execution(console, described, run, progress.running())
    _child(deployment, console, described)
    _leaderboard_or_why(deployment, console, described, run)
    if described["status"] != "SUCCEEDED":
        raise typer.Exit(1)


def _child(deployment: Deployment, console: Console, described: dict[str, Any]) -> None:
    """The status of the FM → KNN execution a Personalize run started, when there is one."""
    child = deployment.child(described)
    if child is not None:
        progress = runs.progress_of(deployment.client("stepfunctions"), child)
        render.child(console, child, progress.running())


def _no_report(deployment: Deployment, described: dict[str, Any], run: str) -> str:
    where = f"s3://{deployment.output(runs.ARTIFACTS)}/{runs.metrics_key(run)}"
    return f"run {run} has no report yet: {where} does not exist (the run is {described['status']})"


def _leaderboard_or_why(
    deployment: Deployment, console: Console, described: dict[str, Any], run: str
) -> None:
    metrics = deployment.metrics(run)
    if metrics is None:
        console.print(_no_report(deployment, described, run), soft_wrap=True)
    else:
        render.leaderboard(console, metrics)


@app.command()
def status(
    ctx: typer.Context, execution: Execution = None, stack: Stack = None, region: Region = None
) -> None:
    """Status, times, running states and failure of a run, and its leaderboard once written."""

    def command() -> None:
        deployment = Deployment(ctx, _stack_name(stack, None), region)
        described = deployment.execution(execution)
        run = runs.run_of(described)
        progress = runs.progress_of(deployment.client("stepfunctions"), described)
        console = _console()
        render.execution(console, described, run, progress.running())
        _child(deployment, console, described)
        metrics = deployment.metrics(run)
        if metrics is not None:
            console.print()
            render.leaderboard(console, metrics)

    _run(command)


@app.command()
def report(
    ctx: typer.Context,
    execution: Execution = None,
    stack: Stack = None,
    region: Region = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json as it is.")] = False,
) -> None:
    """The leaderboard of a run (reports/<run>/metrics.json): scored, not scored, failed."""

    def command() -> None:
        deployment = Deployment(ctx, _stack_name(stack, None), region)
        described = deployment.execution(execution)
        run = runs.run_of(described)
        metrics = deployment.metrics(run)
        if metrics is None:
            raise UsageError(_no_report(deployment, described, run))
        if as_json:
            print(json.dumps(metrics, indent=2))
        else:
            render.leaderboard(_console(), metrics)

    _run(command)


@app.command()
def cost(
    ctx: typer.Context,
    execution: Annotated[
        str | None,
        typer.Argument(
            help="An execution ARN, name or run id: price what it used. Without one: estimate a "
            "run of the config."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The config to estimate (default: the demo config)."),
    ] = None,
    workflow: Annotated[
        Workflow,
        typer.Option("--workflow", help="Estimate: the run `recops start --workflow` starts."),
    ] = AUTO,
    stack: Stack = None,
    region: Region = None,
    interactions: Annotated[int, typer.Option(help="Estimate: interactions.")] = 100_000,
    users: Annotated[int, typer.Option(help="Estimate: users.")] = 1_000,
    training_hours: Annotated[
        float, typer.Option(help="Estimate: training hours per solution (non -v2 recipes).")
    ] = 1.0,
    job_minutes: Annotated[float, typer.Option(help="Estimate: minutes per SageMaker job.")] = 10,
) -> None:
    """What a run costs at list prices (recops/prices.json): measured, or estimated."""

    def command() -> None:
        console = _console()
        if execution is None:
            source = config or DEMO_CONFIG
            _, raw = _validated(source)
            runs_as = _choice(raw, workflow, str(source)).what_runs()
            assumptions = costs.Assumptions(interactions, users, 40, training_hours, job_minutes)
            estimate = costs.estimate(runs_as, assumptions)
            priced = prices.price_run(estimate.usage, estimate.standing)
            shown = "" if workflow == AUTO else f" (--workflow {workflow})"
            title = f"Estimated cost of one run of {source}{shown}"
            render.cost(console, priced, title, estimate.notes, "assuming")
            return
        deployment = Deployment(ctx, _stack_name(stack, config), region)
        described = deployment.execution(execution)
        measured = costs.measure(_scope(deployment, described))
        priced = prices.price_run(measured.usage, measured.standing)
        title = f"Cost of run {runs.run_of(described)} ({described['status']})"
        render.cost(console, priced, title, measured.notes, "not counted")
        if deployment.region != priced.table.region:
            console.print(
                f"note: prices are {priced.table.region}'s; {deployment.region} may differ"
            )

    _run(command)


def _scope(deployment: Deployment, described: dict[str, Any]) -> costs.RunScope:
    now = described.get("stopDate") or datetime.datetime.now(datetime.UTC)
    return costs.RunScope(
        personalize=deployment.client("personalize"),
        sagemaker=deployment.client("sagemaker"),
        s3=deployment.client("s3"),
        stack=deployment.stack,
        run=runs.run_of(described),
        started=described["startDate"],
        now=now,
        data_bucket=deployment.output(runs.DATA),
    )


@app.command("kms-policy")
def kms_policy_command(ctx: typer.Context, stack: Stack = None, region: Region = None) -> None:
    """The statements to add to your KMS key's policy for this stack's roles (config kms_key_arn)."""

    def command() -> None:
        deployment = Deployment(ctx, _stack_name(stack, None), region)
        personalize_role = deployment.output("PersonalizeRoleArn")
        _, partition, _, _, account, _ = personalize_role.split(":", 5)
        print(
            kms_policy.render(
                account=account,
                region=deployment.region,
                personalize_role_arn=personalize_role,
                sagemaker_role_arn=deployment.output("SageMakerRoleArn"),
                partition=partition,
            )
        )

    _run(command)


def main() -> None:
    """The console script (`recops`, [project.scripts] in pyproject.toml)."""
    app()


if __name__ == "__main__":
    main()

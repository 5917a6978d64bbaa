"""`python -m localaws` for a newcomer: status says what is left, stop says how to clean up."""

from localaws import server
from localaws.server import CHECKOUT, main, report, state_file, unset_line

BOOTSTRAP = {"cdk-hnb659fds-assets-123456789012-us-east-1", "cdk-hnb659fds-deploy-role", "/cdk"}


def _found(**extra: list[str]) -> dict[str, list[str]]:
    found = {
        "s3 buckets": ["cdk-hnb659fds-assets-123456789012-us-east-1"],
        "cloudformation stacks": ["CDKToolkit (CREATE_COMPLETE)"],
        "iam roles": ["cdk-hnb659fds-deploy-role"],
        "ssm parameters": ["/cdk"],
        "lambda functions": [],
    }
    for service, names in extra.items():
        found[service.replace("_", " ")] = found.get(service.replace("_", " "), []) + names
    return found


def test_status_after_destroy_says_only_the_bootstrap_is_left():
    lines = report(_found(), BOOTSTRAP)
    assert lines[0].startswith("CDK bootstrap (CDKToolkit; `cdk destroy` keeps it")
    assert "  iam roles: cdk-hnb659fds-deploy-role" in lines
    assert "  s3 buckets: 0" in lines[lines.index("Everything else:") :]
    assert lines[-1] == "Nothing is left but the CDK bootstrap."


def test_status_names_what_a_stack_left_behind():
    lines = report(_found(s3_buckets=["recops-demo-data-1"], lambda_functions=["f"]), BOOTSTRAP)
    assert "  s3 buckets: 1  recops-demo-data-1" in lines
    assert lines[-1] == "Left besides the CDK bootstrap: 2 resource(s), listed above."
    assert report({"s3 buckets": []}, set())[-1] == "The account is empty."


def test_stop_and_env_print_the_unset_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "STATE", tmp_path / "server.json")
    assert main(["stop"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == unset_line()
    assert all(line.startswith("#") for line in out[:-1])  # `eval "$(... stop)"` is safe
    assert unset_line().split()[1:] == list(server.environment(0))
    assert main(["env", "--unset"]) == 0
    assert capsys.readouterr().out.strip() == unset_line()


def test_the_state_file_is_per_checkout_and_ignored_by_git(monkeypatch, tmp_path):
    monkeypatch.delenv("LOCALAWS_STATE", raising=False)
    assert state_file() == CHECKOUT / ".localaws" / "server.json"
    monkeypatch.setenv("LOCALAWS_STATE", str(tmp_path / "elsewhere.json"))
    assert state_file() == tmp_path / "elsewhere.json"
    assert ".localaws/" in (CHECKOUT / ".gitignore").read_text().splitlines()

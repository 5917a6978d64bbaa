"""SageMakerRole built alone in an empty stack."""

import fnmatch
import json

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.grants import PrefixGrant
from infra.sagemaker_role import IMAGE_REPOSITORIES, SageMakerRole, registry_key
from infra.workflows.jobs import job_statements
from recops import images, names
from tests.policy_checks import assert_no_wide_managed_policies, resources_of, statements

PREFIX = "recops-demo"
# A stack whose prefix starts with this one's: none of its names may match our patterns.
LONGER = "recops-demo-eu"
# What the pseudo parameters stand for when a test reads a pattern as IAM would.
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111122223333"}


def _build(stack: Stack) -> SageMakerRole:
    data = s3.Bucket(stack, "Data")
    return SageMakerRole(
        stack,
        "SageMaker",
        job_name_prefix=names.owned_prefix(PREFIX),
        grants=[PrefixGrant(data, "raw/"), PrefixGrant(data, "prepared/", write=True)],
    )


@pytest.fixture(scope="module")
def template():
    stack = Stack(App(), "T")
    _build(stack)
    return Template.from_stack(stack).to_json()


def _policies(template) -> dict[str, list[dict]]:
    return {
        name: statements(policy["Properties"]["PolicyDocument"])
        for name, policy in resources_of(template, "AWS::IAM::Policy").items()
    }


def _policy(template) -> list[dict]:
    """The role's default policy: every statement that names a resource."""
    (policy,) = [s for name, s in _policies(template).items() if "DefaultPolicy" in name]
    return policy


def _trust(template) -> list[dict]:
    (role,) = resources_of(template, "AWS::IAM::Role").values()
    return statements(role["Properties"]["AssumeRolePolicyDocument"])


def _render(value, template) -> str:
    """A resolved CloudFormation string as it is in the deployed account (see PSEUDO)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part, template) for part in parts)
    if "Ref" in value:
        return PSEUDO[value["Ref"]]
    if "Fn::FindInMap" in value:
        mapping, first, second = (_render(v, template) for v in value["Fn::FindInMap"])
        return template["Mappings"][mapping][first][second]
    raise ValueError(f"cannot render {value!r}")


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_no_managed_policies(template):
    assert_no_wide_managed_policies(template)
    (role,) = resources_of(template, "AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]


def test_trust_is_sagemaker_for_this_accounts_jobs_of_this_stack(template):
    jobs, model = _trust(template)
    for statement in (jobs, model):
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {
            "Ref": "AWS::AccountId"
        }
    patterns = [_render(arn, template) for arn in jobs["Condition"]["ArnLike"]["aws:SourceArn"]]
    assert patterns == [
        f"arn:aws:sagemaker:eu-west-1:111122223333:{kind}/{PREFIX}--*"
        for kind in ("processing-job", "training-job", "transform-job")
    ]
    # CreateModel's check of the role: the documented inference value, compared literally
    assert set(model["Condition"]) == {"StringEquals"}
    source = _render(model["Condition"]["StringEquals"]["aws:SourceArn"], template)
    assert source == "arn:aws:sagemaker:eu-west-1:111122223333:*"


def test_s3_only_on_its_prefixes(template):
    s3_statements = [s for s in _policy(template) if str(s["Action"]).count("s3:")]
    objects = {
        s["Resource"]["Fn::Join"][1][1]: s["Action"]
        for s in s3_statements
        if s["Action"] != "s3:ListBucket"
    }
    assert objects == {
        "/raw/*": "s3:GetObject",
        "/prepared/*": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
    }
    for statement in s3_statements:
        resource = statement["Resource"]
        assert resource != "*"
        assert "Fn::GetAtt" in str(resource)


def test_logs_only_for_its_own_jobs(template):
    """Only the stack's own job names: `recops-demo--*`, which no job of `recops-demo-eu`
    matches."""
    streams = next(s for s in _policy(template) if "logs:PutLogEvents" in s["Action"])
    for resource in streams["Resource"]:
        assert str(resource).endswith(f":log-stream:{PREFIX}--*']]}}"), resource


def test_log_group_actions_name_the_groups_in_their_star_form(template):
    """CreateLogGroup/DescribeLogStreams are authorized on `log-group:<name>:*`."""
    (groups,) = [s for s in _policy(template) if "logs:CreateLogGroup" in s["Action"]]
    assert groups["Action"] == ["logs:CreateLogGroup", "logs:DescribeLogStreams"]
    assert [_render(r, template) for r in groups["Resource"]] == [
        f"arn:aws:logs:eu-west-1:111122223333:log-group:/aws/sagemaker/{kind}:*"
        for kind in ("ProcessingJobs", "TrainingJobs", "TransformJobs")
    ]


def test_images_only_from_the_registry_accounts_of_the_image_table(template):
    (pull,) = [s for s in _policy(template) if "ecr:BatchGetImage" in s["Action"]]
    for resource in pull["Resource"]:
        assert "Fn::FindInMap" in json.dumps(resource), resource
        account = resource["Fn::Join"][1][5]
        assert account["Fn::FindInMap"][1] == {"Ref": "AWS::Region"}
        assert "*" not in json.dumps(resource), resource
    rendered = {_render(r, template) for r in pull["Resource"]}
    table = images.table()["images"]
    assert rendered == {
        f"arn:aws:ecr:eu-west-1:{table[repo]['registries']['eu-west-1']}:repository/{repo}"
        for repo in IMAGE_REPOSITORIES
    }
    # every region of the table has a row, and each row is the table's account for it
    (mapping,) = [m for name, m in template["Mappings"].items() if "ImageRegistries" in name]
    assert set(mapping) == set(images.table()["hosts"])
    for region, row in mapping.items():
        assert row == {
            registry_key(repo): table[repo]["registries"][region] for repo in IMAGE_REPOSITORIES
        }
    # the account the image URIs use is the one the role may pull from
    assert images.image_uri("knn", "us-east-1").startswith(mapping["us-east-1"]["knn"] + ".")


def test_star_resources_only_in_the_policy_of_the_unscopable_actions(template):
    """The role's default policy has no `Resource: "*"`; the unscopable actions have their own
    policy, attached to the role."""
    for statement in _policy(template):
        assert "*" not in _as_list(statement["Resource"]), statement
    policies = resources_of(template, "AWS::IAM::Policy")
    (name,) = [n for n in policies if "UnscopableActions" in n]
    (role_id,) = resources_of(template, "AWS::IAM::Role")
    assert policies[name]["Properties"]["Roles"] == [{"Ref": role_id}]
    unscopable = _policies(template)[name]
    assert sorted(str(s["Action"]) for s in unscopable) == [
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
    ]
    assert all(s["Resource"] == "*" for s in unscopable)


def test_patterns_match_this_stacks_names_and_not_a_longer_prefixs(template):
    """`recops-demo--*` matches `recops-demo--fm-…` and never `recops-demo-eu--fm-…`: a prefix
    cannot contain "--", so a longer prefix never starts with this one's owned prefix."""
    with pytest.raises(ValueError, match="two hyphens in a row"):
        names.owned_prefix("recops-demo--eu")
    ours, theirs = f"{PREFIX}--fm-0123456789ab", f"{LONGER}--fm-0123456789ab"
    region_account = "arn:aws:{service}:eu-west-1:111122223333:"
    streams = next(s for s in _policy(template) if "logs:PutLogEvents" in s["Action"])
    candidates = {
        f"{region_account.format(service='logs')}log-group:/aws/sagemaker/TrainingJobs"
        ":log-stream:{job}/algo-1-1700000000",
        f"{region_account.format(service='sagemaker')}training-job/{{job}}",
        f"{region_account.format(service='sagemaker')}transform-job/{{job}}",
        f"{region_account.format(service='sagemaker')}processing-job/{{job}}",
    }
    jobs, _ = _trust(template)
    patterns = [
        _render(p, template)
        for p in _as_list(streams["Resource"]) + jobs["Condition"]["ArnLike"]["aws:SourceArn"]
    ]
    for candidate in candidates:
        assert any(fnmatch.fnmatchcase(candidate.format(job=ours), p) for p in patterns)
        assert not any(fnmatch.fnmatchcase(candidate.format(job=theirs), p) for p in patterns)


@pytest.mark.parametrize("kind", ["Processing", "Training", "Transform"])
def test_the_workflows_job_grants_do_not_match_a_longer_prefix(kind):
    """The `.sync` grants of the workflows use the same owned prefix (infra/workflows/jobs.py):
    the job calls on this stack's names, the managed rule of the kind, PassRole to SageMaker."""
    stack = Stack(App(), "T")
    role = _build(stack).role
    jobs, rule, pass_role = job_statements(stack, role, names.owned_prefix(PREFIX), kind)
    (pattern,) = [_render(stack.resolve(r), {}) for r in jobs.resources]
    arn = f"arn:aws:sagemaker:eu-west-1:111122223333:{kind.lower()}-job/{{}}--fm-0123456789ab"
    assert fnmatch.fnmatchcase(arn.format(PREFIX), pattern)
    assert not fnmatch.fnmatchcase(arn.format(LONGER), pattern)
    assert _render(stack.resolve(rule.resources[0]), {}).endswith(
        f":rule/StepFunctionsGetEventsForSageMaker{kind}JobsRule"
    )
    assert pass_role.to_statement_json()["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


# --- cdk-nag: the acknowledgment of the unscopable actions swallows nothing else -----------------


def _app_with_role(tmp_path, extra: iam.PolicyStatement | None = None) -> App:
    """The role alone (an imported bucket: no bucket findings) under the app's nag rules."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "T")
    data = s3.Bucket.from_bucket_name(stack, "Data", "recops-demo-data")
    role = SageMakerRole(
        stack,
        "SageMaker",
        job_name_prefix=names.owned_prefix(PREFIX),
        grants=[PrefixGrant(data, "raw/")],
    ).role
    if extra is not None:
        role.add_to_policy(extra)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def test_the_role_alone_passes_nag(tmp_path):
    _app_with_role(tmp_path).synth()  # raises ValidationFailed on any unacknowledged finding


def test_a_new_wildcard_grant_on_the_role_fails_nag(tmp_path):
    app = _app_with_role(tmp_path, iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = report["pluginReports"]
    (violation,) = nag["violations"]
    assert violation["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
    paths = [c["constructPath"] for c in violation["violatingConstructs"]]
    assert paths == ["T/SageMaker/ExecutionRole/DefaultPolicy/Resource"]

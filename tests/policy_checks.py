"""Checks on synthesized templates, shared by the stack tests and the tests that show they bite."""

from __future__ import annotations

from collections.abc import Iterator

PERSONALIZE = "personalize.amazonaws.com"
FORBIDDEN_MANAGED_POLICIES = (
    "AmazonS3ReadOnlyAccess",
    "AmazonS3FullAccess",
    "AmazonSageMakerFullAccess",
    "AmazonPersonalizeFullAccess",
)


def resources_of(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def statements(policy_document: dict) -> list[dict]:
    found = policy_document["Statement"]
    return found if isinstance(found, list) else [found]


def personalize_statements(template: dict) -> Iterator[tuple[str, dict]]:
    """Every bucket-policy statement and trust statement that names Personalize."""
    for name, policy in resources_of(template, "AWS::S3::BucketPolicy").items():
        for statement in statements(policy["Properties"]["PolicyDocument"]):
            if _names_personalize(statement):
                yield name, statement
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        for statement in statements(role["Properties"]["AssumeRolePolicyDocument"]):
            if _names_personalize(statement):
                yield name, statement


def _names_personalize(statement: dict) -> bool:
    principal = statement.get("Principal", {})
    services = principal.get("Service", []) if isinstance(principal, dict) else []
    return PERSONALIZE in (services if isinstance(services, list) else [services])


def assert_personalize_confused_deputy_guarded(template: dict) -> None:
    """Every grant to Personalize carries aws:SourceAccount and an aws:SourceArn of this account."""
    found = list(personalize_statements(template))
    assert found, "no statement grants anything to personalize.amazonaws.com"
    for name, statement in found:
        conditions = statement.get("Condition", {})
        account = conditions.get("StringEquals", {}).get("aws:SourceAccount")
        source_arn = conditions.get("ArnLike", {}).get("aws:SourceArn")
        assert account == {"Ref": "AWS::AccountId"}, f"{name}: no aws:SourceAccount: {statement}"
        assert source_arn is not None, f"{name}: no aws:SourceArn: {statement}"
        rendered = str(source_arn)
        assert ":personalize:" in rendered, f"{name}: aws:SourceArn is not Personalize's"
        assert "AWS::AccountId" in rendered, f"{name}: aws:SourceArn is another account's"


def assert_buckets_deny_insecure_transport(template: dict) -> None:
    buckets = resources_of(template, "AWS::S3::Bucket")
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    guarded = set()
    for policy in policies.values():
        for statement in statements(policy["Properties"]["PolicyDocument"]):
            if (
                statement["Effect"] == "Deny"
                and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
                == "false"
            ):
                guarded.add(policy["Properties"]["Bucket"]["Ref"])
    missing = set(buckets) - guarded
    assert not missing, f"buckets without a TLS-only policy: {sorted(missing)}"


def assert_no_wide_managed_policies(template: dict) -> None:
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = str(arn)
            assert not any(p in text for p in FORBIDDEN_MANAGED_POLICIES), (
                f"{name} attaches a wide AWS-managed policy: {text}"
            )

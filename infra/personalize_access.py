"""What Amazon Personalize may touch: its service role and the bucket policy statements.

Personalize reads import files and batch inputs and writes batch outputs, and it does so
through both the role it assumes and the bucket policy, so both carry the same narrow rights.
Every grant to the service principal carries aws:SourceAccount and aws:SourceArn, so no other
account's Personalize can be tricked into using them (the confused-deputy guidance).

With a customer key the role gets what Personalize's KMS page asks of the role's IAM policy
(`recops.kms_policy.role_statements`); the key policy's side is in the README, rendered by the
same module, so the two cannot drift apart.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.grants import PrefixGrant, prefix_statements
from infra.nag import acknowledge_wildcards
from recops import kms_policy

PERSONALIZE = "personalize.amazonaws.com"


class PersonalizeAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        grants: list[PrefixGrant],
        kms_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.source_conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": _personalize_arns(stack)},
        }
        self.role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal(PERSONALIZE, conditions=self.source_conditions),
            description="Assumed by Amazon Personalize for imports and batch jobs of this stack.",
        )
        statements = []
        for grant in grants:
            for statement in prefix_statements(grant):
                statements.append(statement)
                self.role.add_to_policy(statement)
                grant.bucket.add_to_resource_policy(self._for_service(statement))
        if kms_key is not None:
            for statement in kms_policy.role_statements(kms_key.key_arn):
                self.role.add_to_policy(iam.PolicyStatement.from_json(statement))
        acknowledge_wildcards(
            self.role,
            statements,
            "Personalize reads imports and batch inputs and writes batch output as objects "
            "below these prefixes only.",
        )

    def _for_service(self, statement: iam.PolicyStatement) -> iam.PolicyStatement:
        """The same statement for the bucket policy: the service principal plus the conditions."""
        conditions = dict(self.source_conditions)
        conditions.update(statement.conditions or {})
        return iam.PolicyStatement(
            principals=[iam.ServicePrincipal(PERSONALIZE)],
            actions=statement.actions,
            resources=statement.resources,
            conditions=conditions,
        )


def _personalize_arns(stack: Stack) -> str:
    """Any Personalize resource of this account and region."""
    return f"arn:{stack.partition}:personalize:{stack.region}:{stack.account}:*"

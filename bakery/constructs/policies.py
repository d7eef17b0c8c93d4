"""IAM roles whose grants stay within IAM's size limits.

IAM caps the inline policies of one role at 10,240 characters together, and each customer
managed policy at 6,144 (bakery.aws_limits). A layer's state machine role grows with every
table the layer touches, so its statements are placed only once the app is complete: inline
while the merged policy (CDK's minimizePolicies, as deployed) fits, the rest in customer
managed policies of the role's own. tests/aws/test_aws_limits.py sizes every role of the
production templates.
"""

from __future__ import annotations

import weakref
from typing import Any

import jsii
from aws_cdk import Aspects, CfnResource, IAspect, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from bakery import aws_limits
from bakery.errors import BakeryError

# An inline policy's name counts too (IAM allows at most 128 characters).
INLINE_BUDGET = aws_limits.IAM_ROLE_INLINE_POLICIES.maximum - 128
MANAGED_BUDGET = aws_limits.IAM_MANAGED_POLICY.maximum

# Per app (its root, held weakly): the type of every resource by logical id.
_TYPES: weakref.WeakKeyDictionary[IConstruct, dict[str, str]] = weakref.WeakKeyDictionary()


def _resource_types(scope: IConstruct) -> dict[str, str]:
    root = scope.node.root
    if root not in _TYPES:
        _TYPES[root] = {
            Stack.of(r).resolve(r.logical_id): r.cfn_resource_type
            for r in root.node.find_all()
            if isinstance(r, CfnResource)
        }
    return _TYPES[root]


def document_size(scope: IConstruct, statements: list[iam.PolicyStatement]) -> int:
    """Characters a policy of `statements` takes once deployed, at most, as IAM counts them."""
    document = Stack.of(scope).resolve(iam.PolicyDocument(statements=statements))
    types = _resource_types(scope)

    def reference(value: dict) -> int:
        ((kind, arg),) = value.items()
        if kind == "Ref":
            key = (types.get(arg, ""), "Ref")
        elif kind == "Fn::GetAtt":
            key = (types.get(arg[0], ""), arg[1])
        else:
            return aws_limits.UNKNOWN_REFERENCE
        return aws_limits.REFERENCE_LENGTH.get(key, aws_limits.UNKNOWN_REFERENCE)

    return aws_limits.json_length(document, lambda v: aws_limits.intrinsic_length(v, reference))


def _fitting(scope: IConstruct, statements: list[iam.PolicyStatement], budget: int) -> int:
    """How many of `statements`, from the first, fit a policy of `budget` characters (the
    merged size only grows as statements are added, so a binary search finds it)."""
    if document_size(scope, statements) <= budget:
        return len(statements)
    low, high = 0, len(statements)  # statements[:low] fit, statements[:high] do not
    while high - low > 1:
        middle = (low + high) // 2
        if document_size(scope, statements[:middle]) <= budget:
            low = middle
        else:
            high = middle
    return low


@jsii.implements(IAspect)
class _PlaceGrants:
    def visit(self, node: IConstruct) -> None:
        if isinstance(node, BudgetedRole):
            node.place_grants()


class BudgetedRole(iam.Role):
    """A role whose statements are held until synthesis, then placed: inline (its
    DefaultPolicy) as far as IAM's inline limit allows, then in managed policies.

    Every grant reaches a role through add_to_principal_policy, those CDK makes for it too
    (a queue's grant_consume_messages, a state machine's logging). The managed policies are
    children of the role, so whatever depends on the role (a function, the state machine,
    the pipe) depends on them, and the role's cdk-nag acknowledgments cover them.
    """

    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self._pending: list[iam.PolicyStatement] | None = []
        Aspects.of(self).add(_PlaceGrants())

    def add_to_principal_policy(
        self, statement: iam.PolicyStatement
    ) -> iam.AddToPrincipalPolicyResult:
        if self._pending is None:  # placed already: inline, as any role
            return super().add_to_principal_policy(statement)
        self._pending.append(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self)

    def place_grants(self) -> None:
        statements, self._pending = self._pending or [], None
        inline = _fitting(self, statements, INLINE_BUDGET)
        for statement in statements[:inline]:
            super().add_to_principal_policy(statement)
        rest = statements[inline:]
        managed = 0
        while rest:
            count = _fitting(self, rest, MANAGED_BUDGET)
            if count == 0:
                raise BakeryError(
                    f"{self.node.path}: one IAM statement is over {MANAGED_BUDGET} characters"
                )
            managed += 1
            if managed > aws_limits.IAM_MANAGED_POLICIES_PER_ROLE.maximum:
                raise BakeryError(
                    f"{self.node.path}: its grants need more than "
                    f"{aws_limits.IAM_MANAGED_POLICIES_PER_ROLE.maximum} managed policies, "
                    "IAM's default quota per role: split the layer"
                )
            iam.ManagedPolicy(
                self,
                f"Grants{managed}",
                description=f"{self.node.path}: grants beyond IAM's limit on inline policies",
                statements=rest[:count],
                roles=[self],
            )
            rest = rest[count:]

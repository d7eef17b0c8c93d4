"""Least-privilege IAM statements for what a layer touches, with cdk-nag acknowledgments.

Every grant names its resources: S3 object ARNs under one table prefix (the
only wildcard is the object key under that prefix, which IAM cannot express
otherwise), ListBucket conditioned on that prefix, Glue database and table
ARNs, the Athena workgroup. Each wildcard is acknowledged for cdk-nag right
here, next to the statement that needs it, with the reason.
"""

from __future__ import annotations

import weakref

from aws_cdk import Acknowledgment, ArnFormat, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from bakery.lambdas.s3uri import split

S3_READ = ["s3:GetObject"]
S3_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
S3_DELETE = ["s3:DeleteObject"]


def objects_arn(location: str) -> str:
    bucket, prefix = split(location)
    return f"arn:aws:s3:::{bucket}/{prefix}*"


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


# Per app (the root construct itself, held weakly: an id() would be reused by a later app in
# the same process, whose acknowledgments would then be skipped): the (path, rule) pairs done.
_ACKNOWLEDGED: weakref.WeakKeyDictionary[IConstruct, set[tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge a cdk-nag finding on `scope` (once per scope and rule) with its reason."""
    done = _ACKNOWLEDGED.setdefault(scope.node.root, set())
    key = (scope.node.path, rule)
    if key in done:
        return
    done.add(key)
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def grant_s3(
    role: iam.Role,
    location: str,
    actions: list[str],
    why: str,
    bucket_actions: tuple[str, ...] = (),
) -> None:
    """Object actions under `location` (and listing that prefix only); `bucket_actions` on
    its bucket, beside s3:GetBucketLocation."""
    bucket, prefix = split(location)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=sorted(actions), resources=[objects_arn(location)])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket_arn(bucket)],
            conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=sorted({"s3:GetBucketLocation", *bucket_actions}),
            resources=[bucket_arn(bucket)],
        )
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{objects_arn(location)}]",
        f"Objects under the table prefix {location} only ({why}); S3 object keys are "
        "known only at run time, so the key under this one prefix is the only wildcard.",
    )


def glue_arns(stack: Stack, database: str, tables: list[str]) -> list[str]:
    def arn(resource: str, name: str | None = None) -> str:
        return stack.format_arn(
            service="glue",
            resource=resource,
            resource_name=name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    out = [
        stack.format_arn(service="glue", resource="catalog", arn_format=ArnFormat.NO_RESOURCE_NAME),
        arn("database", database),
    ]
    out += [arn("table", f"{database}/{t}") for t in sorted(tables)]
    return out


def workgroup_arn(stack: Stack, workgroup: str) -> str:
    return stack.format_arn(
        service="athena",
        resource="workgroup",
        resource_name=workgroup,
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def data_catalog_arn(stack: Stack) -> str:
    return stack.format_arn(
        service="athena",
        resource="datacatalog",
        resource_name="AwsDataCatalog",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def state_machine_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def ssm_parameter_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(
        service="ssm",
        resource="parameter",
        resource_name=name.lstrip("/"),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )

"""AWS's limits on what bakery names and grants, each with where AWS documents it.

Pure Python (no aws_cdk), below the spec: bakery.planning.aws_names applies these while
the plan is built, so `bakery validate` (and every command that plans) refuses a name AWS
would refuse at deploy, with the name, its length and the limit. The CDK back-end uses
the same numbers: `json_length` sizes an IAM policy the way IAM counts it, and
`longest_generated_name` says how long a name CloudFormation makes up can get
(tests/aws/test_aws_limits.py applies both to the synthesized templates). docs/aws.md
("AWS limits") lists them with where each is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    what: str
    maximum: int
    source: str  # where AWS documents it


STACK_NAME = Limit(
    "CloudFormation stack name",
    128,
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html",
)
STATE_MACHINE_NAME = Limit(
    "Step Functions state machine name",
    80,
    "https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html",
)
# ".fifo" counts towards the 80.
SQS_FIFO_QUEUE_NAME = Limit(
    "SQS FIFO queue name",
    80,
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-fifo.html",
)
LAMBDA_FUNCTION_NAME = Limit(
    "Lambda function name",
    64,
    "https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html",
)
IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
IAM_ROLE_NAME = Limit("IAM role name", 64, IAM_QUOTAS)
LOG_GROUP_NAME = Limit(
    "CloudWatch Logs log group name",
    512,
    "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html",
)
GLUE_DATABASE_NAME = Limit(
    "Glue database name",
    255,
    "https://docs.aws.amazon.com/glue/latest/webapi/API_DatabaseInput.html",
)
GLUE_TABLE_NAME = Limit(
    "Glue table name", 255, "https://docs.aws.amazon.com/glue/latest/webapi/API_TableInput.html"
)
# IAM counts policy characters without white space; the inline limit is the sum of every
# inline policy of one role.
IAM_ROLE_INLINE_POLICIES = Limit("IAM inline policies of one role (characters)", 10_240, IAM_QUOTAS)
IAM_MANAGED_POLICY = Limit("IAM customer managed policy (characters)", 6_144, IAM_QUOTAS)
IAM_MANAGED_POLICIES_PER_ROLE = Limit("managed policies attached to one IAM role", 10, IAM_QUOTAS)
LAMBDA_LAYER_VERSION_ARN = Limit(
    "Lambda layer version ARN",
    140,
    "https://docs.aws.amazon.com/lambda/latest/api/API_GetLayerVersionByArn.html",
)

LIMITS = (
    STACK_NAME,
    STATE_MACHINE_NAME,
    SQS_FIFO_QUEUE_NAME,
    LAMBDA_FUNCTION_NAME,
    IAM_ROLE_NAME,
    LOG_GROUP_NAME,
    GLUE_DATABASE_NAME,
    GLUE_TABLE_NAME,
    IAM_ROLE_INLINE_POLICIES,
    IAM_MANAGED_POLICY,
    IAM_MANAGED_POLICIES_PER_ROLE,
    LAMBDA_LAYER_VERSION_ARN,
)

# The pattern GetLayerVersionByArn documents for its Arn parameter (LAMBDA_LAYER_VERSION_ARN).
LAYER_VERSION_ARN = re.compile(
    r"^arn:[a-zA-Z0-9-]+:lambda:(?P<region>[a-zA-Z0-9-]+):\d{12}:layer:[a-zA-Z0-9_-]+:[0-9]+$"
)
# The step kinds whose Lambdas run with the AWS SDK for pandas layer (pyarrow, pg8000):
# a `lambda` step's handler and export_by_key's export (bakery/constructs/steps.py).
PANDAS_KINDS = ("lambda", "export_by_key")


# ---------------------------------------------------------------- names CloudFormation makes


@dataclass(frozen=True)
class Generated:
    """How CloudFormation names a resource of one type that its template does not name:
    <stack name>-<logical id>-<random suffix>, shortened to the limit or not."""

    limit: Limit
    truncated: bool
    evidence: str


# The random suffix is 12 or 13 characters ("1GRP3N0TVA1LD" in convox/rack#2297,
# "RA330IH5SBL2" in aws/aws-sam-cli#731): the longer one is assumed.
RANDOM_SUFFIX = 13
GENERATED = {
    # A generated function name cut to exactly 64: "mylongerapp-playground-ne-
    # InstancesLifecycleHandle-1GRP3N0TVA1LD" (https://github.com/convox/rack/issues/2297).
    "AWS::Lambda::Function": Generated(
        LAMBDA_FUNCTION_NAME, True, "https://github.com/convox/rack/issues/2297"
    ),
    # Generated role names keep 64 characters, the stack and logical id parts shortened
    # (https://github.com/cloudtools/troposphere/issues/428,
    # https://github.com/awslabs/ecs-refarch-continuous-deployment/pull/9).
    "AWS::IAM::Role": Generated(
        IAM_ROLE_NAME, True, "https://github.com/cloudtools/troposphere/issues/428"
    ),
    # A FIFO queue's generated name gets ".fifo" and is not shortened to 80
    # (aws-cloudformation/cloudformation-coverage-roadmap#280, aws/aws-cdk#5860, #11041).
    "AWS::SQS::Queue": Generated(
        SQS_FIFO_QUEUE_NAME,
        False,
        "https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/280",
    ),
    # No evidence either way for these: counted whole, which can only overstate them.
    "AWS::Logs::LogGroup": Generated(LOG_GROUP_NAME, False, ""),
    "AWS::StepFunctions::StateMachine": Generated(STATE_MACHINE_NAME, False, ""),
}


def longest_generated_name(resource_type: str, stack: str, logical_id: str) -> int:
    """The longest name CloudFormation can give a resource of `resource_type` (a key of
    GENERATED; for a queue, a FIFO one) with `logical_id` in stack `stack`."""
    generated = GENERATED[resource_type]
    length = len(stack) + 1 + len(logical_id) + 1 + RANDOM_SUFFIX
    if resource_type == "AWS::SQS::Queue":
        length += len(".fifo")
    return min(length, generated.limit.maximum) if generated.truncated else length


# ---------------------------------------------------------------- policy sizes

# Upper bounds of what CloudFormation's pseudo parameters resolve to: the partition
# "aws-us-gov", a region name such as "ap-southeast-1", a 12-digit account.
PSEUDO_PARAMETER_LENGTH = {
    "AWS::Partition": len("aws-us-gov"),
    "AWS::Region": len("ap-southeast-1"),
    "AWS::AccountId": 12,
    "AWS::URLSuffix": len("amazonaws.com.cn"),
}
# A reference this module has no bound for: far longer than any ARN here, so a size that
# counts it stays an upper bound.
UNKNOWN_REFERENCE = 2048


def arn_length(service: str, resource: int, *, region: bool = True) -> int:
    """arn:<partition>:<service>:<region>:<account>:<resource of `resource` characters>."""
    partition = PSEUDO_PARAMETER_LENGTH["AWS::Partition"]
    region_length = PSEUDO_PARAMETER_LENGTH["AWS::Region"] if region else 0
    return len("arn:::::") + partition + len(service) + region_length + 12 + resource


# What a Ref or Fn::GetAtt of a resource resolves to, at most, by (type, attribute).
REFERENCE_LENGTH = {
    ("AWS::Lambda::Function", "Arn"): arn_length(
        "lambda", len("function:") + LAMBDA_FUNCTION_NAME.maximum
    ),
    ("AWS::SQS::Queue", "Arn"): arn_length("sqs", SQS_FIFO_QUEUE_NAME.maximum),
    ("AWS::Logs::LogGroup", "Arn"): arn_length(
        "logs", len("log-group:") + LOG_GROUP_NAME.maximum + len(":*")
    ),
    ("AWS::StepFunctions::StateMachine", "Ref"): arn_length(
        "states", len("stateMachine:") + STATE_MACHINE_NAME.maximum
    ),
    ("AWS::IAM::Role", "Arn"): arn_length(
        "iam", len("role/") + IAM_ROLE_NAME.maximum, region=False
    ),
    # The singleton layers' lock table: a table name has at most 255 characters
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html).
    ("AWS::DynamoDB::Table", "Arn"): arn_length("dynamodb", len("table/") + 255),
}


def intrinsic_length(value: Any, reference: Callable[[dict], int]) -> int | None:
    """The longest string CloudFormation can resolve `value` to, or None when `value` is no
    intrinsic function. `reference` bounds a Ref or Fn::GetAtt of a resource, and an
    Fn::ImportValue."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((key, arg),) = value.items()
    if key == "Ref" and arg in PSEUDO_PARAMETER_LENGTH:
        return PSEUDO_PARAMETER_LENGTH[arg]
    if key in ("Ref", "Fn::GetAtt", "Fn::ImportValue"):
        return reference(value)
    if key == "Fn::Join":
        separator, parts = arg
        lengths = [_string_length(p, reference) for p in parts]
        return sum(lengths) + len(separator) * max(len(parts) - 1, 0)
    return None


def _string_length(value: Any, reference: Callable[[dict], int]) -> int:
    if isinstance(value, str):
        return len(value)
    length = intrinsic_length(value, reference)
    if length is None:
        raise ValueError(f"cannot size {value!r}")
    return length


def json_length(value: Any, string_length: Callable[[Any], int | None]) -> int:
    """Characters of `value` written as JSON without white space, the way IAM counts a
    policy. `string_length(v)` is the length a v that stands for a string (an intrinsic
    function) resolves to, or None when v is plain JSON."""
    length = string_length(value)
    if length is not None:
        return length + 2  # its quotes
    if isinstance(value, dict):
        items = [
            json_length(str(k), string_length) + 1 + json_length(v, string_length)
            for k, v in value.items()
        ]
        return 2 + sum(items) + max(len(items) - 1, 0)
    if isinstance(value, list):
        items = [json_length(v, string_length) for v in value]
        return 2 + sum(items) + max(len(items) - 1, 0)
    return len(json.dumps(value))

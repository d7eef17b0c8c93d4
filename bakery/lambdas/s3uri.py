"""s3://BUCKET/KEY locations: the one parser every part of bakery uses.

It lives with the Lambdas because their package ships alone; the plan, the
stores, the CDK constructs and the graph import it from here.
"""

from __future__ import annotations

import re

_S3 = re.compile(r"^s3://([^/]+)/?(.*)$")


def split(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/key' -> ('bucket', 'some/key'); raise ValueError for anything else."""
    m = _S3.match(uri)
    if not m:
        raise ValueError(f"{uri!r} is not an s3://bucket/key location")
    return m.group(1), m.group(2)


def is_hidden(key: str) -> bool:
    """Keys under a '.'- or '_'-prefixed part are bakery's own (staging, temporary files)."""
    return any(part.startswith((".", "_")) for part in key.split("/") if part)

"""A seekable, read-only view of one S3 object over ranged GETs.

Parquet readers seek to the footer and then to the column chunks they need, so reading
a file's schema or one row group costs a few requests instead of the whole object. Used
by the export Lambda and by `bakery compare`; it lives with the Lambdas because their
code bundle holds only bakery/lambdas/.
"""

from __future__ import annotations

import io
from typing import Any


class RangedObject(io.RawIOBase):
    def __init__(self, client: Any, bucket: str, key: str, size: int):
        self.client, self.bucket, self.key, self.size, self.pos = client, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.pos + len(buffer), self.size)
        if end <= self.pos:
            return 0
        body = self.client.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end - 1}"
        )["Body"].read()
        buffer[: len(body)] = body
        self.pos += len(body)
        return len(body)

"""A lock on an S3 store: one object written only if absent (`If-None-Match: *`).

S3 has no file lock, so two bakes on one S3 store could interleave: one bake's
recovery would delete the other's staging and that bake would then publish nothing.
The lock object `s3://<bucket>/.bakery.lock` holds its owner (run id, host, pid) and an
expiry. It is taken with a conditional PUT that fails when the object exists; a lock
past its expiry (its bake died) is taken over with a PUT conditional on its ETag, so
two bakes cannot both take it over. While the bake runs, a thread renews the expiry
(again conditional on the ETag the bake last wrote); a bake that finds its lock gone
or replaced knows it lost it and publishes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from typing import Any

from bakery.errors import BakeryError

KEY = ".bakery.lock"
TTL_SECONDS = 600.0  # a bake that stops renewing is considered dead after this


class LockBusy(BakeryError):
    pass


class LockLost(BakeryError):
    pass


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _precondition(exc: Exception) -> bool:
    """412 PreconditionFailed, or 409 ConditionalRequestConflict (a racing write)."""
    return _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "409", "412")


class S3Lock:
    def __init__(self, client: Any, bucket: str, owner: str, *, ttl: float = TTL_SECONDS):
        self.client = client
        self.bucket = bucket
        self.owner = owner
        self.ttl = ttl
        self.uri = f"s3://{bucket}/{KEY}"
        self.etag: str | None = None
        self.lost: str | None = None  # why the lock is no longer ours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _body(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": time.time() + self.ttl,
            }
        ).encode()

    def acquire(self) -> None:
        from botocore.exceptions import ClientError

        try:
            put = self.client.put_object(
                Bucket=self.bucket, Key=KEY, Body=self._body(), IfNoneMatch="*"
            )
        except ClientError as exc:
            if not _precondition(exc):
                raise
            put = self._take_over_if_expired()
        self.etag = put["ETag"]
        self._thread = threading.Thread(target=self._renew_loop, daemon=True)
        self._thread.start()

    def _take_over_if_expired(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=KEY)
        except ClientError as exc:  # released meanwhile: try once more from scratch
            if _code(exc) not in ("NoSuchKey", "404"):
                raise
            return self.client.put_object(
                Bucket=self.bucket, Key=KEY, Body=self._body(), IfNoneMatch="*"
            )
        try:
            held = json.loads(got["Body"].read())
            expires = float(held["expires"])
        except (ValueError, KeyError, TypeError):
            held, expires = {}, 0.0  # unreadable: treat as expired
        if expires > time.time():
            until = time.strftime("%H:%M:%S UTC", time.gmtime(expires))
            raise LockBusy(
                f"another bake (run {held.get('owner')}, host {held.get('host')}, pid "
                f"{held.get('pid')}) holds the lock {self.uri} until {until}; wait for it to "
                f"finish (if that bake is dead, delete {self.uri})"
            )
        try:
            return self.client.put_object(
                Bucket=self.bucket, Key=KEY, Body=self._body(), IfMatch=got["ETag"]
            )
        except ClientError as exc:
            if _precondition(exc):
                raise LockBusy(
                    f"another bake took the expired lock {self.uri} first; wait for it to finish"
                ) from None
            raise

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()

    def renew(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        with self._mutex:
            if self.lost or self.etag is None:
                return
            try:
                put = self.client.put_object(
                    Bucket=self.bucket, Key=KEY, Body=self._body(), IfMatch=self.etag
                )
            except ClientError as exc:
                if _precondition(exc) or _code(exc) in ("NoSuchKey", "404"):
                    self.lost = f"the lock {self.uri} was taken by another bake or deleted"
                return  # other errors: try again at the next renewal
            except BotoCoreError:
                return
            self.etag = put["ETag"]

    def check(self) -> None:
        """Raise LockLost unless the lock object is still the one this bake wrote."""
        from botocore.exceptions import ClientError

        with self._mutex:
            if self.lost is None:
                try:
                    head = self.client.head_object(Bucket=self.bucket, Key=KEY)
                    if head["ETag"] != self.etag:
                        self.lost = f"the lock {self.uri} was taken by another bake"
                except ClientError:
                    self.lost = f"the lock {self.uri} was deleted"
            if self.lost:
                raise LockLost(self.lost)

    def release(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._mutex:
            if self.etag is not None and not self.lost:
                # only our own lock (conditional on the ETag we wrote); when it is not
                # ours any more, or S3 is unreachable, it expires on its own
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.delete_object(Bucket=self.bucket, Key=KEY, IfMatch=self.etag)
            self.etag = None

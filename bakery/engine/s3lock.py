"""A lock on an S3 store: one object written only if absent (`If-None-Match: *`).

S3 has no file lock, so two bakes on one S3 store could interleave: one bake's
recovery would delete the other's staging and that bake would then publish nothing.
The lock object `s3://<bucket>/.bakery.lock` holds its owner (run id, host, pid) and an
expiry. It is taken with a conditional PUT that fails when the object exists; a lock
past its expiry (its bake died) is taken over with a PUT conditional on its ETag
(`If-Match`), so two bakes cannot both take it over. S3 evaluates both conditions
atomically, answering 412 Precondition Failed, or 409 ConditionalRequestConflict to a
write racing another:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
(moto, which the tests run against, implements both headers on PutObject, and
If-Match on DeleteObject:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).

The lease is short (TTL_SECONDS) and kept alive by a heartbeat: while the bake's
process lives, a thread renews the expiry every quarter lease (again conditional on the
ETag the bake last wrote). A killed bake stops renewing, so the next bake waits at most
one lease before taking over and rolling the dead bake's journal forward (the recovery
that follows acquire, bakery.engine.publish.Staging.recover); until then readers may
see the dead bake's copy half done, which is why the lease is short. A bake that finds
its lock gone or replaced, or could not renew it within its lease (S3 unreachable), knows
it may have lost it and publishes nothing. Expiries are wall-clock times written by the
holder and read by the next bake: hosts sharing a store need clocks within a few seconds
of each other (NTP), far less than the lease.
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
# A bake that stops renewing is considered dead after this. Renewed every quarter of
# it, so three renewals in a row can fail (a slow or throttled S3) before it lapses.
TTL_SECONDS = 60.0


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
    def __init__(self, client: Any, bucket: str, owner: str, *, ttl: float | None = None):
        self.client = client
        self.bucket = bucket
        self.owner = owner
        self.ttl = TTL_SECONDS if ttl is None else ttl
        self.uri = f"s3://{bucket}/{KEY}"
        self.etag: str | None = None
        self.expires = 0.0  # of the lease this bake last wrote (its own clock)
        self._writing = 0.0  # the expiry in the body being written
        self.lost: str | None = None  # why the lock is no longer ours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _body(self) -> bytes:
        self._writing = time.time() + self.ttl
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": self._writing,
                "lease_seconds": self.ttl,
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
        self.expires = self._writing
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
        while not self._stop.wait(self.ttl / 4):
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
                else:  # try again at the next renewal, unless the lease has lapsed
                    self._lapsed()
                return
            except BotoCoreError:
                self._lapsed()
                return
            self.etag = put["ETag"]
            self.expires = self._writing

    def _lapsed(self) -> None:
        if time.time() >= self.expires:
            self.lost = (
                f"the lock {self.uri} could not be renewed within its {self.ttl:.0f}s lease "
                "(S3 unreachable?), so another bake may have taken it over"
            )

    def check(self) -> None:
        """Raise LockLost unless the lock object is still the one this bake wrote."""
        from botocore.exceptions import ClientError

        with self._mutex:
            if self.lost is None:
                self._lapsed()
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

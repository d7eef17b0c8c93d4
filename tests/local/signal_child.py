"""`bakery ARGS...` that signals itself at a publish point: run by the kill and SIGTERM
tests as `python tests/local/signal_child.py ARGS...` (not a test module).

Once a publish into the store has started (bakery.engine.publish.Staging.publish, a
bake's or a simulate's), every os.replace, os.unlink, os.rmdir and shutil.rmtree (one
operation, whatever it deletes) is counted; right after the
$BAKERY_TEST_SIGNAL_AT-th, the process sends itself $BAKERY_TEST_SIGNAL (SIGTERM or
SIGKILL), as systemd or a container runtime would at that moment. The publish's
operations, in order: the journal written (a rename), the published folder moved aside,
the staged folder moved in (once per table), the journal deleted (the commit), the old
copies deleted, the staging removed. With $BAKERY_TEST_SIGNAL_AT=0 nothing is sent and
each operation is printed (`publish operation N: FUNCTION PATH`), so a test can walk every
point, or one of each kind.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

from bakery.engine import publish

SIGNAL = getattr(signal, os.environ.get("BAKERY_TEST_SIGNAL", "SIGTERM"))
AT = int(os.environ.get("BAKERY_TEST_SIGNAL_AT", "0"))
count = 0
armed = False
inside = False


def _counted(real):
    def call(*args, **kwargs):
        global count, inside
        if inside:  # a file deleted by a folder's rmtree: the rmtree is the operation
            return real(*args, **kwargs)
        inside = True
        try:
            result = real(*args, **kwargs)
        finally:
            inside = False
        if armed:
            count += 1
            if count == AT:
                os.kill(os.getpid(), SIGNAL)
            elif not AT:
                what = f"{real.__name__} {args[0] if args else ''}"
                print(f"publish operation {count}: {what}", file=sys.stderr, flush=True)
        return result

    return call


def _publish(real):
    def call(self, refs):
        global armed
        armed = True
        return real(self, refs)

    return call


if __name__ == "__main__":
    publish.Staging.publish = _publish(publish.Staging.publish)
    os.replace = _counted(os.replace)
    os.unlink = _counted(os.unlink)
    os.rmdir = _counted(os.rmdir)
    shutil.rmtree = _counted(shutil.rmtree)
    from bakery.cli import main

    sys.argv = ["bakery", *sys.argv[1:]]
    main()

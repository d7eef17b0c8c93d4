"""A single-node Trino for one bake or test session: loopback only, a free port, a Hive
catalog over the local file system with a file metastore, stopped on every exit path.

The Hive catalog (`hive`) keeps its metastore as files under the server's own work
folder (hive.metastore=file) and reads and writes data through Trino's native local
file system (fs.native-local.enabled, local.location): a table's location
`local:///<path>` is the file `<local root>/<path>`. The local root is `/`, so a table
location is the store folder's absolute path. Property names from Trino's docs:
https://trino.io/docs/current/object-storage/file-system-local.html and
https://trino.io/docs/current/object-storage/metastores.html (file metastore).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bakery.errors import BakeryError
from bakery.trino import install

READY_TIMEOUT_ENV = "BAKERY_TRINO_START_TIMEOUT"

# A short-lived server on a small, busy machine: most of a bake's Trino time is CPU spent
# compiling (each query generates its own bytecode) and planning, not moving data. C1
# only (TieredStopAtLevel=1) compiles fast and never spends cores on C2; the serial
# collector needs no GC threads; the code cache C1 fills stays small.
JVM_FLAGS = [
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-XX:ReservedCodeCacheSize=128M",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.attach.allowAttachSelf=true",
    "--enable-native-access=ALL-UNNAMED",
]


class ServerFailed(BakeryError):
    """Trino did not start; the message names its log."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def heap_bytes() -> int:
    """A quarter of the machine's memory, between 1 and 2 GiB: enough for the sample
    and test bakes, modest beside DuckDB and the other processes of a bake."""
    from bakery.engine.duck import machine_memory

    return max(1 << 30, min(2 << 30, machine_memory() // 4))


def location(path: Path) -> str:
    """The Trino location of a local folder (local.location is `/`)."""
    return "local:///" + path.resolve().as_posix().lstrip("/")


def _write_config(etc: Path, data: Path, port: int, heap: int) -> None:
    catalog = etc / "catalog"
    catalog.mkdir(parents=True)
    query_memory = f"{heap * 4 // 10 // 2**20}MB"
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={port}",
                f"discovery.uri=http://127.0.0.1:{port}",
                "node.environment=bakery",
                f"node.id={uuid.uuid4()}",
                "node.internal-address=127.0.0.1",
                "node.bind-ip=127.0.0.1",
                f"catalog.config-dir={catalog}",
                f"query.max-memory={query_memory}",
                f"query.max-memory-per-node={query_memory}",
                # a single small node: one task writer, few threads (2-core CI machines)
                "task.concurrency=2",
                "task.max-writer-count=1",
                # https://trino.io/docs/current/admin/properties-task.html (default 2 x cores)
                "task.max-worker-threads=4",
                "",
            ]
        )
    )
    # `hive`: tables as this bake reads them; `awsdatacatalog`: the published tables, as
    # the publish guards name them (bakery.planning.model.LIVE_CATALOG)
    for name in ("hive", "awsdatacatalog"):
        _write_catalog(catalog / f"{name}.properties", data / f"metastore-{name}")


def _write_catalog(path: Path, metastore: Path) -> None:
    path.write_text(
        "\n".join(
            [
                "connector.name=hive",
                "hive.metastore=file",
                f"hive.metastore.catalog.dir={location(metastore)}",
                "fs.native-local.enabled=true",
                # a plain path here (Trino 476 refuses `local:///`), locations below are local:///...
                "local.location=/",
                # tables over the store's folders are external (like Athena's Glue tables);
                # UNLOAD writes into them
                "hive.non-managed-table-writes-enabled=true",
                "hive.non-managed-table-creates-enabled=true",
                "hive.collect-column-statistics-on-write=false",
                "hive.storage-format=PARQUET",
                "",
            ]
        )
    )


class Server:
    """A running Trino: `uri`, `connect()`, `stop()` (idempotent)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, work: Path, log: Path):
        self.process = process
        self.port = port
        self.work = work
        self.log = log
        self.start_seconds = 0.0
        self.keep_log = False

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, **session: Any) -> Any:
        import trino

        return trino.dbapi.connect(
            host="127.0.0.1",
            port=self.port,
            user="bakery",
            catalog="hive",
            schema="default",
            http_scheme="http",
            # `?` parameters bound as Athena's ExecutionParameters are, by Trino:
            # one EXECUTE IMMEDIATE ... USING round trip instead of PREPARE, EXECUTE and
            # DEALLOCATE (three queries); the same binding of the same literals
            legacy_prepared_statements=False,
            session_properties=session or None,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self.keep_log:  # a server that failed to start keeps its log for the message
            shutil.rmtree(self.work, ignore_errors=True)


def _log_tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    numbered = [ln for ln in lines if ln[:3] == "1) "]  # airlift's first configuration error
    errors = numbered or [ln for ln in lines if "ERROR" in ln or "Exception" in ln]
    return (errors or lines or [""])[0][:300]


def _ready(server: Server, deadline: float) -> None:
    import json
    import urllib.request

    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(
                f"Trino exited with status {server.process.returncode} while starting: "
                f"{_log_tail(server.log)} (log {server.log})"
            )
        try:
            with urllib.request.urlopen(f"{server.uri}/v1/info", timeout=2) as response:
                if not json.load(response).get("starting", True):
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    raise ServerFailed(f"Trino did not start within its timeout (log {server.log})")


def start(*, heap: int | None = None) -> Server:
    """Start Trino and wait until it answers queries. Raises install.Missing (Java or
    Trino absent: exit 2) or ServerFailed."""
    home = install.installed()
    java = install.find_java()
    work = Path(tempfile.mkdtemp(prefix="bakery-trino-"))
    etc, data = work / "etc", work / "data"
    port = _free_port()
    heap = heap or heap_bytes()
    _write_config(etc, data, port, heap)
    log = work / "server.log"
    command = [
        str(java / "bin" / "java"),
        f"-Xmx{heap // 2**20}m",
        *JVM_FLAGS,
        f"-Dconfig={etc / 'config.properties'}",
        f"-Dplugin.dir={home / 'plugin'}",
        "-cp",
        str(home / "lib" / "*"),
        "io.trino.server.TrinoServer",
    ]
    started = time.monotonic()
    with log.open("wb") as out:
        # its own process group: a Ctrl-C on the terminal reaches bakery, which stops
        # the server itself (stop()), never a half-stopped JVM
        process = subprocess.Popen(
            command, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, work, log)
    atexit.register(server.stop)
    try:
        _ready(server, started + float(os.environ.get(READY_TIMEOUT_ENV, "180")))
    except ServerFailed:
        server.keep_log = True
        server.stop()
        raise
    except BaseException:
        server.stop()
        raise
    server.start_seconds = time.monotonic() - started
    return server


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[Server]:
    """A started server, stopped when the block ends however it ends (a SIGTERM reaches
    here as KeyboardInterrupt through bakery.cli.signals)."""
    server = start(**kwargs)
    try:
        yield server
    finally:
        server.stop()

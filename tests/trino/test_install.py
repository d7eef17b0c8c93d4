"""`bakery engine install trino` and what bake says when Java or Trino is missing."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bakery.trino import install

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mirror(tmp_path):
    """A Maven mirror on 127.0.0.1 serving a tampered trino-server-core tarball."""
    artifact = install.ARTIFACTS[0]
    folder = tmp_path / "maven" / "io" / "trino" / artifact.name / install.VERSION
    folder.mkdir(parents=True)
    (folder / artifact.file()).write_bytes(b"not the tarball Maven Central publishes")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "maven"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _bakery(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bakery", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_install_refuses_a_download_with_the_wrong_checksum(mirror, tmp_path):
    home = tmp_path / "cache"
    done = _bakery(
        "engine",
        "install",
        "trino",
        env={"BAKERY_MAVEN_URL": mirror, "BAKERY_TRINO_HOME": str(home)},
    )
    assert done.returncode == 1, done.stderr
    assert "checksum mismatch for" in done.stderr and "nothing was installed" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(home.rglob("*.tar.gz"))  # the bad file is not kept
    assert not (home / install.VERSION / "server").exists()


def test_bake_without_java_exits_2_saying_how_to_install_it(tmp_path):
    done = _bakery(
        "bake",
        "addressbase",
        "--engine",
        "trino",
        "--store",
        str(tmp_path / "store"),
        env={"BAKERY_JVM_DIR": str(tmp_path / "no-jvm"), "JAVA_HOME": "", "BAKERY_JAVA_HOME": ""},
    )
    assert done.returncode == 2, done.stderr
    assert "needs Java 24 or newer" in done.stderr and "BAKERY_JAVA_HOME" in done.stderr
    assert "Traceback" not in done.stderr


def test_bake_without_trino_exits_2_saying_how_to_install_it(tmp_path):
    done = _bakery(
        "bake",
        "addressbase",
        "--engine",
        "trino",
        "--store",
        str(tmp_path / "store"),
        env={"BAKERY_TRINO_HOME": str(tmp_path / "empty")},
    )
    assert done.returncode == 2, done.stderr
    assert "bakery engine install trino" in done.stderr


def test_java_17_is_not_enough(tmp_path):
    jdk = tmp_path / "jvm" / "java-17"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "bin" / "java").write_text("")
    (jdk / "release").write_text('JAVA_VERSION="17.0.12"\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAKERY_JVM_DIR", str(tmp_path / "jvm"))
        mp.delenv("JAVA_HOME", raising=False)
        mp.delenv("BAKERY_JAVA_HOME", raising=False)
        with pytest.raises(install.Missing, match=r"java-17 \(17\)"):
            install.find_java()

"""`bakery engine install trino`: a pinned Trino from Maven Central into a cache folder.

Trino publishes a core server (`io.trino:trino-server-core:<v>:tar.gz`, since 472) and
each connector as a ZIP; bakery needs the core and the Hive connector. The geospatial
functions (ST_Contains, ST_GeometryFromText, ST_X, ...) need no download: the 476 core
tarball ships them as plugin/geospatial (with the Esri geometry library), which is why
`io.trino:trino-geospatial` stops at 368 on Maven Central.

Every download is checked against checksums pinned here: the SHA-1 Maven publishes
beside the artefact (it publishes no .sha512 for these) and a SHA-512 of the same bytes.
Nothing is downloaded at bake time: `installed()` only looks in the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bakery.errors import BakeryError

# 476 is the newest release Maven Central serves for trino-server-core here (477+ are
# not served); Athena engine 3 tracks recent Trino releases, see docs/trino.md.
VERSION = "476"
MAVEN_ENV = "BAKERY_MAVEN_URL"
CACHE_ENV = "BAKERY_TRINO_HOME"
MAVEN = "https://repo1.maven.org/maven2"
# Trino 476 requires JDK 24 (release notes: https://trino.io/docs/current/release/release-476.html)
MIN_JAVA = 24


@dataclass(frozen=True)
class Artifact:
    name: str
    ext: str
    sha1: str
    sha512: str

    def file(self, version: str = VERSION) -> str:
        return f"{self.name}-{version}.{self.ext}"

    def url(self, base: str, version: str = VERSION) -> str:
        return f"{base.rstrip('/')}/io/trino/{self.name}/{version}/{self.file(version)}"


ARTIFACTS = (
    Artifact(
        "trino-server-core",
        "tar.gz",
        "6bae2db438f8e6a2a8d9c8b566bb5e5b05870138",
        "2a798bd9431e6a613a1dd9cbd4485a5ba3971fa4e86ade054c32bb1408cdf0ae9e2bdfd7d9a87266dc9b"
        "6851b51c9676c36fc1397666579cad7463e1724c7d83",
    ),
    Artifact(
        "trino-hive",
        "zip",
        "7b2a4b6468ebf92b47cf096d43c4133eea88ae20",
        "d296a937e67866525d726e0cbf06b31391eac9ab83ae0e7f1b63c1ea3feefc34bef03f0029829ab4af6266"
        "df70c870d45d63492bf16f2b84eba1e5899e8439f6",
    ),
)

INSTALL_HINT = "install it with `uv run bakery engine install trino`"


class InstallError(BakeryError):
    """Trino could not be installed; one line saying why and what to do."""


class Missing(BakeryError):
    """Java or Trino is not there; the message says how to install it (exit 2)."""


def cache_root() -> Path:
    """$BAKERY_TRINO_HOME, else ~/.cache/bakery/trino (XDG_CACHE_HOME respected)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bakery" / "trino"


def server_dir(version: str = VERSION) -> Path:
    return cache_root() / version / "server"


def installed(version: str = VERSION) -> Path:
    """The installed server folder, or Missing saying how to install it."""
    folder = server_dir(version)
    if not (folder / ".installed").is_file():
        raise Missing(f"Trino {version} is not installed in {folder.parent}: {INSTALL_HINT}")
    return folder


def _digests(path: Path) -> tuple[str, str]:
    sha1, sha512 = hashlib.sha1(), hashlib.sha512()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha1.update(chunk)
            sha512.update(chunk)
    return sha1.hexdigest(), sha512.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:  # URLError, HTTPError, timeouts are OSErrors
        part.unlink(missing_ok=True)
        raise InstallError(f"could not download {url}: {exc}") from None
    part.replace(dest)


def _verified(artifact: Artifact, base: str, downloads: Path) -> Path:
    """The artefact in `downloads`, fetched when absent or damaged, checksums verified."""
    path = downloads / artifact.file()
    if path.is_file() and _digests(path) == (artifact.sha1, artifact.sha512):
        return path
    url = artifact.url(base)
    _fetch(url, path)
    sha1, sha512 = _digests(path)
    if (sha1, sha512) != (artifact.sha1, artifact.sha512):
        path.unlink(missing_ok=True)
        raise InstallError(
            f"checksum mismatch for {url}: sha1 {sha1} (expected {artifact.sha1}); "
            "the file was deleted and nothing was installed; retry, or check the "
            f"{MAVEN_ENV} mirror"
        )
    return path


def install(version: str = VERSION, *, log: object = print) -> Path:
    """Download (or reuse) the artefacts, verify them, and unpack the server with the
    Hive plugin under cache_root()/<version>/server. Idempotent: an installed version is
    left as it is."""
    if version != VERSION:
        raise InstallError(f"only Trino {VERSION} is pinned (checksums); not {version}")
    folder = server_dir(version)
    if (folder / ".installed").is_file():
        return folder
    base = os.environ.get(MAVEN_ENV) or MAVEN
    downloads = folder.parent / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    core, hive = (_verified(a, base, downloads) for a in ARTIFACTS)
    building = folder.parent / "server.tmp"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    with tarfile.open(core) as tar:
        tar.extractall(building, filter="data")
    (top,) = list(building.iterdir())  # trino-server-core-<v>/
    with zipfile.ZipFile(hive) as archive:
        archive.extractall(top / "plugin")
    (top / "plugin" / f"trino-hive-{version}").rename(top / "plugin" / "hive")
    (top / ".installed").write_text(version + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    top.rename(folder)
    shutil.rmtree(building, ignore_errors=True)
    if callable(log):
        log(f"installed Trino {version} in {folder}")
    return folder


def _java_version(home: Path) -> int | None:
    """The feature version from the JDK's `release` file (JAVA_VERSION="25.0.1")."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(m.group(1)) if m and (home / "bin" / "java").is_file() else None


def find_java() -> Path:
    """A JDK >= MIN_JAVA: $BAKERY_JAVA_HOME, $JAVA_HOME, then the newest in /usr/lib/jvm."""
    candidates = [os.environ.get("BAKERY_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    explicit = [Path(c) for c in candidates if c]
    jvm = Path(os.environ.get("BAKERY_JVM_DIR", "/usr/lib/jvm"))
    found = sorted(
        (p for p in (jvm.iterdir() if jvm.is_dir() else []) if _java_version(p)),
        key=lambda p: _java_version(p) or 0,
        reverse=True,
    )
    for home in [*explicit, *found]:
        if (_java_version(home) or 0) >= MIN_JAVA:
            return home
    seen = ", ".join(f"{p} ({_java_version(p) or '?'})" for p in [*explicit, *found]) or "none"
    raise Missing(
        f"Trino {VERSION} needs Java {MIN_JAVA} or newer; JDKs found: {seen}. Install one "
        "(e.g. `apt-get install temurin-25-jdk` from Adoptium's apt repository) or set "
        "BAKERY_JAVA_HOME to its folder"
    )

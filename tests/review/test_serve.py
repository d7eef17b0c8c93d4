"""`bakery serve`: the answers of `bakery lookup --json` over HTTP, checked against its
own OpenAPI document (schemathesis), against lookup for every postcode of a sample
bake, and as the real blocking command on a loopback port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import schemathesis
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from typer.main import get_command

from bakery.cli.common import app as cli
from bakery.democracy_club.serve import Lookups, make_app
from bakery.plan import build_plan
from bakery.store import LocalStore
from bakery.workspace import load_workspace

REPO = Path(__file__).resolve().parents[2]
EXPORT = "pollingstations.private.data/addressbase/development/current_elections_parquet"
runner = CliRunner()
COMMAND = get_command(cli)  # built once: typer builds it again on each invoke


@pytest.fixture(scope="session")
def api(baked: Path):
    from bakery.democracy_club.lookup import export_step

    plan = build_plan(load_workspace(REPO), "development")
    return make_app(Lookups(LocalStore(baked), plan, export_step(plan)))


@pytest.fixture(scope="session")
def client(api) -> TestClient:
    return TestClient(api)


@pytest.fixture(scope="session")
def addresses(baked: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted((baked / EXPORT).glob("*.parquet")):
        table = pq.read_table(path)
        if table.num_columns:
            rows += table.select(["uprn", "postcode"]).to_pylist()
    assert len(rows) > 100  # a sample with addresses, or nothing is checked
    return rows


@pytest.fixture(autouse=True)
def _plan_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """lookup reads the layer files on each call: here once, so that a lookup of every
    postcode takes seconds (what lookup answers is what is compared)."""
    from bakery.democracy_club import lookup

    monkeypatch.setattr(lookup, "load_plan", _cached_plan)


_PLANS: dict = {}


def _cached_plan(env: str, check_sql: bool = True):
    from bakery.cli.common import load_plan

    if env not in _PLANS:
        _PLANS[env] = load_plan(env, check_sql=check_sql)
    return _PLANS[env]


def lookup_json(baked: Path, postcode: str) -> dict:
    result = runner.invoke(COMMAND, ["lookup", postcode, "--json", "--store", str(baked)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_postcode_answers_what_lookup_json_prints(baked, client, addresses):
    postcodes = sorted({r["postcode"] for r in addresses})
    assert len(postcodes) > 50
    statuses = set()
    for postcode in postcodes:
        expected = lookup_json(baked, postcode.lower().replace(" ", ""))
        got = client.get(f"/postcode/{postcode.lower().replace(' ', '')}")
        assert got.status_code == 200, (postcode, got.text)
        assert got.json() == expected, postcode
        statuses.add(expected["status"])
    assert statuses == {"ok"}


def test_address_answers_its_postcode_with_only_that_address(baked, client, addresses):
    row = addresses[len(addresses) // 2]
    expected = lookup_json(baked, row["postcode"])
    expected["addresses"] = [a for a in expected["addresses"] if a["uprn"] == row["uprn"]]
    got = client.get(f"/address/{row['uprn']}")
    assert got.status_code == 200
    assert got.json() == expected
    assert len(got.json()["addresses"]) == 1


@pytest.mark.parametrize(
    ("path", "code", "status"),
    [
        ("/postcode/not-a-postcode", 400, "error"),
        ("/postcode/..%2F..%2Fetc%2Fpasswd", 404, None),  # no route: never a file path
        ("/postcode/ZZ99ZZ", 404, "unknown outcode"),
        ("/address/12ab", 400, "error"),
        ("/address/999999999999", 404, "unknown uprn"),
    ],
)
def test_malformed_and_unknown(client, path, code, status):
    got = client.get(path)
    assert got.status_code == code, got.text
    if status is not None:
        assert got.json()["status"] == status
        assert got.json()["error" if code == 400 else "status"]


def test_unknown_postcode_in_a_known_outcode_is_404_with_lookups_answer(baked, client, addresses):
    outcode = addresses[0]["postcode"].split(" ")[0]
    known = {r["postcode"] for r in addresses}
    postcode = next(f"{outcode} {d}ZZ" for d in "0123456789" if f"{outcode} {d}ZZ" not in known)
    got = client.get(f"/postcode/{postcode}")
    assert got.status_code == 404
    assert got.json() == lookup_json(baked, postcode)
    assert got.json()["status"] == "unknown postcode"


def test_the_readmes_postcode_answers_what_lookup_prints(baked, client):
    """README: `curl http://127.0.0.1:8000/postcode/NR14FA` after `bakery serve`."""
    readme = (REPO / "README.md").read_text()
    assert "/postcode/NR14FA" in readme
    got = client.get("/postcode/NR14FA")
    expected = lookup_json(baked, "NR14FA")
    assert got.json() == expected
    assert got.status_code == (200 if expected["status"] == "ok" else 404)


def test_openapi_document_lists_both_routes(client):
    doc = client.get("/openapi.json").json()
    assert {"/postcode/{postcode}", "/address/{uprn}"} <= set(doc["paths"])


def test_schemathesis(api):
    """Generated requests to every operation of the document; each answer must match it
    (status code, content type, schema) and none may be a server error."""
    operations = [found.ok() for found in schemathesis.openapi.from_asgi(
        "/openapi.json", api).get_all_operations()]  # fmt: skip
    assert len(operations) == 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_answers_on_loopback(baked):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bakery", "serve", "--store", str(baked), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json") as r:
                    body = json.load(r)
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
        assert body is not None and body["info"]["title"] == "bakery serve"
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/postcode/nope")
        assert bad.value.code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=30)

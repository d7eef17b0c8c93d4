"""bake, sample-data and lookup refuse bad input in one line with the right exit code:
malformed postcodes, nothing baked, unusable stores and S3 endpoints; and a failed bake
says which layers were baked and published, which failed and which never started."""

from __future__ import annotations

import io
import json
import socket

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.democracy_club.postcodes import is_postcode, normalise_postcode
from bakery.democracy_club.samples.addressbase import addresses_table
from bakery.store import LocalStore
from tests.local.conftest import RAW, export_location

runner = CliRunner()
EXPORT = "s3://pollingstations.private.data/addressbase/{env}/current_elections_parquet/"


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- lookup: the postcode --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "../evil 1aa",
        "'; DROP TABLE x;--",
        "ſw1a 1aa",  # long s: upper-cases to S, but it is not ASCII
        "sw1a 1ää",
        "CB1",  # an outcode alone
        "A" * 300,
        "CB1 9FN/..",
        "1AA CB1",
    ],
)
def test_lookup_refuses_what_is_not_a_uk_postcode(text, tmp_path):
    store = LocalStore(tmp_path)
    evil = "s3://pollingstations.private.data/addressbase/development/EVIL.parquet"
    store.write_bytes(evil, b"not parquet")
    result = run("lookup", text, "--store", str(tmp_path))
    assert result.exit_code == 2
    assert one_line(result) == (
        f"bakery: error: '{text}' does not look like a UK postcode (e.g. CB1 9FN)"
    )
    assert result.stdout == ""


def test_lookup_shows_control_characters_escaped_on_one_line(tmp_path):
    result = run("lookup", "cb1\n9fn;", "--store", str(tmp_path))
    assert result.exit_code == 2
    assert one_line(result) == (
        "bakery: error: 'cb1\\n9fn;' does not look like a UK postcode (e.g. CB1 9FN)"
    )


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("cb19fn", "CB1 9FN"),
        (" CB1  9FN ", "CB1 9FN"),
        ("m11ae", "M1 1AE"),
        ("sw1a1aa", "SW1A 1AA"),
    ],
)
def test_postcode_shapes_accepted(text, normal):
    assert normalise_postcode(text) == normal and is_postcode(normal)


# -- lookup: nothing baked -------------------------------------------------------------


def nothing_baked(env: str, store: str, hint: str) -> str:
    return (
        f"bakery: error: nothing is baked for env {env} in store {store} yet "
        f"(no files at {EXPORT.format(env=env)}); bake first: "
        f"uv run bakery bake current_elections --with-upstream --sample{hint}"
    )


def test_lookup_in_a_store_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope"
    result = run("lookup", "CB1 9FN", "--store", str(missing))
    assert result.exit_code == 1
    assert one_line(result) == nothing_baked("development", str(missing), f" --store {missing}")
    assert not missing.exists()  # lookup only reads: it does not create the store


def test_lookup_for_an_env_that_was_not_baked(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKERY_STORE", str(tmp_path))
    store = LocalStore(tmp_path)
    store.write_bytes(EXPORT.format(env="development") + "ZZ1.parquet", b"x")
    result = run("lookup", "CB1 9FN", "--env", "staging")
    assert result.exit_code == 1
    assert one_line(result) == nothing_baked("staging", str(tmp_path), " --env staging")
    # where other outcodes exist, an unknown one is an answer: exit 0 on stdout
    other = run("lookup", "QQ9 9QQ")
    assert other.exit_code == 0 and other.stderr == ""
    assert other.stdout.strip() == (
        f"QQ9 9QQ: unknown outcode QQ9 (no file {EXPORT.format(env='development')}QQ9.parquet)"
    )
    as_json = run("lookup", "QQ9 9QQ", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["status"] == "unknown outcode"


def test_lookup_in_an_empty_export_folder(tmp_path):
    (tmp_path / "pollingstations.private.data/addressbase/development").mkdir(parents=True)
    (tmp_path / "pollingstations.private.data/addressbase/development/current_elections_parquet")
    result = run("lookup", "cb19fn", "--store", str(tmp_path))
    assert result.exit_code == 1
    assert one_line(result) == nothing_baked("development", str(tmp_path), f" --store {tmp_path}")


# -- store paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("bake", "addressbase"),
        ("bake", "addressbase", "--sample"),
        ("sample-data", "--addresses", "10"),
        ("lookup", "CB1 9FN"),
    ],
)
def test_a_store_that_is_a_file_is_a_usage_error(tmp_path, args):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = run(*args, "--store", str(afile))
    assert result.exit_code == 2
    assert (
        one_line(result)
        == f"bakery: error: store {afile} is not a usable directory: not a directory"
    )
    assert afile.read_text() == "x"


@pytest.mark.parametrize("command", [("bake", "addressbase", "--sample"), ("sample-data",)])
def test_a_store_that_cannot_be_created_is_a_usage_error(tmp_path, command):
    (tmp_path / "afile").write_text("x")
    inside = tmp_path / "afile" / "store"
    result = run(*command, "--store", str(inside))
    assert result.exit_code == 2
    assert one_line(result) == (
        f"bakery: error: store {inside} is not a usable directory: cannot create it: "
        "Not a directory"
    )


def test_a_store_below_a_file_is_a_usage_error_for_lookup(tmp_path):
    (tmp_path / "afile").write_text("x")
    inside = tmp_path / "afile" / "store"
    result = run("lookup", "CB1 9FN", "--store", str(inside))
    assert result.exit_code == 2
    assert one_line(result) == (
        f"bakery: error: store {inside} is not a usable directory: "
        f"{tmp_path / 'afile'} is not a directory"
    )


def test_bake_creates_a_missing_store(tmp_path):
    target = tmp_path / "new" / "store"
    result = run("sample-data", "--addresses", "10", "--ballots", "2", "--store", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.is_dir()


# -- S3 endpoints ----------------------------------------------------------------------


COMMANDS = [("bake", "addressbase"), ("sample-data", "--addresses", "10"), ("lookup", "CB1 9FN")]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "url", ["notaurl", "ftp://host:21", "http://", "http://host/path", "http://host:99999"]
)
def test_a_malformed_endpoint_is_a_usage_error(command, url):
    result = run(*command, "--s3-endpoint", url)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"bakery: error: --s3-endpoint '{url}' is not a usable S3 endpoint: "
        "expected http(s)://host[:port], e.g. http://127.0.0.1:9000"
    )


def test_a_malformed_endpoint_from_the_environment(monkeypatch):
    monkeypatch.setenv("BAKERY_S3_ENDPOINT", "notaurl")
    result = run("lookup", "CB1 9FN")
    assert result.exit_code == 2
    assert one_line(result).startswith(
        "bakery: error: $BAKERY_S3_ENDPOINT 'notaurl' is not a usable S3 endpoint"
    )


@pytest.fixture
def credentials(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches credentials


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_endpoint_is_one_line(command, credentials):
    url = f"http://127.0.0.1:{_free_port()}"
    result = run(*command, "--s3-endpoint", url + "/")
    assert result.exit_code == 1
    assert one_line(result) == f"bakery: error: cannot reach S3 endpoint {url}: could not connect"


@pytest.mark.parametrize("command", COMMANDS)
def test_no_credentials_is_one_line(command, no_credentials):
    url = f"http://127.0.0.1:{_free_port()}"
    result = run(*command, "--s3-endpoint", url)
    assert result.exit_code == 1
    assert one_line(result) == (
        f"bakery: error: cannot reach S3 endpoint {url}: "
        "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )


# -- help ------------------------------------------------------------------------------


def _help(command: str) -> str:
    result = run(command, "--help")
    assert result.exit_code == 0
    return " ".join(result.stdout.replace("│", " ").split())


def test_each_command_describes_its_own_s3_endpoint():
    assert "Bake against this S3-compatible API" in _help("bake")
    lookup_help = _help("lookup")
    assert "Read the per-outcode file from this S3-compatible API" in lookup_help
    assert "Bake against" not in lookup_help
    sample_help = _help("sample-data")
    assert "Write the sample CSVs to this S3-compatible API" in sample_help
    assert "Bake against" not in sample_help
    assert "Exit 0 when the lookup ran" in lookup_help


# -- what a failed bake says -----------------------------------------------------------


def _addresses_only(plan, root) -> None:
    store = LocalStore(root)
    buf = io.BytesIO()
    pacsv.write_csv(
        addresses_table(200),
        buf,
        write_options=pacsv.WriteOptions(include_header=False),
    )
    store.write_bytes(plan.table(RAW).location + "a.csv", buf.getvalue())


def test_failed_bake_says_which_layers_were_published(tmp_path, plan, monkeypatch):
    monkeypatch.delenv("BAKERY_EE_DSN", raising=False)
    _addresses_only(plan, tmp_path)
    result = run("bake", "current_elections", "--with-upstream", "--store", str(tmp_path))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("bakery: error: step current_elections.export_ballots:")
    summary = lines[-2]
    assert summary.startswith("failed after ") and "Traceback" not in result.stderr
    assert summary.endswith(
        f"(store {tmp_path}): baked and published: addressbase; "
        "failed: current_elections (its published data is unchanged); not started: none"
    ), summary
    assert "failed addressbase" not in result.stderr
    as_json = run(
        "bake", "current_elections", "--with-upstream", "--store", str(tmp_path), "--json"
    )
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["layer_status"] == {
        "baked": ["addressbase"],
        "failed": ["current_elections"],
        "failed_after_publishing": [],
        "not_started": [],
    }


def test_a_bake_that_fails_in_the_first_layer_did_not_start_the_next(tmp_path):
    result = run("bake", "current_elections", "--with-upstream", "--store", str(tmp_path))
    assert result.exit_code == 1
    # addressbase has no input: it fails before its first step, nothing ran
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("bakery: error: layer addressbase: input table")
    assert lines[-2].endswith(
        f"(store {tmp_path}): baked and published: none; "
        "failed: addressbase (its published data is unchanged); not started: current_elections"
    ), lines
    assert "steps" not in result.stderr  # no empty table of steps
    as_json = run(
        "bake", "current_elections", "--with-upstream", "--store", str(tmp_path), "--json"
    )
    assert json.loads(as_json.stdout)["layer_status"] == {
        "baked": [],
        "failed": ["addressbase"],
        "failed_after_publishing": [],
        "not_started": ["current_elections"],
    }


def test_ctrl_c_says_what_was_published_and_what_never_started(tmp_path, plan, monkeypatch):
    import bakery.engine.runner as runner_module

    _addresses_only(plan, tmp_path)
    real = runner_module.run_step

    def interrupt(ctx, step):
        if step.id == "partition_addressbase":
            raise KeyboardInterrupt
        return real(ctx, step)

    monkeypatch.setattr(runner_module, "run_step", interrupt)
    result = runner.invoke(
        app, ["bake", "current_elections", "--with-upstream", "--store", str(tmp_path)]
    )
    assert result.exit_code != 0
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("interrupted after"))
    assert line.endswith(
        f"(store {tmp_path}): baked and published: none; "
        "interrupted: addressbase (its published data is unchanged); "
        "not started: current_elections"
    ), line
    assert not LocalStore(tmp_path).list(export_location(plan))


# -- docs/local.md's examples are what the commands print -------------------------------


def test_docs_local_examples_on_the_sample_data(tmp_path, monkeypatch):
    from tests.local.conftest import REPO

    doc = (REPO / "docs/local.md").read_text()
    monkeypatch.setenv("BAKERY_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("BAKERY_EE_DSN", raising=False)
    assert "uv run bakery bake current_elections --with-upstream --sample" in doc
    baked = run("bake", "current_elections", "--with-upstream", "--sample")
    assert baked.exit_code == 0, baked.stderr
    assert 'uv run bakery lookup "cb1 9fn"' in doc
    looked = run("lookup", "cb1 9fn")
    assert looked.exit_code == 0
    shown = "\n".join(ln.rstrip() for ln in looked.stdout.strip().splitlines())
    block = doc.split("On the default sample data the lookup prints:\n\n```\n", 1)[1]
    assert shown == block.split("\n```", 1)[0]
    unknown = run("lookup", "sw1a 1aa")
    assert unknown.exit_code == 0
    assert f"`{unknown.stdout.strip()}`" in " ".join(doc.split())
    for text in ("cb19fn", " CB1  9FN "):
        assert run("lookup", text).exit_code == 0
    bad = run("lookup", "../evil 1aa")
    assert bad.exit_code == 2 and f"`{bad.stderr.strip()}`" in doc


# -- lookup prints data as data, never crashes after printing (issue 13: 7, 8, 9) --------


def _outcode_file(root, outcode: str, rows: list[dict]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("uprn", pa.string()), ("address", pa.string()), ("postcode", pa.string()),
             ("ballot_ids", pa.list_(pa.string()))]
        ),
    )  # fmt: skip
    buf = io.BytesIO()
    pq.write_table(table, buf)
    uri = EXPORT.format(env="development") + f"{outcode}.parquet"
    LocalStore(root).write_bytes(uri, buf.getvalue())
    return uri


MARKUP = "Flat [/] 2, [bold]The Old Mill[/bold], :smile: [red]Road"


def test_lookup_prints_an_address_holding_rich_markup_literally(tmp_path):
    _outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": MARKUP, "postcode": "CB1 9FN", "ballot_ids": ["local.[x].2026"]},
    ])  # fmt: skip
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert MARKUP in result.stdout and "local.[x].2026" in result.stdout, result.stdout


def test_a_damaged_outcode_file_is_named_in_one_line(tmp_path):
    uri = _outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Road", "postcode": "CB1 9FN", "ballot_ids": []},
    ])  # fmt: skip
    path = LocalStore(tmp_path).path(uri)
    path.write_bytes(path.read_bytes()[:40])  # truncated
    result = run("lookup", "CB1 9FN", "--store", str(tmp_path))
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith(f"bakery: error: the outcode file {uri} is damaged ("), line
    assert line.endswith(
        "; bake again to rewrite it: uv run bakery bake current_elections --with-upstream "
        f"--sample --store {tmp_path}"
    ), line
    as_json = run("lookup", "CB1 9FN", "--store", str(tmp_path), "--json")
    assert as_json.exit_code == 1
    out = json.loads(as_json.stdout)
    assert out["ok"] is False and out["status"] == "error" and out["file"] == uri
    assert out["error"] == line.removeprefix("bakery: error: ")


LOOKUP_RUNS, AT_ONCE = 30, 3


def test_lookup_exits_0_every_time_as_a_process(tmp_path):
    """apache/arrow#34314: Arrow's thread pools could abort the process at interpreter
    exit (exit 134 after the answer was printed). lookup ends the process once its output
    is flushed, without the interpreter's teardown; 30 runs, 3 at a time (load makes the
    abort likelier), must all exit 0 with the answer."""
    import subprocess
    import sys

    from tests.local.conftest import REPO

    _outcode_file(tmp_path, "CB1", [
        {"uprn": "1", "address": "1 Mill Road", "postcode": "CB1 9FN", "ballot_ids": ["b.1"]},
    ])  # fmt: skip
    probe = tmp_path / "teardown-ran"
    code = (
        "import atexit, os, sys\n"
        "atexit.register(lambda: open(os.environ['PROBE'], 'w').write('x'))\n"
        "from bakery.cli import main\n"
        "main()\n"
    )
    command = [sys.executable, "-c", code, "lookup", "cb19fn", "--store", str(tmp_path)]
    env = {**__import__("os").environ, "PROBE": str(probe)}
    results = []
    for start in range(0, LOOKUP_RUNS, AT_ONCE):
        procs = [
            subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(min(AT_ONCE, LOOKUP_RUNS - start))
        ]  # fmt: skip
        results.extend((p, *p.communicate(timeout=120)) for p in procs)
    codes = [p.returncode for p, _, _ in results]
    assert codes == [0] * LOOKUP_RUNS, [(p.returncode, err) for p, _, err in results]
    assert all(out.startswith("CB1 9FN: 1 address\n") for _, out, _ in results)
    assert all("1 Mill Road" in out for _, out, _ in results)
    # the mechanism: the process ended before the interpreter's teardown (where the
    # Arrow pools are destroyed), so no atexit handler ran in any of the runs
    assert not probe.exists()


# -- bake: settings and store usage errors, --json on every failure (issue 13: 12) -------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BAKERY_THREADS", "abc", "BAKERY_THREADS='abc' is not a number of threads: use a "
         "whole number from 1 to 256, e.g. BAKERY_THREADS=2"),
        ("BAKERY_THREADS", "100000", "BAKERY_THREADS='100000' is not a number of threads: "
         "use a whole number from 1 to 256, e.g. BAKERY_THREADS=2"),
        ("BAKERY_THREADS", "0", "BAKERY_THREADS='0' is not a number of threads: use a whole "
         "number from 1 to 256, e.g. BAKERY_THREADS=2"),
        ("BAKERY_MEMORY_LIMIT", "1KB", "BAKERY_MEMORY_LIMIT='1KB' is too small for DuckDB: "
         "use at least 64MB, e.g. BAKERY_MEMORY_LIMIT=2GB"),
        ("BAKERY_MEMORY_LIMIT", "lots", "BAKERY_MEMORY_LIMIT='lots' is not a size: use a "
         "number and a unit, e.g. BAKERY_MEMORY_LIMIT=2GB"),
    ],
)  # fmt: skip
def test_engine_settings_that_cannot_work_are_usage_errors(
    tmp_path, monkeypatch, name, value, message
):
    monkeypatch.setenv(name, value)
    result = run("bake", "addressbase", "--store", str(tmp_path))
    assert result.exit_code == 2
    assert one_line(result) == f"bakery: error: {message}"
    as_json = run("bake", "addressbase", "--store", str(tmp_path), "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {"ok": False, "error": message}


@pytest.mark.parametrize("command", [("bake", "addressbase"), ("lookup", "CB1 9FN"),
                                     ("sample-data",)])  # fmt: skip
def test_an_empty_store_is_a_usage_error(tmp_path, monkeypatch, command):
    from tests.local.conftest import REPO

    monkeypatch.setenv("BAKERY_PROJECT", str(REPO))
    monkeypatch.chdir(tmp_path)  # an empty --store used to mean this folder
    result = run(*command, "--store", "")
    assert result.exit_code == 2
    assert one_line(result) == (
        "bakery: error: --store is empty; give a folder, e.g. --store .bakery/store"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_busy_store_prints_the_json_line(tmp_path, plan):
    from bakery.engine.publish import Staging

    holder = Staging(LocalStore(tmp_path), plan, "holder")
    holder.acquire()
    try:
        result = run("bake", "addressbase", "--store", str(tmp_path), "--json")
    finally:
        holder.release()
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["ok"] is False
    assert out["error"] == (f"another bake is running on store {tmp_path}; wait for it to finish")
    assert out["layer_status"]["failed"] == []
    assert one_line(result) == f"bakery: error: {out['error']}"


@pytest.mark.parametrize("command", [("bake", "addressbase"), ("lookup", "CB1 9FN")])
def test_an_unreachable_endpoint_prints_the_json_line(command, credentials):
    url = f"http://127.0.0.1:{_free_port()}"
    result = run(*command, "--s3-endpoint", url, "--json")
    assert result.exit_code == 1
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["ok"] is False
    assert out["error"] == f"cannot reach S3 endpoint {url}: could not connect"


def test_ctrl_c_while_duckdb_registers_views_is_an_interrupt(tmp_path, plan, monkeypatch):
    """DuckDB reports a Ctrl-C inside a query as its own error; it is an interrupt."""
    import bakery.engine.tables as tables_module

    _addresses_only(plan, tmp_path)

    def interrupted(*args, **kwargs):
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(tables_module, "register", interrupted)
    result = runner.invoke(app, ["bake", "addressbase", "--store", str(tmp_path), "--json"])
    assert result.exit_code == 130
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("interrupted after"))
    assert line.endswith(
        "interrupted: addressbase (its published data is unchanged); not started: none"
    )
    assert json.loads(result.stdout)["error"] == line
    assert "RuntimeError" not in result.stderr


def test_graph_out_under_a_file_is_a_usage_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile / "x.png", afile / "x.dot"):
        result = run("graph", "--out", str(out))
        assert result.exit_code == 2
        assert one_line(result) == (
            f"bakery: error: cannot write {out}: {afile} is a file, not a folder; "
            "give --out a file in a folder"
        )


def test_run_without_network_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run("run", "current_elections", "--env", "production")
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("bakery: error: cannot reach AWS Step Functions in eu-west-2 (")
    assert line.endswith(
        "check the network (and any proxy) and the AWS credentials, then run again"
    )

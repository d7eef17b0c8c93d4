"""Remembered query analyses (bakery/query_cache.py) never hide an error: whatever is
remembered, `bakery validate` reports exactly what a run with nothing remembered
reports, and a damaged, planted or foreign file is ignored."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.spec.conftest import REPO

CACHE = os.path.join(".bakery", "query-analyses.json")

LAYER = """\
name: mini
description: test layer
steps:
  - type: glue_table
    name: mini_in
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_in/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: postcode, type: string}
  - type: glue_table
    name: mini_out
    location: s3://pollingstations.private.data/mini/{{ env }}/mini_out/
    format: parquet
    columns:
      - {name: uprn, type: string}
      - {name: postcode, type: string}
  - type: purge_prefix
    id: empty_out
    table: mini_out
  - type: athena_query
    id: fill
    query: queries/mini.sql
    into: mini_out
"""
QUERY = "SELECT uprn,\n       postcode\nFROM {{ ref('mini.mini_in') }}\n"

PROBE = (
    "import json, sys\n"
    "from bakery.cli import main\n"
    "sys.argv = ['bakery', 'validate', *sys.argv[1:]]\n"
    "code = 0\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
    "print(json.dumps([code, 'sqlglot' in sys.modules, 'typer' in sys.modules]))\n"
)


def validate(root, *args: str) -> tuple[int, str, bool]:
    """(exit code, stderr without the timing, whether sqlglot was imported); the record of
    passing runs is removed first, so every call is a full check."""
    (root / ".bakery" / "validate-ok.json").unlink(missing_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    code, sqlglot, _ = json.loads(out.stdout.strip().splitlines()[-1])
    err = "\n".join(
        line.rsplit(" in ", 1)[0] if line.startswith("ok:") else line
        for line in out.stderr.splitlines()
    )
    return code, err, sqlglot


def same_as_nothing_remembered(root) -> tuple[int, str]:
    """Validate with the analyses remembered so far, then with none: both must agree."""
    remembered = validate(root)
    shutil.copy(root / CACHE, root / "kept.json")
    (root / CACHE).unlink()
    fresh = validate(root)
    shutil.move(root / "kept.json", root / CACHE)
    assert remembered[:2] == fresh[:2]
    return remembered[:2]


@pytest.fixture
def mini(project):
    project.write("layers/mini.yaml", LAYER)
    project.write("layers/queries/mini.sql", QUERY)
    code, err, sqlglot = validate(project.root)
    assert (code, sqlglot) == (0, True), err
    assert (project.root / CACHE).is_file()
    return project


def test_every_query_remembered_needs_no_sqlglot_and_one_change_analyses_again(mini):
    code, err, sqlglot = validate(mini.root)
    assert (code, sqlglot) == (0, False) and err.startswith("ok: 3 layers, 6 tables")
    mini.write("layers/queries/mini.sql", QUERY + "-- a comment\n")
    assert validate(mini.root)[::2] == (0, True)
    assert validate(mini.root)[::2] == (0, False)


def test_a_column_gone_from_a_table_the_query_reads_is_reported(mini):
    mini.edit(
        "layers/mini.yaml", "{name: postcode, type: string}", "{name: post_code, type: string}"
    )
    code, err = same_as_nothing_remembered(mini.root)
    assert code == 1
    assert (
        "layers/queries/mini.sql:2:8: steps[3].query: column 'postcode' is not in any table "
        "the query reads (mini_in); did you mean 'post_code'?"
    ) in err


def test_a_type_changed_in_a_table_the_query_reads_is_reported(mini):
    mini.edit(
        "layers/mini.yaml", "{name: postcode, type: string}", "{name: postcode, type: bigint}"
    )
    code, err = same_as_nothing_remembered(mini.root)
    assert code == 1
    assert (
        "layers/queries/mini.sql:2:8: steps[3].query: column 'postcode' is an integer here" in err
    )


def test_a_type_changed_in_the_table_written_is_reported(mini):
    # the second declaration of postcode is mini_out's
    first = LAYER.index("{name: postcode, type: string}")
    second = LAYER.index("{name: postcode, type: string}", first + 1)
    mini.write(
        "layers/mini.yaml",
        LAYER[:second] + "{name: postcode, type: bigint}" + LAYER[second + 30 :],
    )
    code, err = same_as_nothing_remembered(mini.root)
    assert code == 1
    assert (
        "layers/queries/mini.sql:2:8: steps[3].query: column 'postcode' is string here but "
        "table 'mini.mini_out' declares it bigint"
    ) in err


def test_a_tampered_entry_is_not_trusted(mini):
    data = json.loads((mini.root / CACHE).read_text())
    for entry in data["entries"].values():
        if entry["columns"] == ["uprn", "postcode"]:
            entry["columns"] = ["uprn"]  # the checksum no longer matches
    (mini.root / CACHE).write_text(json.dumps(data))
    code, err, sqlglot = validate(mini.root)
    assert (code, sqlglot) == (0, True), err


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff garbage",
        b'{"version": "x", "entries": {}}',
        b"[1, 2, 3]",
        b'{"version": ',
        b"",
    ],
)
def test_a_garbage_file_is_ignored(mini, content):
    (mini.root / CACHE).write_bytes(content)
    code, err, sqlglot = validate(mini.root)
    assert (code, sqlglot) == (0, True), err
    # and it is replaced by a good one
    assert validate(mini.root)[::2] == (0, False)


def test_garbage_inside_a_well_formed_file_is_ignored(mini):
    data = json.loads((mini.root / CACHE).read_text())
    junk = base64.b64encode(b"\xe3not marshal data").decode()
    data["templates"] = {k: junk for k in data["templates"]}
    data["kinds"] = {k: ["nested", "nonsense"] for k in data["kinds"]}
    for entry in data["entries"].values():
        entry["outputs"] = "nonsense"
    (mini.root / CACHE).write_text(json.dumps(data))
    assert validate(mini.root)[:2] == (0, "ok: 3 layers, 6 tables (development)")
    mini.edit(
        "layers/mini.yaml", "{name: postcode, type: string}", "{name: postcode, type: bigint}"
    )
    assert "column 'postcode' is an integer here" in validate(mini.root)[1]


def test_a_fifo_or_symlink_in_place_of_the_file_is_never_opened(mini):
    path = mini.root / CACHE
    path.unlink()
    os.mkfifo(path)
    # opening the FIFO would block for ever (the subprocess would time out)
    code, err, sqlglot = validate(mini.root)
    assert (code, sqlglot) == (0, True), err
    assert path.is_fifo()  # left alone, not replaced
    path.unlink()
    path.symlink_to("/dev/zero")
    code, err, sqlglot = validate(mini.root)
    assert (code, sqlglot) == (0, True), err
    assert path.is_symlink()
    path.unlink()
    record = mini.root / ".bakery" / "validate-ok.json"
    record.unlink(missing_ok=True)
    os.mkfifo(record)
    try:
        out = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=mini.root,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
        assert json.loads(out.stdout.splitlines()[-1])[0] == 0, out.stderr
        assert record.is_fifo()
    finally:
        record.unlink()


def test_another_version_is_discarded(mini):
    data = json.loads((mini.root / CACHE).read_text())
    data["version"] = "0" * 40  # e.g. another sqlglot or an edited sql.py
    (mini.root / CACHE).write_text(json.dumps(data))
    assert validate(mini.root)[::2] == (0, True)


def test_a_plain_command_line_runs_without_typer_and_reports_the_same(mini):
    mini.edit(
        "layers/mini.yaml", "{name: postcode, type: string}", "{name: post_code, type: string}"
    )
    (mini.root / ".bakery" / "validate-ok.json").unlink(missing_ok=True)
    probe = [sys.executable, "-c", PROBE]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    fast = subprocess.run(probe, cwd=mini.root, capture_output=True, text=True, env=env)
    assert json.loads(fast.stdout.splitlines()[-1])[::2] == [1, False]  # no typer
    via_typer = subprocess.run(
        [sys.executable, "-c", "from bakery.cli import app; app()", "validate"],
        cwd=mini.root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert via_typer.returncode == 1
    assert via_typer.stderr == fast.stderr
    for args in (["--env", "nope"], ["no/such.yaml"]):
        fast = subprocess.run(
            [*probe, *args], cwd=mini.root, capture_output=True, text=True, env=env
        )
        via_typer = subprocess.run(
            [sys.executable, "-c", "from bakery.cli import app; app()", "validate", *args],
            cwd=mini.root,
            capture_output=True,
            text=True,
            env=env,
        )
        assert json.loads(fast.stdout.splitlines()[-1])[0] == via_typer.returncode == 2
        assert fast.stderr == via_typer.stderr and fast.stderr.startswith("bakery: error: ")


def test_an_undefined_variable_in_a_remembered_template_is_reported_at_its_line(mini):
    mini.write("layers/queries/mini.sql", "SELECT uprn,\n       {{ nope }} AS postcode\nFROM t\n")
    first = validate(mini.root)
    data = json.loads((mini.root / CACHE).read_text())
    assert data["templates"]  # the template compiled, and was remembered
    again = validate(mini.root)  # rendered from the remembered code
    assert first[:2] == again[:2]
    assert first[0] == 1
    assert (
        "layers/queries/mini.sql:2:11: steps[3].query: template uses an undefined variable: "
        "'nope' is undefined"
    ) in first[1]

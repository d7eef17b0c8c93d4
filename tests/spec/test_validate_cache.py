"""`bakery validate` on an unchanged project answers from its record of passing runs,
without importing typer, pydantic or sqlglot; any change to a project file, the
arguments or the environment runs the full check, and failures are never recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.spec.conftest import REPO

PROBE = (
    "import sys\n"
    "from bakery.cli import main\n"
    "sys.argv = ['bakery', 'validate', *sys.argv[1:]]\n"
    "code = 0\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
    "heavy = sorted(m for m in ('typer', 'pydantic', 'sqlglot', 'jinja2') if m in sys.modules)\n"
    "print(json.dumps([code, heavy]))\n"
)


def validate(root, *args: str, env: dict | None = None) -> tuple[int, list[str], str]:
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + PROBE, *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
    )
    code, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    return code, heavy, out.stderr


def test_unchanged_project_answers_without_the_heavy_imports(project):
    code, heavy, err = validate(project.root)
    assert code == 0 and "sqlglot" in heavy and err.startswith("ok: 3 layers")
    code, heavy, err = validate(project.root)
    assert code == 0 and heavy == [] and err.startswith("ok: 3 layers, ")
    assert (project.root / ".bakery" / "validate-ok.json").is_file()
    # other arguments or environment: a full check first (pydantic reads the specs;
    # sqlglot is not needed: every query's analysis is remembered, bakery/query_cache.py)
    assert "pydantic" in validate(project.root, "--all-envs")[1]
    assert validate(project.root, "--all-envs")[1] == []
    assert "pydantic" in validate(project.root, env={"DC_ENVIRONMENT": "staging"})[1]
    # --help always reaches the real command
    code, heavy, _ = validate(project.root, "--help")
    assert code == 0 and "typer" in heavy


def test_a_change_anywhere_in_the_project_runs_the_full_check(project):
    assert validate(project.root)[0] == 0
    assert validate(project.root)[1] == []
    project.mini("SELECT uprn, postcode FROM", "SELECT uprn, postcod FROM")
    code, heavy, err = validate(project.root)
    assert code == 1 and "sqlglot" in heavy and "postcod" in err
    code, heavy, err = validate(project.root)  # a failure is never remembered
    assert code == 1 and "sqlglot" in heavy and "postcod" in err
    project.mini()
    assert validate(project.root)[0] == 0
    project.write("layers/queries/unused.sql", "SELECT 1")  # any file: templates may include it
    assert "pydantic" in validate(project.root)[1]


def test_a_fifo_or_symlink_in_the_project_is_never_opened_to_hash_it(project):
    assert validate(project.root)[0] == 0
    fifo = project.root / "notes.fifo"
    os.mkfifo(fifo)
    try:
        # a hash that opened the FIFO would block here for ever (the subprocess would
        # time out); instead the record is not used and the full check runs
        for _ in range(2):
            code, heavy, _ = validate(project.root)
            assert code == 0 and "pydantic" in heavy
    finally:
        fifo.unlink()
    (project.root / "zeros").symlink_to("/dev/zero")
    try:
        code, heavy, _ = validate(project.root)
        assert code == 0 and "pydantic" in heavy
    finally:
        (project.root / "zeros").unlink()

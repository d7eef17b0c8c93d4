"""`{% include %}` reads only project files under the layers folder, with no hidden name
(issue 19, item 9): not `.git/config`, `.env`, `bakery.yaml`, nor a symlink out of the
folder. A problem in or with an included file names that file and line (item 14)."""

from __future__ import annotations

import pytest

Q = "layers/queries/mini.sql"
INLINE = "sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}"
SELECT = "SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}\n"
SECRET = "TOPSECRET"
KEEP = "keep the files layers use under layers/, with plain names"


def including(project, name: str) -> None:
    """mini's query (a file) includes `name` on its line 2 (the name at column 16)."""
    project.write(Q, f"-- a comment\n-- {{% include '{name}' %}}\n{SELECT}")
    project.mini(INLINE, "query: queries/mini.sql")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param(".git/config", f"it is not under layers/; {KEEP}", id="git-config"),
        pytest.param(".env", f"it is not under layers/; {KEEP}", id="dotenv-at-the-root"),
        pytest.param(
            "layers/.env", f"'.env' is a hidden name, not a project file; {KEEP}", id="dotenv"
        ),
        pytest.param(
            "layers/.cache/part.sql",
            f"'.cache' is a hidden name, not a project file; {KEEP}",
            id="hidden-folder",
        ),
        pytest.param(
            "layers/queries/link.sql",
            f"it leads out of layers/ (a symlink?); {KEEP}",
            id="symlink-to-the-root",
        ),
    ],
)
def test_hidden_files_and_files_outside_layers_are_refused(project, name, reason):
    for secret in (".git/config", ".env", "layers/.env", "layers/.cache/part.sql"):
        project.write(secret, f"-- {SECRET}\n")
    (project.root / "layers/queries/link.sql").symlink_to(project.root / ".env")
    including(project, name)
    problems = project.problems()
    assert problems == [f"{Q}:2:16: steps[2].query: template {name!r} refused: {reason}"]
    assert SECRET not in problems[0]


def test_a_project_file_outside_layers_is_not_found_and_not_read(project):
    including(project, "bakery.yaml")
    assert project.problems() == [
        f"{Q}:2:16: steps[2].query: included template 'bakery.yaml' not found: an included "
        "file is one under layers/, named from the project folder, e.g. "
        "'layers/queries/part.sql'"
    ]


def test_a_missing_include_is_named_at_the_including_line(project):
    including(project, "layers/queries/gone.sql")
    assert project.problems() == [
        f"{Q}:2:16: steps[2].query: included template 'layers/queries/gone.sql' not found: an "
        "included file is one under layers/, named from the project folder, e.g. "
        "'layers/queries/part.sql'"
    ]


def test_a_problem_inside_an_included_file_names_that_file(project):
    project.write("layers/queries/part.sql", "-- one\n-- two {{ nope }}\n")
    including(project, "layers/queries/part.sql")
    assert project.problems() == [
        "layers/queries/part.sql:2:11: steps[2].query: template uses an undefined variable: "
        "'nope' is undefined"
    ]
    project.write("layers/queries/part.sql", "-- one\n{% if %}\n")
    assert project.problems() == [
        "layers/queries/part.sql:2:1: steps[2].query: template syntax error: Expected an "
        "expression, got 'end of statement block'"
    ]


def test_a_file_under_layers_is_included(project):
    project.write("layers/queries/part.sql", "-- the part\n")
    including(project, "layers/queries/part.sql")
    assert project.problems() == []
    assert "-- -- the part\n" in project.plan().layer("mini").steps[-1].sql

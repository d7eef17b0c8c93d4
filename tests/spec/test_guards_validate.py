"""`bakery validate` refuses what could leave the store, break quoting or hang it: unsafe
locations, environment names and variables, files that are not regular project files,
and templates past the render caps. Run on the fixture project tests/fixtures/guards."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakery.cli import app
from bakery.errors import SpecError
from bakery.plan import build_plan
from bakery.workspace import load_workspace

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "guards"
L = "layers/places.yaml"


class Guards:
    def __init__(self, root: Path):
        self.root = root

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new, 1))

    def problems(self) -> list[str]:
        try:
            build_plan(load_workspace(self.root), "development")
        except SpecError as exc:
            return [str(p) for p in exc.problems]
        return []


@pytest.fixture
def guards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Guards:
    root = tmp_path / "guards"
    shutil.copytree(FIXTURE, root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("BAKERY_PROJECT", raising=False)
    monkeypatch.delenv("DC_ENVIRONMENT", raising=False)
    return Guards(root)


def test_the_fixture_is_valid(guards):
    assert guards.problems() == []


SEGMENT_RULE = (
    "use letters, digits and '_', '-', '.', '=', '+', starting with a letter or digit, and "
    "no '..' (every path a bake writes must stay inside its bucket and quote safely)"
)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "/{{ env }}/located/",
            "/{{ env }}/../../elsewhere/",
            f"{L}:28:5: steps[2].location: 's3://guards-data/development/../../elsewhere/': "
            f"folder '..' is not allowed: {SEGMENT_RULE}",
            id="dotdot-location",
        ),
        pytest.param(
            "/{{ env }}/by_key/",
            "/{{ env }}/../by_key/",
            f"{L}:63:5: steps[7].destination: 's3://guards-data/development/../by_key/': "
            f"folder '..' is not allowed: {SEGMENT_RULE}",
            id="dotdot-destination",
        ),
        pytest.param(
            "/{{ env }}/located/",
            "/{{ env }}/it's here/",
            f'{L}:28:5: steps[2].location: "s3://guards-data/development/it\'s here/": '
            f'folder "it\'s here" is not allowed: {SEGMENT_RULE}',
            id="quote-and-space",
        ),
        pytest.param(
            "/{{ env }}/located/",
            "/{{ env }}/a\\b/",
            f"{L}:28:5: steps[2].location: 's3://guards-data/development/a\\\\b/': "
            f"folder 'a\\\\b' is not allowed: {SEGMENT_RULE}",
            id="backslash",
        ),
        pytest.param(
            "/{{ env }}/located/",
            "/{{ env }}/.hidden/",
            f"{L}:28:5: steps[2].location: 's3://guards-data/development/.hidden/': "
            f"folder '.hidden' is not allowed: {SEGMENT_RULE}",
            id="hidden-folder",
        ),
    ],
)
def test_unsafe_locations_are_refused(guards, old, new, expected):
    guards.edit(L, old, new)
    assert guards.problems() == [expected]


def test_environment_names_have_a_pattern(guards):
    guards.edit("bakery.yaml", "  development: {}", "  development: {}\n  ../prod: {}")
    assert guards.problems() == [
        "bakery.yaml:7:3: environments.../prod: environment name '../prod' must be 1-32 "
        "lower-case letters, digits or '-', starting with a letter (it becomes part of S3 "
        "locations and stack names)"
    ]


def test_the_injection_variable_of_issue_13_is_refused_with_its_position(guards):
    guards.edit(
        "bakery.yaml",
        'release: "2026-01-01"',
        "release: \"x' || (SELECT max(id) FROM guards.points) || '\"",
    )
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "bakery.yaml:15:3: variables.release: variable value \"x' || (SELECT max(id) FROM "
        "guards.points) || '\" may hold only letters, digits and '_', '.', ':', '+', ',', '-' "
        "(no '..', at most 200 characters): it is pasted into locations and SQL; pass "
        "anything else as a runtime parameter",
        "1 problem found",
    ]


def test_a_variable_that_climbs_out_of_a_location_is_refused(guards):
    guards.edit("bakery.yaml", 'release: "2026-01-01"', 'release: ".."')
    assert guards.problems()[0].startswith("bakery.yaml:15:3: variables.release: variable value")


def test_layers_dir_stays_inside_the_project(guards):
    guards.edit("bakery.yaml", "variables:", "layers_dir: ../../etc\nvariables:")
    assert guards.problems() == [
        "bakery.yaml:14:1: layers_dir: '../../etc' must be a folder inside the project: a "
        "relative path of letters, digits, '_', '.', '-' and '/', without '..'"
    ]


# ---------------------------------------------------------------- files


SECRET = "secret-content-never-echoed"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside.txt"
    path.write_text(f"{SECRET}: [\n")  # also a YAML syntax error, were it parsed
    return path


def test_a_layer_file_symlinked_out_of_the_project_is_refused_unread(guards, outside):
    (guards.root / "layers" / "shadow.yaml").symlink_to(outside)
    problems = guards.problems()
    assert problems == [
        "layers/shadow.yaml:1:1: cannot read file: it leads outside the project (a symlink?); "
        "keep files inside it"
    ]
    assert SECRET not in "".join(problems)


def test_a_fifo_layer_file_is_refused_without_blocking(guards):
    os.mkfifo(guards.root / "layers" / "pipe.yaml")
    started = time.monotonic()
    assert guards.problems() == [
        "layers/pipe.yaml:1:1: cannot read file: it is a FIFO, not a regular file"
    ]
    assert time.monotonic() - started < 5


def test_a_layer_file_symlinked_to_dev_zero_is_refused_unread(guards):
    (guards.root / "layers" / "zero.yaml").symlink_to("/dev/zero")
    # /dev/zero is outside the project; a device inside it is refused as a device
    assert guards.problems() == [
        "layers/zero.yaml:1:1: cannot read file: it leads outside the project (a symlink?); "
        "keep files inside it"
    ]


def test_a_huge_layer_file_is_refused_by_size(guards):
    (guards.root / "layers" / "huge.yaml").write_text("# " + "x" * (1024 * 1024) + "\n")
    assert guards.problems() == [
        "layers/huge.yaml:1:1: cannot read file: it is 1,048,579 bytes; the limit is 1,048,576"
    ]


def test_include_does_not_follow_a_symlink_out_of_the_project(guards, outside):
    queries = guards.root / "layers" / "queries"
    queries.mkdir()
    (queries / "leak.sql").symlink_to(outside)
    (queries / "q.sql").write_text(
        "SELECT id FROM {{ ref('points') }} WHERE name = '{% include 'layers/queries/leak.sql' %}'"
    )
    guards.edit(
        L,
        "  - type: export_by_key",
        "  - type: check\n    id: leak\n    check: {kind: no_rows, query: queries/q.sql}\n\n"
        "  - type: export_by_key",
    )
    problems = guards.problems()
    assert problems == [
        "layers/queries/q.sql:1:62: steps[7].check.query: template 'layers/queries/leak.sql' "
        "refused: it leads outside the project (a symlink?); keep files inside it"
    ]
    assert SECRET not in "".join(problems)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT '{{ 'a' * 100000000 }}' AS id",
            "template refused: 1 x 100,000,000 items is over the render cap of 262,144 "
            "(Athena's query size limit)",
            id="string-times-big",
        ),
        pytest.param(
            "SELECT '{{ 'x' | center(100000000) }}' AS id",
            "template refused: a number over 262,144 passed to a filter",
            id="filter-width",
        ),
        pytest.param(
            "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}SELECT 1 AS id",
            "template refused: a value of 524,288 items is over the render cap of 262,144 "
            "(Athena's query size limit); make the template smaller",
            id="doubling",
        ),
        pytest.param(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            "SELECT 1 AS id",
            "template refused: rendering took longer than 2 s; a template must render in "
            "milliseconds (look for big loops or repeated expansion)",
            id="slow-loops",
        ),
        pytest.param(
            "SELECT {{ 2 ** 100000000 }} AS id",
            "template refused: an exponent over 64 in a template",
            id="huge-power",
        ),
    ],
)
def test_templates_past_the_render_caps_fail_fast(guards, sql, expected):
    guards.edit(
        L,
        "  - type: export_by_key",
        f'  - type: check\n    id: big\n    check: {{kind: no_rows, sql: "{sql}"}}\n\n'
        "  - type: export_by_key",
    )
    started = time.monotonic()
    problems = guards.problems()
    assert time.monotonic() - started < 6
    assert len(problems) == 1
    assert problems[0].startswith(f"{L}:61:28: steps[7].check.sql: ")
    assert problems[0].endswith(expected)


def test_the_athena_results_location_is_checked_too(guards):
    guards.edit("bakery.yaml", "s3://guards-results/athena/", "s3://guards-results/../athena/")
    assert guards.problems() == [
        "bakery.yaml:10:3: athena.results: 's3://guards-results/../athena/': folder '..' is not "
        f"allowed: {SEGMENT_RULE}"
    ]


def test_a_fifo_query_template_is_refused_without_blocking(guards):
    queries = guards.root / "layers" / "queries"
    queries.mkdir()
    os.mkfifo(queries / "pipe.sql")
    guards.edit(
        L,
        "  - type: export_by_key",
        "  - type: check\n    id: piped\n    check: {kind: no_rows, query: queries/pipe.sql}\n\n"
        "  - type: export_by_key",
    )
    assert guards.problems() == [
        f"{L}:61:28: steps[7].check.query: template 'queries/pipe.sql' is not a regular file "
        "(a folder, FIFO or device)"
    ]

"""A template in someone else's layer file cannot hang `bakery validate` or eat the
machine (issue 19, item 8): loops over a long string, huge format widths, lipsum(), a
replace that multiplies a text. Each runs `bakery validate` in a subprocess with a
timeout, so a regression fails in a minute instead of hanging the suite, and reads the
subprocess's peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
Q = "layers/queries/mini.sql"
INLINE = "sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}"
SELECT = "SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}\n"
LONG = "{% set s = 'x' * 200000 %}"  # under the 256 KiB value cap
PROBE = (
    "import json, sys\n"
    "from bakery.cli import main\n"
    "sys.argv = ['bakery', 'validate']\n"
    "code = 0\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec from the
    # forking process, so it reports pytest's own peak once the suite has grown.
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "print(json.dumps([code, int(hwm.split()[1]) // 1024]))\n"
)
TIME = (
    "template refused: rendering took longer than 2 s; a template must render in "
    "milliseconds (look for big loops or repeated expansion)"
)


def validate(root: Path) -> tuple[int, list[str], int]:
    """(exit code, the problem lines, peak memory in MiB) of `bakery validate` run in a
    subprocess that must finish within a minute (the caps stop a template at 2 s)."""
    env = {k: v for k, v in os.environ.items() if k != "BAKERY_PROJECT"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=root,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    code, peak_mib = json.loads(done.stdout.strip().splitlines()[-1])
    problems = [line for line in done.stderr.splitlines() if ": " in line]
    return code, problems, peak_mib


def in_query(project, *lines: str) -> None:
    """mini's query is a file: these lines, then its SELECT."""
    project.write(Q, "".join(line + "\n" for line in lines) + SELECT)
    project.mini(INLINE, "query: queries/mini.sql")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            [LONG, "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"],
            f"{Q}:2:1: steps[2].query: {TIME}",
            id="nested-loops-over-a-long-string",
        ),
        pytest.param(
            [LONG, "{% for a in s recursive %}{% if loop.depth < 2 %}{{ loop(s) }}{% endif %}",
             "{% endfor %}"],
            f"{Q}:2:1: steps[2].query: {TIME}",
            id="recursive-loop",
        ),
        pytest.param(
            ["-- filler", "{{ lipsum(200000) }}"],
            f"{Q}:2:1: steps[2].query: template refused: lipsum() is not available in "
            "templates (it generates filler text, slowly); write the text out",
            id="lipsum",
        ),
        pytest.param(
            ["{% set s = 'x' * 200000 %}{{ (s | batch(1) | sum(start=[])) | length }}"],
            f"{Q}:1:1: steps[2].query: template refused: sum() adds numbers only in a "
            "template; use join for text",
            id="sum-of-lists",
        ),
        pytest.param(
            ["{% set ns = namespace(x=3) %}{% for i in range(40) %}",
             "{% set ns.x = ns.x * ns.x %}{% endfor %}"],
            f"{Q}:2:1: steps[2].query: template refused: a number of 1,624 bits in a template "
            "sum or product (at most 1,024); templates need small numbers",
            id="squaring-a-number",
        ),
    ],
)  # fmt: skip
def test_a_slow_template_stops_at_the_time_cap_at_its_line(project, lines, expected):
    in_query(project, *lines)
    code, problems, _ = validate(project.root)
    assert (code, problems) == (1, [expected])


def test_nested_loops_in_a_location_stop_at_the_time_cap(project):
    loops = f"{LONG}{{% for a in s %}}{{% for b in s %}}{{% endfor %}}{{% endfor %}}"
    project.mini("mini/{{ env }}/mini_out/", f"mini/{{{{ env }}}}/{loops}mini_out/")
    code, problems, _ = validate(project.root)
    assert code == 1
    assert problems == [
        "layers/mini.yaml:6:5: steps[0].location: location template: rendering took longer "
        "than 2 s; a template must render in milliseconds (look for big loops or repeated "
        "expansion)"
    ]


WIDTH = "use a width and precision under it"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "{{ '%1500000000s' % 1 }}",
            "the format '%1500000000s' pads to over the render cap of 262,144 characters "
            f"(Athena's query size limit); {WIDTH}",
            id="percent-width",
        ),
        pytest.param(
            "{{ '%.1500000000f' | format(1.0) }}",
            "the format '%.1500000000f' pads to over the render cap of 262,144 characters "
            f"(Athena's query size limit); {WIDTH}",
            id="format-filter-precision",
        ),
        pytest.param(
            "{{ '{:>1500000000}'.format(1) }}",
            "the format field '{:>1500000000}' pads to over the render cap of 262,144 "
            f"characters (Athena's query size limit); {WIDTH}",
            id="str-format-width",
        ),
        pytest.param(
            "{{ '{:{w}}'.format_map({'w': 1500000000}) }}",
            "the format field {:{w}} takes its width from an argument; write the width out "
            "in the format string",
            id="str-format-width-from-an-argument",
        ),
        pytest.param(
            "{% set s = 'x' * 60000 %}{{ s.replace('x', s) }}",
            "rendering needs more than 256 MiB of memory; look for a value that grows in a "
            "loop, or a replace or join that multiplies a long text",
            id="replace-multiplies-a-text",
        ),
    ],
)
def test_a_template_that_would_allocate_gigabytes_is_refused_first(project, line, expected):
    """Each of these allocated 1.5 to 3.6 GB before the size check saw the result."""
    in_query(project, "-- padding", line)
    code, problems, peak_mib = validate(project.root)
    assert (code, problems) == (1, [f"{Q}:2:1: steps[2].query: template refused: {expected}"])
    assert peak_mib < 400


def test_ordinary_formatting_and_loops_still_render(project):
    in_query(
        project,
        "-- {{ '%5s|%-3d' % ('a', 1) }} {{ '{:>5}'.format('x') }} {{ '%.2f' | format(1.5) }}",
        "-- {% for c in 'abc' %}{% for d in range(3) %}{{ c }}{{ d }}{% endfor %}{% endfor %}",
        "-- {{ [1, 2, 3] | sum }} {{ 'a-b' .replace('-', '_') }}",
    )
    assert project.problems() == []
    sql = project.plan().layer("mini").steps[-1].sql
    assert "--     a|1   " in sql and "x" in sql
    assert "a0a1a2b0b1b2c0c1c2" in sql
    assert "-- 6 a_b" in sql

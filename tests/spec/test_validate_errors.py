"""Every kind of bad input gets one line naming file, line, column, field and what to do."""

from __future__ import annotations

import time

import pytest

from bakery.errors import SpecError
from bakery.loader import load_yaml_text

M = "layers/mini.yaml"


def test_the_repository_layers_are_valid(project):
    assert project.problems() == []
    assert [layer.name for layer in project.plan().layers] == [
        "addressbase",
        "current_elections",
        "mini",
    ]


# Edits of MINI that validate must refuse, with the one line it prints (also used by
# test_editor_schema: the JSON Schema must refuse every structural one).
BAD_LAYER_INPUTS = [
    pytest.param(
        "    into: mini_out\n",
        "    into: [mini_out\n",
        f"{M}:18:1: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence)",
        id="yaml-syntax",
    ),
    pytest.param(
        "    id: fill\n",
        "    id: fill\n    id: fill2\n",
        f"{M}:16:5: steps[2].id: duplicate key 'id' (first defined on line 15); remove one",
        id="duplicate-key",
    ),
    pytest.param(
        "description: test layer",
        'description: !!python/object/apply:os.system ["true"]',
        f"{M}:2:14: description: tag '!!python/object/apply:os.system' is not allowed; "
        "use plain YAML values only",
        id="python-tag",
    ),
    pytest.param(
        "type: athena_query",
        "type: athena_querry",
        f"{M}:14:5: steps[2]: unknown step type 'athena_querry'; did you mean 'athena_query'?",
        id="unknown-step-type",
    ),
    pytest.param(
        "    into: mini_out\n",
        "    into: mini_out\n    intoo: x\n",
        f"{M}:18:5: steps[2].intoo: unknown field 'intoo'; did you mean 'into'?",
        id="misspelled-field",
    ),
    pytest.param(
        "description: test layer",
        "description: test layer\ntimeout_minutes: soon",
        f"{M}:3:1: timeout_minutes: Input should be a valid integer, "
        "unable to parse string as an integer",
        id="wrong-type",
    ),
    pytest.param(
        "addressbase.addressbase_partitioned",
        "addressbase.addressbase_partitiond",
        f"{M}:16:5: steps[2].sql: layer 'addressbase' declares no table "
        "'addressbase_partitiond'; did you mean 'addressbase_partitioned'?",
        id="unknown-table",
    ),
    pytest.param(
        "addressbase.addressbase_partitioned",
        "adressbase.addressbase_partitioned",
        f"{M}:16:5: steps[2].sql: unknown layer 'adressbase' in "
        "'adressbase.addressbase_partitioned'; did you mean 'addressbase'?",
        id="unknown-layer-in-ref",
    ),
    pytest.param(
        "SELECT uprn, postcode",
        "SELECT uprn, postcod",
        f"{M}:16:5: steps[2].sql: column 'postcod' is not in any table the query reads "
        "(addressbase_partitioned); did you mean 'postcode'?",
        id="unknown-column",
    ),
    pytest.param(
        "{{ ref('addressbase.addressbase_partitioned') }}",
        "dc_data_baker.secret_table",
        f"{M}:16:5: steps[2].sql: query reads table 'dc_data_baker.secret_table', which no "
        "spec declares; use {{ ref('layer.table') }} with one of: "
        "dc_data_baker.addressbase_cleaned_raw, dc_data_baker.addressbase_partitioned, "
        "dc_data_baker.current_ballots, dc_data_baker.current_ballots_joined_to_address_base, "
        "dc_data_baker.mini_out",
        id="undeclared-table",
    ),
    pytest.param(
        "SELECT uprn, postcode",
        "SELECT postcode, uprn",
        f"{M}:16:5: steps[2].sql: query output columns do not match table 'mini.mini_out' "
        "(order differs: the table has uprn, postcode); partition keys come last",
        id="output-column-order",
    ),
    pytest.param(
        "SELECT uprn, postcode",
        "SELECT uprn, postcode, outcode",
        f"{M}:16:5: steps[2].sql: query output columns do not match table 'mini.mini_out' "
        "(not in the table: outcode); partition keys come last",
        id="output-column-extra",
    ),
    pytest.param(
        "SELECT uprn",
        "SELECT {{ nope }} uprn",
        f"{M}:16:5: steps[2].sql: template uses an undefined variable: 'nope' is undefined",
        id="undefined-variable",
    ),
    pytest.param(
        "SELECT uprn, postcode FROM",
        "SELECT uprn, postcode FROM WHERE",
        f"{M}:16:5: steps[2].sql: not valid Athena SQL: Expected table name but got "
        "'WHERE' (line 1, col 32)",
        id="not-athena-sql",
    ),
    pytest.param(
        "SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}",
        "DROP TABLE x",
        f"{M}:16:5: steps[2].sql: a query template must be a SELECT, found DROP",
        id="not-a-select",
    ),
    pytest.param(
        "    sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}",
        "    query: ../../etc/passwd",
        f"{M}:16:5: steps[2].query: template '../../etc/passwd' is outside the project; "
        "keep it in it",
        id="template-escapes-project",
    ),
    pytest.param(
        "    table: mini_out",
        "    prefix: s3://pollingstations.private.data/",
        f"{M}:13:5: steps[1].prefix: 's3://pollingstations.private.data/' is a bucket root "
        "or not s3://; refusing to purge it",
        id="purge-bucket-root",
    ),
    pytest.param(
        "    table: mini_out",
        "    table: addressbase.addressbase_cleaned_raw",
        f"{M}:13:5: steps[1].table: purge target s3://pollingstations.private.data/"
        "addressbase/2026-02-02/addressbase_cleaned/ is not the location of a table this "
        "layer writes; purge only your own outputs, never inputs or another layer's tables",
        id="purge-an-input",
    ),
    pytest.param(
        "    table: mini_out",
        "    table: addressbase.addressbase_partitioned",
        f"{M}:13:5: steps[1].table: purge target s3://pollingstations.private.data/"
        "addressbase/development/addressbase_partitioned/ is not the location of a table "
        "this layer writes; purge only your own outputs, never inputs or another layer's "
        "tables",
        id="purge-another-layers-table",
    ),
    pytest.param(
        "    table: mini_out",
        "    prefix: s3://pollingstations.private.data/mini/{{ env }}/",
        f"{M}:13:5: steps[1].prefix: purge target s3://pollingstations.private.data/mini/"
        "development/ is not the location of a table this layer writes; purge only your own "
        "outputs, never inputs or another layer's tables",
        id="purge-a-parent-prefix",
    ),
    pytest.param(
        "mini/{{ env }}/mini_out/",
        "addressbase/{{ env }}/addressbase_partitioned/",
        f"{M}:6:5: steps[0].location: table addressbase.addressbase_partitioned already "
        "lives at s3://pollingstations.private.data/addressbase/development/"
        "addressbase_partitioned/",
        id="same-location",
    ),
    pytest.param(
        "mini/{{ env }}/mini_out/",
        "addressbase/{{ env }}/addressbase_partitioned/mini/",
        f"{M}:6:5: steps[0].location: s3://pollingstations.private.data/addressbase/"
        "development/addressbase_partitioned/mini/ is inside the location of table "
        "addressbase.addressbase_partitioned (s3://pollingstations.private.data/addressbase/"
        "development/addressbase_partitioned/); Athena would read these files as part of it",
        id="location-inside-another",
    ),
    pytest.param(
        "s3://pollingstations.private.data/mini",
        "s3://some-other-bucket/mini",
        f"{M}:6:5: steps[0].location: bucket 'some-other-bucket' is not one of the "
        "project's buckets (dc-data-baker-results-bucket, ee.data-cache.production, "
        "pollingstations.private.data)",
        id="unknown-bucket",
    ),
    pytest.param(
        "s3://pollingstations.private.data/mini",
        "s3://pollingstations.private.data/bakery-staging/mini",
        f"{M}:6:5: steps[0].location: 's3://pollingstations.private.data/bakery-staging/mini/"
        "development/mini_out/' is under bakery-staging/, which bakery keeps for staging",
        id="reserved-staging-prefix",
    ),
    pytest.param(
        "name: mini_out",
        "name: Mini-Out",
        f"{M}:5:5: steps[0].name: 'Mini-Out' is not a name Athena accepts: use lower-case "
        "letters, digits and '_', starting with a letter or '_' (e.g. 'mini_out')",
        id="bad-table-name",
    ),
    pytest.param(
        "{name: postcode,",
        "{name: Post Code,",
        f"{M}:10:10: steps[0].columns[1].name: 'Post Code' is not a name Athena accepts: "
        "use lower-case letters, digits and '_', starting with a letter or '_' "
        "(e.g. 'post_code')",
        id="bad-column-name",
    ),
    pytest.param(
        "{name: postcode, type: string}",
        "{name: postcode, type: array<strin>}",
        f"{M}:10:26: steps[0].columns[1].type: unknown type 'strin' in 'array<strin>'; use "
        "one of: array<T>, bigint, binary, boolean, date, decimal(p,s), double, float, int, "
        "integer, map<K,V>, smallint, string, struct<..>, timestamp, tinyint",
        id="bad-column-type",
    ),
    pytest.param(
        "description: test layer",
        "description: test layer\ntriggers:\n  schedule: cron(0 25 * * ? *)",
        f"{M}:4:3: triggers.schedule: hours field '25' must be within 0-23",
        id="bad-cron-range",
    ),
    pytest.param(
        "description: test layer",
        "description: test layer\ntriggers:\n  schedule: cron(0 1 * * *)",
        f"{M}:4:3: triggers.schedule: cron expression needs 6 fields (min hour day-of-month "
        "month day-of-week year), got 5: e.g. cron(0 1 * * ? *)",
        id="bad-cron-fields",
    ),
    pytest.param(
        "description: test layer",
        "description: test layer\ndepends_on: [adressbase]",
        f"{M}:3:14: depends_on[0]: unknown layer 'adressbase'; did you mean 'addressbase'?",
        id="unknown-layer",
    ),
    pytest.param(
        "    id: empty_out\n",
        f"    id: {'e' * 61}\n",
        f"{M}:12:5: steps[1].id: '{'e' * 61}' is too long: at most 60 characters (AWS "
        "limits the resource and state names built from it)",
        id="step-id-too-long",
    ),
    pytest.param(
        "    id: empty_out\n",
        "    id: fill\n",
        f"{M}:15:5: steps[2].id: step id 'fill' is used twice in this layer",
        id="duplicate-step-id",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_LAYER_INPUTS)
def test_bad_layer_input(project, old, new, expected):
    project.mini(old, new)
    assert project.problems() == [expected]


def test_template_file_errors_point_into_the_template(project):
    project.write("layers/queries/mini.sql", "SELECT uprn,\n  postcode\nFROM x WHERE\n")
    project.mini(
        "    sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}",
        "    query: queries/mini.sql",
    )
    assert project.problems() == [
        "layers/queries/mini.sql:3:12: steps[2].query: not valid Athena SQL: "
        "incomplete WHERE expression"
    ]


def test_template_file_undefined_variable(project):
    project.write("layers/queries/mini.sql", "SELECT {{ vars.missing }} AS uprn")
    project.mini(
        "    sql: SELECT uprn, postcode FROM {{ ref('addressbase.addressbase_partitioned') }}",
        "    query: queries/mini.sql",
    )
    # at the .sql line and column, naming the variables there are
    assert project.problems() == [
        "layers/queries/mini.sql:1:16: steps[2].query: unknown project variable 'missing' "
        "(vars.missing); known: addressbase_release"
    ]


def test_cycle_between_layers(project):
    # addressbase is read by mini; making addressbase depend on mini closes a loop.
    project.edit(
        "layers/addressbase.yaml", "singleton: true", "singleton: true\ndepends_on: [mini]"
    )
    problems = project.problems()
    assert len(problems) == 1
    assert problems[0].startswith("layers/")
    assert "layers depend on each other in a cycle: " in problems[0]
    cycle = problems[0].split("cycle: ")[1].split(";")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and {"addressbase", "mini"} <= set(cycle)


def test_an_explicit_purge_after_the_write_is_refused(project):
    project.mini("  - type: purge_prefix\n    id: empty_out\n    table: mini_out\n", "")
    text = (project.root / "layers/mini.yaml").read_text()
    project.write(
        "layers/mini.yaml",
        text + "  - type: purge_prefix\n    id: late\n    table: mini_out\n",
    )
    assert project.problems() == [
        f"{M}:14:5: steps[1].into: 'mini.mini_out' is written here but its purge_prefix step "
        "comes later: move that step before this one, or remove it and let the plan add one "
        "(each run must start from an empty table)"
    ]


def test_a_layer_cannot_write_another_layers_table(project):
    project.mini("    into: mini_out", "    into: addressbase.addressbase_partitioned")
    assert (
        f"{M}:17:5: steps[2].into: 'addressbase.addressbase_partitioned' belongs to layer "
        "'addressbase'; a layer writes only the tables it declares"
    ) in project.problems()


def test_all_problems_are_reported_not_only_the_first(project):
    project.mini("SELECT uprn, postcode", "SELECT uprn, postcod")
    project.edit("layers/current_elections.yaml", "cron(0 1 * * ? *)", "cron(0 1 * * * *)")
    project.write("layers/broken.yaml", "name: broken\n")
    problems = project.problems()
    files = sorted({p.split(":")[0] for p in problems})
    assert files == ["layers/broken.yaml", "layers/current_elections.yaml"], problems
    # shape errors stop a file before cross-file checks; the others still report
    project.write("layers/broken.yaml", "")
    problems = project.problems()
    assert "layers/broken.yaml:1:1: file is empty; expected a mapping of fields" in problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "f.yaml:1:1: file is empty; expected a mapping of fields"),
        ("# only a comment\n", "f.yaml:1:1: file is empty; expected a mapping of fields"),
        ("- a\n- b\n", "f.yaml:1:1: expected a mapping of fields at the top level, found list"),
        ("just text\n", "f.yaml:1:1: expected a mapping of fields at the top level, found str"),
        ("a: 1\n---\nb: 2\n", "f.yaml:3:1: more than one YAML document; keep one per file"),
        ("a: 1\n<<: {b: 2}\n", "f.yaml:2:1: merge keys ('<<') are not supported; write keys out"),
    ],
)
def test_file_shape(text, expected):
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "f.yaml")
    assert [str(p) for p in info.value.problems] == [expected]


def test_alias_bomb_fails_fast():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_yaml_text("\n".join(lines) + "\n", "bomb.yaml")
    assert time.perf_counter() - started < 2.0
    (problem,) = info.value.problems
    assert "document expands to more than 50000 nodes (alias bomb?)" in problem.message
    assert problem.file == "bomb.yaml"


def test_small_aliases_are_fine():
    doc = load_yaml_text("cols: &c [a, b]\nmore: *c\n", "f.yaml")
    assert doc.data == {"cols": ["a", "b"], "more": ["a", "b"]}


def test_bad_bucket_name_in_project_file(project):
    project.edit("bakery.yaml", "ee_cache: ee.data-cache.production", "ee_cache: EE_Cache")
    with pytest.raises(SpecError) as info:
        project.plan()
    assert [str(p) for p in info.value.problems] == [
        "bakery.yaml:18:3: buckets.ee_cache: 'EE_Cache' is not a valid S3 bucket name "
        "(3-63 characters: lower-case letters, digits, '.', '-')"
    ]


def test_layer_name_must_match_file(project):
    project.mini("name: mini", "name: mini_layer")
    assert project.problems() == [
        f"{M}:1:1: name: layer name 'mini_layer' must match its file name 'mini'"
    ]


def test_templates_cannot_reach_python(project, tmp_path):
    marker = tmp_path / "pwned"
    attack = f"{{{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}}}"
    project.mini("SELECT uprn, postcode", f"SELECT '{attack}' AS uprn, postcode")
    problems = project.problems()
    assert not marker.exists()
    assert len(problems) == 1
    assert problems[0].startswith("layers/mini.yaml:16:5: steps[2].sql: template error: ")
    assert "unsafe" in problems[0] or "__globals__" in problems[0]


def test_location_templates_are_sandboxed_too(project, tmp_path):
    marker = tmp_path / "pwned"
    attack = f"{{{{ cycler.__init__.__globals__.os.popen('touch {marker}') }}}}"
    project.mini("mini/{{ env }}/mini_out/", f"mini/{attack}/")
    problems = project.problems()
    assert not marker.exists()
    assert any(
        p.startswith("layers/mini.yaml:6:5: steps[0].location: location template: ")
        for p in problems
    ), problems

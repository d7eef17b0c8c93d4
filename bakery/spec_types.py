"""The spec's building blocks: names, references, checked literals, the strict base model
and the column and table parts that step kinds share.

`bakery.spec` (the project and layer files) and every step kind's model under
`bakery.kinds` are made of these; keeping them here lets the kinds define their
models without importing the layer model that collects them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from bakery import hive_types

# Athena folds unquoted names to lower case and accepts only these characters
# in Glue table and column names.
IDENTIFIER_PATTERN = r"^[a-z_][a-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=255)]
# Table names and step ids become Step Functions state names ("refresh_<table> failed"),
# which AWS caps at 80 characters; layer names become stack and state machine names.
StepName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=60)]
LayerName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=40)]
# "layer.table" or "table" (a table of the same layer).
TableRef = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$", max_length=511),
]
BUCKET_PATTERN = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket_name(name: str) -> str:
    if not BUCKET_PATTERN.match(name):
        raise ValueError(
            f"{name!r} is not a valid S3 bucket name "
            "(3-63 characters: lower-case letters, digits, '.', '-')"
        )
    return name


BucketName = Annotated[str, AfterValidator(_bucket_name)]

# Environment names and variable values are pasted into S3 locations and SQL text, so
# they are restricted to characters that can neither leave a path segment nor end a
# SQL string literal. Anything else travels as a runtime parameter (param()).
ENV_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
LITERAL_PATTERN = re.compile(r"^[A-Za-z0-9_.:+,-]{0,200}$")  # ',': lists such as "963,964"


def _env_name(name: str) -> str:
    if not ENV_NAME_PATTERN.match(name):
        raise ValueError(
            f"environment name {name!r} must be 1-32 lower-case letters, digits or '-', "
            "starting with a letter (it becomes part of S3 locations and stack names)"
        )
    return name


def _literal(value: str | int | float | bool) -> str | int | float | bool:
    if isinstance(value, str) and (not LITERAL_PATTERN.match(value) or ".." in value):
        raise ValueError(
            f"variable value {value!r} may hold only letters, digits and '_', '.', ':', '+', "
            "',', '-' (no '..', at most 200 characters): it is pasted into locations and SQL; "
            "pass anything else as a runtime parameter"
        )
    return value


def _inside_folder(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$", value) or ".." in value:
        raise ValueError(
            f"{value!r} must be a folder inside the project: a relative path of letters, "
            "digits, '_', '.', '-' and '/', without '..'"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
VariableName = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=64)]
Literal_ = Annotated[str | int | float | bool, AfterValidator(_literal)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- value lists

# "A..Z", "a..z", "1..12": inclusive; a fan-out runs one Map iteration per value.
VALUE_RANGE = re.compile(r"^\s*([A-Za-z]|\d+)\s*\.\.\s*([A-Za-z]|\d+)\s*$")
MAX_VALUES = 1000


def expand_values(value: object) -> object:
    """A range written as text (`A..Z`) -> its values; a list passes as it is."""
    if not isinstance(value, str):
        return value
    match = VALUE_RANGE.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is neither a list of values nor a range: write a list, or a range "
            "such as A..Z, a..z or 1..12"
        )
    low, high = match.groups()
    if low.isdigit() and high.isdigit():
        out = (
            [str(i) for i in range(int(low), int(high) + 1)]
            if int(high) - int(low) < MAX_VALUES
            else None
        )
    elif low.isalpha() and high.isalpha() and low.isupper() == high.isupper():
        out = [chr(c) for c in range(ord(low), ord(high) + 1)]
    else:
        raise ValueError(
            f"range {value!r} mixes kinds of ends: use two letters of one case (A..Z) "
            "or two numbers (1..12)"
        )
    if out is None:
        raise ValueError(f"range {value!r} has more than {MAX_VALUES} values; narrow it")
    if not out:
        raise ValueError(f"range {value!r} is empty: write the smaller end first ({high}..{low})")
    return out


# A list of values, or a range (`A..Z`) the spec expands to one.
Values = Annotated[
    list[str], BeforeValidator(expand_values, json_schema_input_type=list[str] | str)
]


# ---------------------------------------------------------------- tables


class Column(Strict):
    name: Identifier
    type: str = Field(
        description="Glue/Hive type: string, bigint, double, array<string>, ...",
        json_schema_extra={"pattern": hive_types.type_pattern()},
    )
    description: str | None = None
    values: Values | None = Field(
        None,
        min_length=1,
        description="Partition keys only: the values the key takes, a list or a range "
        "(A..Z); a fan_out over the key runs once per value unless it lists its own.",
    )

    @field_validator("type")
    @classmethod
    def _hive_type(cls, value: str) -> str:
        return hive_types.check(value)


class Csv(Strict):
    header: bool = Field(False, description="Whether the first line holds column names.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)


class Sample(Strict):
    """Where a local bake gets this table's rows when the store has none (`bake --sample`,
    `bakery sample-data`); only local, never deployed."""

    file: str | None = Field(
        None,
        description="A small CSV (with a header row of the declared columns) or Parquet file, "
        "relative to the layer file.",
    )
    generator: str | None = Field(
        None,
        description="A sample generator, by the name an installed package registers it under "
        "(entry point group bakery.sample_generators).",
    )
    rows: int | None = Field(
        None, ge=1, description="How many rows (or items) the generator makes by default."
    )


# ---------------------------------------------------------------- steps


class StepBase(Strict):
    description: str | None = None
    optional_upstream: list[TableRef] = Field(
        default_factory=list,
        description=(
            "Tables of other layers that this step reads and that may never have been "
            "published (they are then read as empty). Any other table of another layer "
            "that reads no rows stops the run before its first reader, naming the layer "
            "to bake first."
        ),
    )

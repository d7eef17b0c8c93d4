"""The registry of sample generators, read while the plan is built.

A table declares where its local sample rows come from in its glue_table step:

    sample: {file: samples/wards.csv}         # CSV with a header row, or .parquet
    sample: {generator: addressbase, rows: 1000}

`bakery validate` checks both here: a generator's name against the registry, a file's
kind and presence. Writing the rows (bakery.sample_data) belongs to the local engine.

A generator is a function `generate(SampleRequest) -> SampleFiles` in any installed
package, declared as an entry point of the group `bakery.sample_generators`
(`name = "module:function"` in its pyproject.toml). The registry holds those
"module:function" strings, so validate checks generator names without importing numpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from bakery.errors import BakeryError

if TYPE_CHECKING:
    from bakery.planning.model import Plan, TablePlan

ENTRY_POINT_GROUP = "bakery.sample_generators"
# name -> "module:function", from every installed package's entry points.
GENERATORS: dict[str, str] = {
    ep.name: ep.value for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
}
SAMPLE_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class SampleRequest:
    """What a generator is asked for: rows for `table` (None: its default size)."""

    plan: Plan
    table: TablePlan
    rows: int | None
    seed: int
    # every size asked for in this seeding, by generator name or table ref, so that a
    # generator can follow another's data (reviews around the sample addresses)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass
class SampleFiles:
    """What a generator returns: file name under the table location -> content, already
    in the table's format."""

    files: dict[str, bytes]
    rows: int
    summary: str  # one line for people: "1,000 addresses (123 outcodes)"
    stats: dict[str, int] = field(default_factory=dict)


class SampleError(BakeryError):
    """A sample cannot be made (one line, naming the layer file and what to do)."""


def generator(name: str) -> Callable[[SampleRequest], SampleFiles]:
    """The registered generator function `name`."""
    if name not in GENERATORS:
        raise SampleError(f"no sample generator {name!r}; registered: {', '.join(GENERATORS)}")
    module, _, func = GENERATORS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def sample_file_problem(target: Path, name: str) -> str | None:
    """Why the sample file `name` (found at `target`) cannot be read, or None. A FIFO
    or a device is not "not found": it is there, and reading it would block or never end."""
    from bakery import regular_files

    try:
        regular_files.check(target)
    except FileNotFoundError:
        return f"sample {name!r} not found (looked at {target})"
    except regular_files.NotRegular as exc:
        return f"sample {name!r} {exc} ({target}); give a CSV or Parquet file"
    except OSError as exc:
        return f"sample {name!r} cannot be read ({exc.strerror or type(exc).__name__}: {target})"
    return None

"""Problems found in specs, reported as one line each: FILE:LINE:COL: path: message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class BakeryError(Exception):
    """The root of the errors bakery raises for a user to read: its message is one line
    (or one per problem) saying what is wrong and what to do, printed without a
    traceback. Errors of the Lambda handlers (bakery/lambdas/) stand apart: a Lambda's
    code bundle holds only that folder."""


class SpecError(BakeryError):
    """Raised when specs have problems; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: tuple[str | int, ...]) -> str:
    """('steps', 2, 'into') -> 'steps[2].into'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

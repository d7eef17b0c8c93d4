"""EventBridge schedule expressions: cron(min hour day-of-month month day-of-week year)."""

from __future__ import annotations

import re

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_FIELDS = [
    # name, low, high, names, extra wildcards
    ("minutes", 0, 59, None, ""),
    ("hours", 0, 23, None, ""),
    ("day-of-month", 1, 31, None, "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, None, ""),
]


def _check_field(value: str, name: str, low: int, high: int, names: str | None, extra: str):
    if value in ("*", "?"):
        if value == "?" and "?" not in extra:
            raise ValueError(f"'?' is only allowed in day-of-month or day-of-week, not {name}")
        return
    if name == "day-of-month" and re.fullmatch(r"L|LW|\d{1,2}W", value):
        return
    if name == "day-of-week" and re.fullmatch(rf"([1-7]|{_DAYS})(#[1-5]|L)", value):
        return
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"bad step {step!r} in {name} field {value!r}")
        bounds = base.split("-") if base != "*" else []
        if len(bounds) > 2:
            raise ValueError(f"bad range {base!r} in {name} field")
        for bound in bounds:
            if names and re.fullmatch(names, bound.upper()):
                continue
            if not bound.isdigit() or not low <= int(bound) <= high:
                raise ValueError(
                    f"{name} field {value!r} must be within {low}-{high}"
                    + (f" or one of {names.replace('|', ',')}" if names else "")
                )


def check_schedule(expr: str) -> None:
    """Raise ValueError naming what is wrong with an EventBridge schedule expression."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expr)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2)
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            raise ValueError(f"invalid rate {expr!r}: use 'rate(1 day)' or 'rate(5 days)'")
        return
    m = re.fullmatch(r"cron\((.*)\)", expr)
    if not m:
        raise ValueError(
            f"invalid schedule {expr!r}: write cron(min hour dom month dow year), "
            "e.g. cron(0 1 * * ? *), or rate(1 day)"
        )
    fields = m.group(1).split()
    if len(fields) != 6:
        raise ValueError(
            f"cron expression needs 6 fields (min hour day-of-month month day-of-week year), "
            f"got {len(fields)}: e.g. cron(0 1 * * ? *)"
        )
    for value, spec in zip(fields, _FIELDS, strict=True):
        _check_field(value, *spec)
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(
            "cron: exactly one of day-of-month and day-of-week must be '?', e.g. cron(0 1 * * ? *)"
        )


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def _field_pattern(name: str, low: int, high: int, names: str | None, extra: str) -> str:
    number = "0*(?:" + "|".join(str(i) for i in range(high, low - 1, -1)) + ")"
    bound = f"(?:{number}|{'|'.join(map(_any_case, names.split('|')))})" if names else number
    item = rf"(?:\*|{bound}(?:-{bound})?)(?:/\d+)?"
    forms = [rf"{item}(?:,{item})*"]
    if name == "day-of-month":
        forms.append(r"L|LW|\d{1,2}W")
    if name == "day-of-week":
        forms.append(rf"(?:[1-7]|{'|'.join(map(_any_case, _DAYS.split('|')))})(?:#[1-5]|L)")
    return "(?:" + "|".join(forms) + ")"


def schedule_pattern() -> str:
    """The rules of `check_schedule` as one regular expression, for the JSON Schema that
    editors use (no range or name outside EventBridge's, exactly one '?' of the days)."""
    minute, hour, dom, month, dow, year = (_field_pattern(*spec) for spec in _FIELDS)
    days = rf"(?:{dom}\s+{month}\s+\?|\?\s+{month}\s+{dow})"
    cron = rf"cron\(\s*{minute}\s+{hour}\s+{days}\s+{year}\s*\)"
    rate = r"rate\((?:0*1 (?:minute|hour|day)|0*(?:[2-9]|[1-9]\d+) (?:minutes|hours|days))\)"
    return f"^(?:{rate}|{cron})$"

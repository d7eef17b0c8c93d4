"""A CSV file read as a Distributed Map's ItemReader reads it (ReaderConfig InputType CSV).

Step Functions' rules differ from RFC 4180 and from Python's csv module
(https://docs.aws.amazon.com/step-functions/latest/dg/example-csv-parse-dist-map.html):

- a field enclosed in double quotes may hold the delimiter and newlines; a doubled
  quote inside it is one quote;
- a backslash escapes the next character, whatever it is: `\\\\` is one backslash and
  `\\"` a quote, `\\<delimiter>` the delimiter, and before any other character the
  backslash is silently removed (`\\n` reads `n`, `\\u00e9` reads `u00e9`);
- a row with fewer fields than the header gets empty strings for the missing ones; the
  fields past the header's are skipped.

So a simulated Map gets the items a deployed one would, backslashes included.
"""

from __future__ import annotations

# ReaderConfig.CSVDelimiter's values, as CDK lists them
# (https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions.CsvDelimiter.html).
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}


def records(text: str, delimiter: str = ",") -> list[list[str]]:
    """The records of `text`, each a list of fields; empty lines are no records."""
    out: list[list[str]] = []
    row: list[str] = []
    field: list[str] = []
    quoted = False  # inside a quoted field
    started = False  # the field has begun (a character, an escape or an opening quote)
    seen = False  # the record has begun
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            field.append(text[i + 1])
            started = seen = True
            i += 2
            continue
        if quoted:
            if c == '"' and text[i + 1 : i + 2] == '"':
                field.append('"')
                i += 2
            elif c == '"':
                quoted = False
                i += 1
            else:
                field.append(c)
                i += 1
            continue
        if c == '"' and not started:
            quoted = started = seen = True
        elif c == delimiter:
            row.append("".join(field))
            field, started, seen = [], False, True
        elif c in "\r\n":
            if c == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
            if seen:
                row.append("".join(field))
                out.append(row)
            row, field, started, seen = [], [], False, False
        else:
            field.append(c)
            started = seen = True
        i += 1
    if seen:
        row.append("".join(field))
        out.append(row)
    return out


def items(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    """One item per record after the header (CSVHeaderLocation FIRST_ROW), by header name."""
    rows = records(text, delimiter)
    if not rows:
        return []
    header = rows[0]
    return [
        dict(zip(header, row[: len(header)] + [""] * (len(header) - len(row)), strict=True))
        for row in rows[1:]
    ]

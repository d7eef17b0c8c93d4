"""Athena, as the state machines call it, answered by DuckDB against the simulated S3.

`start_sync` stands for `athena:startQueryExecution.sync` and `get_results` for
`athena:getQueryResults`. The query text is the one in the definition; it runs through
the local engine's transpiler (bakery.engine.transpile) over views made by the local
engine's table registration (bakery.engine.tables), one per Glue table and per staging
table, over the files the table's location holds at that moment (as Athena lists S3 at
query time). ExecutionParameters are SQL literals, bound as prepared parameters.
A table named through the catalog, `awsdatacatalog.<db>.<table>` (how a publish guard
reads the published table: bakery.plan.LIVE_CATALOG), is the same Glue table, as on
Athena, where the Glue catalog is the data source `AwsDataCatalog` and a query may name
it (https://docs.aws.amazon.com/athena/latest/ug/gdc-register-query-the-data-source.html).

What each statement does, with Athena's rules:
- `UNLOAD (SELECT ...) TO 'loc' WITH (...)`: writes the result there in the given format
  and partitioning; fails when the destination already holds a file (Athena's UNLOAD
  refuses a non-empty destination);
- `INSERT INTO db.table SELECT ...`: adds files to the table's location;
- `MSCK REPAIR TABLE t`: nothing to do, the views list partition folders directly;
- anything else (a SELECT): the rows are kept for GetQueryResults (header row first, NULL
  as an empty Datum, pages of at most 1000 rows with a NextToken) and written to the
  workgroup's result location as `<QueryExecutionId>.csv` in Athena's CSV format (kept
  in memory and read from there: see `result_files`).

A query that fails ends the `.sync` task with `States.TaskFailed` and the query
execution (Status FAILED, its StateChangeReason) as the cause, as the integration does.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from bakery.compile.staging import staged_tables, staging_location, staging_name
from bakery.engine import tables
from bakery.engine.duck import ident, quote
from bakery.engine.published import live_names
from bakery.engine.transpile import to_duckdb
from bakery.plan import LIVE_CATALOG, Plan, TablePlan
from bakery.simulate.errors import TaskError

PAGE = 1000  # GetQueryResults returns at most 1000 rows a page (MaxResults <= 1000)

_UNLOAD = re.compile(
    r"^\s*UNLOAD\s*\((?P<select>.*)\)\s*TO\s*'(?P<to>(?:[^']|'')*)'\s*WITH\s*\((?P<with>.*)\)\s*$",
    re.S | re.I,
)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(?P<table>[\w.\"]+)\s+(?P<select>.*)$", re.S | re.I)
_MSCK = re.compile(r"^\s*MSCK\s+REPAIR\s+TABLE\s+(?P<table>[\w.\"]+)\s*$", re.I)


@dataclass
class Execution:
    id: str
    query: str
    params: list[str]
    database: str
    workgroup: str
    output: str
    state: str = "RUNNING"
    reason: str | None = None
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    submitted: str = ""
    completed: str = ""

    def shape(self) -> dict[str, Any]:
        """GetQueryExecution's QueryExecution, which `.sync` returns."""
        status: dict[str, Any] = {
            "State": self.state,
            "SubmissionDateTime": self.submitted,
            "CompletionDateTime": self.completed,
        }
        if self.reason:
            status["StateChangeReason"] = self.reason
            status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False}
        body: dict[str, Any] = {
            "QueryExecutionId": self.id,
            "Query": self.query,
            "StatementType": _statement_type(self.query),
            "ResultConfiguration": {"OutputLocation": self.output},
            "QueryExecutionContext": {"Database": self.database, "Catalog": "AwsDataCatalog"},
            "Status": status,
            "WorkGroup": self.workgroup,
            "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "v3"},
        }
        if self.params:
            body["ExecutionParameters"] = self.params
        return {"QueryExecution": body}


def _statement_type(query: str) -> str:
    head = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    return "DDL" if head == "MSCK" else "DML"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Athena:
    def __init__(self, plan: Plan, store: Any, con: Any):
        self.plan = plan
        self.store = store
        self.con = con
        self.results = plan.project.athena.results.rstrip("/") + "/"
        self.executions: dict[str, Execution] = {}
        # Result files by s3:// URI. They are served from here to whoever reads them in a
        # simulation (a Distributed Map's ItemReader) rather than uploaded to moto, which
        # would cost a request per query.
        self.result_files: dict[str, bytes] = {}
        # Views are rebuilt before a query only when S3 may have changed since the last
        # build (a write here, any Lambda): a SELECT writes only its result file.
        self.stale = True
        self.staged: list[TablePlan] = [t for ly in plan.layers for t in staged_tables(plan, ly)]
        # Glue name (db.table) -> (table, location) for every table and staging table.
        self.glue: dict[str, tuple[TablePlan, str]] = {}
        for t in plan.tables.values():
            self.glue[f"{t.glue_database}.{t.name}"] = (t, t.location)
        for t in self.staged:
            self.glue[f"{t.glue_database}.{staging_name(t)}"] = (t, staging_location(t))

    # -- views ---------------------------------------------------------------

    def refresh(self) -> None:
        """A view per Glue table over what its location holds now (and `t$partitions`)."""
        for name, (table, location) in self.glue.items():
            db, view = name.split(".", 1)
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(db)}")
            body = tables.source_sql(table, self.store, location)
            self.con.execute(f"CREATE OR REPLACE VIEW {ident(db)}.{ident(view)} AS {body}")
            if table.partition_keys:
                keys = ", ".join(ident(k.name) for k in table.partition_keys)
                self.con.execute(
                    f"CREATE OR REPLACE VIEW {ident(db)}.{ident(view + '$partitions')} AS "
                    f"SELECT DISTINCT {keys} FROM {ident(db)}.{ident(view)}"
                )

    def catalog_views(self, sql: str) -> None:
        """A view `awsdatacatalog.<db>.<table>` for every table `sql` names through the
        catalog, with the body of `<db>.<table>`'s: the catalog's table is the Glue table
        itself (a staged copy is a Glue table of its own). Made before each query that
        names one, as the local engine does (bakery.engine.published), so that other
        queries pay nothing. Unlike the local engine, a damaged file fails the query, as it
        would on Athena."""
        names = live_names(sql)
        if not names:
            return
        catalog = ident(LIVE_CATALOG)
        self.con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {catalog}")
        for db, name in names:
            table, location = self._table(f"{db}.{name}")
            schema = f"{catalog}.{ident(db)}"
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            body = tables.source_sql(table, self.store, location)
            self.con.execute(f"CREATE OR REPLACE VIEW {schema}.{ident(name)} AS {body}")

    # -- the two Task resources ----------------------------------------------

    def start_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        query = request["QueryString"]
        params = list(request.get("ExecutionParameters") or [])
        context = request.get("QueryExecutionContext") or {}
        qid = str(uuid.uuid4())
        execution = Execution(
            id=qid,
            query=query,
            params=params,
            database=context.get("Database", ""),
            workgroup=request.get("WorkGroup", "primary"),
            output=f"{self.results}{qid}.csv",
            submitted=_now(),
        )
        self.executions[qid] = execution
        try:
            if self.stale:
                self.refresh()
                self.stale = False
            values = [self._literal(p) for p in params]
            self._run(execution, values)
            execution.state = "SUCCEEDED"
        except Exception as exc:  # the query failed: the .sync task fails with it
            execution.state = "FAILED"
            execution.reason = _one_line(exc)
        execution.completed = _now()
        if execution.state == "FAILED":
            raise TaskError("States.TaskFailed", json.dumps(execution.shape()))
        return execution.shape()

    def get_results(self, request: dict[str, Any]) -> dict[str, Any]:
        qid = request.get("QueryExecutionId", "")
        execution = self.executions.get(qid)
        if execution is None:
            raise TaskError("Athena.InvalidRequestException", f"QueryExecution {qid} was not found")
        if execution.state != "SUCCEEDED":
            raise TaskError(
                "Athena.InvalidRequestException",
                f"Query has not yet finished. Current state: {execution.state}",
            )
        limit = int(request.get("MaxResults", PAGE))
        if not 1 <= limit <= PAGE:
            raise TaskError(
                "Athena.InvalidRequestException",
                f"MaxResults must be between 1 and {PAGE}, not {limit}",
            )
        # The header is the first row of the first page only, as in Athena.
        start = int(request["NextToken"]) if request.get("NextToken") else 0
        header = {"Data": [{"VarCharValue": c} for c in execution.columns]}
        total = len(execution.rows) + 1
        rows = [
            header if i == 0 else {"Data": [_datum(v) for v in execution.rows[i - 1]]}
            for i in range(start, min(start + limit, total))
        ]
        out: dict[str, Any] = {
            "ResultSet": {
                "Rows": rows,
                "ResultSetMetadata": {
                    "ColumnInfo": [
                        {"CatalogName": "hive", "Name": c, "Label": c, "Type": t}
                        for c, t in zip(execution.columns, execution.types, strict=True)
                    ]
                },
            },
            "UpdateCount": 0,
        }
        if start + limit < total:
            out["NextToken"] = str(start + limit)
        return out

    # -- statements ----------------------------------------------------------

    def _literal(self, text: str) -> Any:
        """An ExecutionParameters entry (an SQL literal) as a value to bind."""
        return self.con.execute("SELECT " + to_duckdb(text)).fetchone()[0]

    def _run(self, execution: Execution, values: list[Any]) -> None:
        query = execution.query
        if m := _MSCK.match(query):
            self._table(m.group("table"))  # an unknown table fails, as in Athena
            return
        if not query.lstrip().upper().startswith(("SELECT", "WITH")):
            self.stale = True  # UNLOAD, INSERT: the tables change
        if m := _UNLOAD.match(query):
            to = m.group("to").replace("''", "'")
            self.catalog_views(m.group("select"))
            self._unload(m.group("select"), to, m.group("with"), values)
            return
        if m := _INSERT.match(query):
            table, location = self._table(m.group("table"))
            self.catalog_views(m.group("select"))
            tables.copy_into(
                self.con, table, self.store, location, to_duckdb(m.group("select")), values
            )
            return
        self.catalog_views(query)
        cursor = self.con.execute(to_duckdb(query), values)
        execution.columns = [d[0] for d in cursor.description]
        execution.types = [_athena_type(str(d[1])) for d in cursor.description]
        execution.rows = cursor.fetchall()
        self._write_csv(execution)

    def _table(self, name: str) -> tuple[TablePlan, str]:
        key = name.replace('"', "")
        catalog, _, rest = key.partition(".")
        if catalog.lower() == LIVE_CATALOG and rest.count(".") == 1:
            key = rest
        if key not in self.glue:
            raise ValueError(f"Table {key} does not exist")
        return self.glue[key]

    def _unload(self, select: str, to: str, options: str, values: list[Any]) -> None:
        location = to if to.endswith("/") else to + "/"
        if self.store.list(location):
            raise ValueError(
                f"HIVE_PATH_ALREADY_EXISTS: UNLOAD destination {location} is not empty"
            )
        opts = _options(options)
        fmt = opts.get("format", "PARQUET").upper()
        if fmt != "PARQUET":
            raise ValueError(f"the simulator writes UNLOAD format PARQUET only, not {fmt}")
        codec = opts.get("compression", "GZIP").lower()  # Athena's default for Parquet
        copy = f"FORMAT parquet, COMPRESSION {'uncompressed' if codec == 'none' else codec}"
        name = f"part-{uuid.uuid4().hex}"
        target = self.store.duck_path(location).rstrip("/")
        keys = opts.get("partitioned_by") or []
        sql = to_duckdb(select)
        if keys:
            cols = ", ".join(ident(k) for k in keys)
            statement = (
                f"COPY ({sql}) TO {quote(target)} ({copy}, PARTITION_BY ({cols}), "
                f"FILENAME_PATTERN {quote(name + '-{i}')}, FILE_EXTENSION 'parquet', "
                "OVERWRITE_OR_IGNORE true)"
            )
        else:
            statement = f"COPY ({sql}) TO {quote(target + '/' + name + '.parquet')} ({copy})"
        written = self.con.execute(statement, values).fetchone()
        if not keys and written and written[0] == 0:
            # Athena's writers open a file for the first row: an empty result leaves none.
            self.store.delete(f"{location}{name}.parquet")

    def _write_csv(self, execution: Execution) -> None:
        """Athena's result file: every value quoted, quotes doubled, NULL an empty field."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(execution.columns)
        for row in execution.rows:
            out.write(",".join("" if v is None else _csv_field(_text(v)) for v in row) + "\n")
        self.result_files[execution.output] = out.getvalue().encode()


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _options(text: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for m in re.finditer(r"(\w+)\s*=\s*(ARRAY\s*\[[^\]]*\]|'(?:[^']|'')*')", text, re.I):
        key, raw = m.group(1).lower(), m.group(2)
        if raw.upper().startswith("ARRAY"):
            opts[key] = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", raw)]
        else:
            opts[key] = raw[1:-1].replace("''", "'")
    return opts


def _text(value: Any) -> str:
    """A value as Athena prints it in results (VarCharValue)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join("null" if v is None else _text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _datum(value: Any) -> dict[str, str]:
    return {} if value is None else {"VarCharValue": _text(value)}


def _athena_type(duck: str) -> str:
    t = duck.upper()
    simple = {
        "VARCHAR": "varchar",
        "BIGINT": "bigint",
        "INTEGER": "integer",
        "DOUBLE": "double",
        "BOOLEAN": "boolean",
        "HUGEINT": "decimal",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
    }
    if t in simple:
        return simple[t]
    if t.endswith("[]"):
        return "array"
    return t.lower()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:1000]

"""Map states: over items fixed at synth (a Pass then an inline Map) or over the rows
of a query (a Distributed Map reading Athena's result file)."""

from __future__ import annotations

from typing import Any

from bakery.compile.athena_sql import rows_query
from bakery.compile.states import (
    MAP_RUNS,
    S3_GET_OBJECT,
    S3_PUT_OBJECT,
    SQL_TEXT,
    StateBuilder,
    intrinsic_text,
)
from bakery.planning.model import StepPlan


class MapStates(StateBuilder):
    def fixed_map(
        self,
        step: StepPlan,
        next_: str,
        items: list[dict],
        body_start: str,
        body: dict[str, dict],
        result_path: str | None = None,
        concurrency: int | None = None,
    ) -> str:
        """Pass (the items, fixed at synth) -> Map with a concurrency limit -> next_."""
        map_name = step.id
        items_name = self.add(
            f"{step.id} items",
            {
                "Type": "Pass",
                "Comment": f"The {len(items)} items {step.id} maps over.",
                "Result": items,
                "ResultPath": "$.items",
                "Next": map_name,
            },
        )
        # No ItemSelector: each iteration's input is its item.
        self.add(
            map_name,
            self.map_state(
                step,
                f"{step.id}, one iteration per item.",
                "$.items",
                concurrency or step.max_concurrency or 1,
                body_start,
                body,
                result_path,
                next_,
            ),
        )
        return items_name

    def map_state(
        self,
        step: StepPlan,
        comment: str,
        items_path: str | None,
        concurrency: int,
        body_start: str,
        body: dict[str, dict],
        result_path: str | None,
        next_: str,
        selector: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Map",
            "Comment": self.describe(step, comment),
        }
        if items_path is not None:
            state["ItemsPath"] = items_path
        if selector is not None:
            state["ItemSelector"] = selector
        state.update(
            {
                "MaxConcurrency": concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": body_start,
                    "States": body,
                },
                "ResultPath": result_path,
                "Catch": self.catch(step),
                "Next": next_,
            }
        )
        return state

    def rows_map(
        self,
        step: StepPlan,
        next_: str,
        sql: str,
        names: list[str],
        selector: dict[str, Any],
        body_start: str,
        body: dict[str, dict],
        result_path: str | None,
        concurrency: int,
    ) -> str:
        """The row query -> a Distributed Map reading its result file, one child per row.

        The items never pass through the state: Step Functions reads them from the CSV
        Athena writes for the query (`<workgroup results>/<QueryExecutionId>.csv`, header
        first), so neither GetQueryResults' 1000-row pages nor the 256 KiB state limit
        bound the count. The query is wrapped so that every column the Map uses is base64
        text that is never NULL: `<p>_sql`, the value as an Athena SQL literal (quoted,
        quotes doubled, NULL as NULL), and `<p>_json`, a one-element JSON array holding the
        value (null for NULL), which ItemSelector decodes and unwraps into the raw value
        (athena_sql.rows_query says why base64).
        """
        q, m = f"{step.id} rows query", step.id
        query = self.athena_task(
            rows_query(sql, names),
            "The rows to map over (each value as SQL literal text and as JSON, in base64).",
            m,
            result_path="$.rows",
        )
        query["Catch"] = self.catch(step)
        self.add(q, query)
        bucket, prefix = _split_s3(self.plan.project.athena.results)
        state = self.map_state(
            step,
            f"{step.id}, one child execution per row.",
            None,
            concurrency,
            body_start,
            body,
            result_path,
            next_,
            selector=selector,
        )
        state["ItemReader"] = {
            "Resource": S3_GET_OBJECT,
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {
                "Bucket": bucket,
                "Key.$": f"States.Format('{intrinsic_text(prefix)}{{}}.csv', $.rows.id)",
            },
        }
        state["ItemProcessor"]["ProcessorConfig"] = {
            "Mode": "DISTRIBUTED",
            "ExecutionType": "STANDARD",
        }
        if result_path is None:
            # Results go to S3, not into the state: many children's outputs would pass
            # the state's 256 KiB even when each is small.
            state["ResultWriter"] = {
                "Resource": S3_PUT_OBJECT,
                "Parameters": {
                    "Bucket": bucket,
                    "Prefix": f"{prefix}{MAP_RUNS}/{self.layer.name}/{step.id}",
                },
            }
        self.add(m, state)
        return q


def row_selector(names: list[str], *, sql_text: bool = True) -> dict[str, Any]:
    """A Distributed Map's ItemSelector over rows_query's base64 columns: each raw value
    (decoded, unwrapped from its JSON array) under its name, and its SQL literal (decoded)
    under `sql_text`.

    States.Base64Decode takes at most 10,000 characters
    (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html#asl-intrsc-func-data-encode-decode):
    a row value whose JSON text is over 7,500 bytes (MAX_ROW_VALUE_BYTES) fails the
    execution with States.Runtime at that row, never reaches a child changed. Step
    Functions encodes and decodes base64 as UTF-8 (measured on AWS: ministackorg/ministack
    PR #1360), as Athena's to_utf8 writes it.
    """
    item: dict[str, Any] = {
        f"{n}.$": (
            "States.ArrayGetItem(States.StringToJson("
            f"States.Base64Decode($$.Map.Item.Value.{n}_json)), 0)"
        )
        for n in names
    }
    if sql_text:
        item[SQL_TEXT] = {
            f"{n}.$": f"States.Base64Decode($$.Map.Item.Value.{n}_sql)" for n in names
        }
    return item


# The longest value (its JSON text, in UTF-8 bytes) a row of a for_each over a query may
# hold: base64 makes 4 characters of every 3 bytes, and States.Base64Decode takes 10,000.
MAX_ROW_VALUE_BYTES = 10_000 // 4 * 3


def _split_s3(uri: str) -> tuple[str, str]:
    """(bucket, prefix ending with '/' or empty) of an s3:// location."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/")
    return bucket, prefix + "/" if prefix else ""

"""`glue_table` specs as Glue tables (L1 CfnTable: the Glue L2 is still alpha)."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_glue as glue
from constructs import Construct

from bakery.compile.staging import staging_location, staging_name
from bakery.plan import TablePlan

PARQUET = {
    "input": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
TEXT = {
    "input": "org.apache.hadoop.mapred.TextInputFormat",
    "output": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    # OpenCSVSerde understands quoted fields: WKT polygons hold commas.
    "serde": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
}


def _columns(columns) -> list[glue.CfnTable.ColumnProperty]:
    return [
        glue.CfnTable.ColumnProperty(name=c.name, type=c.type, comment=c.description)
        for c in columns
    ]


class GlueTable(Construct):
    """One external table: columns, partition keys, location, CSV or Parquet storage.

    With staging=True, the table's staging twin (bakery.compile.staging): same columns,
    format and partition keys, named `<name>__staging`, at the staging location.
    """

    def __init__(
        self, scope: Construct, id: str, *, table: TablePlan, database: str, staging: bool = False
    ) -> None:
        super().__init__(scope, id)
        name, location = table.name, table.location
        if staging:
            name, location = staging_name(table), staging_location(table)
        parameters = {"EXTERNAL": "TRUE", "classification": table.format}
        if table.format == "parquet":
            formats = PARQUET
            serde_parameters = {"serialization.format": "1"}
            if table.compression != "none":
                parameters["parquet.compression"] = table.compression.upper()
        else:
            formats = TEXT
            csv = table.csv
            serde_parameters = {
                "separatorChar": csv.delimiter if csv else ",",
                "quoteChar": csv.quote if csv else '"',
                "escapeChar": "\\",
            }
            if csv and csv.header:
                parameters["skip.header.line.count"] = "1"
        owner = "external: produced outside bakery" if table.external else f"layer {table.layer}"
        description = table.description or f"{table.ref}"
        if staging:
            owner += " (staging: built here, then published to " + table.name + ")"
            description = f"Staging of {table.ref}, published when the layer's checks pass."
        self.resource = glue.CfnTable(
            self,
            "Table",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=database,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description[:2048],
                table_type="EXTERNAL_TABLE",
                parameters={**parameters, "bakery.owner": owner},
                partition_keys=_columns(table.partition_keys) or None,
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=_columns(table.columns),
                    location=location,
                    input_format=formats["input"],
                    output_format=formats["output"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=formats["serde"], parameters=serde_parameters
                    ),
                ),
            ),
        )

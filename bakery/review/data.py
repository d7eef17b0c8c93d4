"""What the review page shows, as one JSON-able dict: compare's summary, every changed
address (capped), where it is, and the polygons of the ballots gained or lost.

The summary is bakery.compare's; the rows behind it are read here from the files whose
fingerprints differ (and those only on one side), through the same Tree readers, so a
byte-identical file is never read. Coordinates and polygons come from the store of the
bake that made B (`--store`, or the store B's folder sits in): the addressbase table
gives each address's point, the ballots table each ballot's pieces of boundary.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

MAX_ROWS = 20_000  # changed addresses listed on the page (the rest counted per outcode)
MAX_POINTS = 5_000  # of those, drawn on the map (clustered)
MAX_POLYGONS = 200  # ballots drawn
MAX_VERTICES = 2_000  # per ballot drawn, after simplification
BALLOTS = "current_elections.current_ballots"
ADDRESSES = "addressbase.addressbase_partitioned"
REVIEWS = "boundary_reviews"


def values_column(tree: Any) -> str:
    """`boundary_reviews` for current_boundary_changes-shaped products, else ballot_ids."""
    import pyarrow.parquet as pq

    for ref in tree.files.values():
        schema = pq.read_schema(io.BytesIO(tree.read(ref.uri)))
        if len(schema):
            return REVIEWS if schema.get_field_index(REVIEWS) >= 0 else "ballot_ids"
    return "ballot_ids"


def _rows(tree: Any, name: str, values: str) -> tuple[dict[str, Any], bool]:
    """uprn -> (address, postcode, values) of one file, and whether the file is the
    export's "no row has a value" file (no columns: its addresses are all there, with
    no value, as compare counts them)."""
    import pyarrow.parquet as pq

    ref = tree.files.get(name)
    if ref is None:
        return {}, False
    table = pq.read_table(io.BytesIO(tree.read(ref.uri)))
    if not table.num_columns or table.schema.get_field_index(values) < 0:
        return {}, not table.num_columns
    cols = [c for c in ("uprn", "address", "postcode", values) if c in table.column_names]
    out = {}
    for row in table.select(cols).to_pylist():
        value = row.get(values)
        if isinstance(value, list):
            items = [str(v) for v in value]
        else:
            items = [] if value is None else [str(value)]
        out[str(row["uprn"])] = (row.get("address") or "", row.get("postcode") or "", items)
    return out, False


def _review_text(item: str) -> str:
    """A boundary_reviews element as one short line (review id: old -> new)."""
    from bakery.democracy_club.lookup_boundary_changes import lines

    try:
        review = json.loads(item)
    except ValueError:
        return item
    if not isinstance(review, dict):
        return item
    return "; ".join(lines({REVIEWS: [review]})) or f"review {review.get('boundary_review_id')}"


def changes(a: Any, b: Any, values: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Changed addresses (at most MAX_ROWS, by outcode and uprn) and the count per outcode
    of all of them."""
    names = sorted(
        n
        for n in set(a.files) | set(b.files)
        if n not in a.files or n not in b.files or a.files[n].fingerprint != b.files[n].fingerprint
    )
    listed: list[dict[str, Any]] = []
    per_outcode: dict[str, int] = {}
    for name in names:
        (old, old_empty), (new, new_empty) = _rows(a, name, values), _rows(b, name, values)
        for uprn in sorted(set(old) | set(new)):
            before, after = old.get(uprn), new.get(uprn)
            was, now = (before[2] if before else []), (after[2] if after else [])
            if before and after and sorted(was) == sorted(now):
                continue
            if not was and not now:
                continue  # an address without a value on both sides did not change
            per_outcode[name] = per_outcode.get(name, 0) + 1
            if len(listed) >= MAX_ROWS:
                continue
            where = after or before
            assert where is not None
            kind = "changed"
            if before is None and not old_empty:
                kind = "added"
            elif after is None and not new_empty:
                kind = "removed"
            if values == REVIEWS:
                was, now = [_review_text(x) for x in was], [_review_text(x) for x in now]
            listed.append({"uprn": uprn, "outcode": name, "address": where[0],
                           "postcode": where[1], "kind": kind, "old": was, "new": now})  # fmt: skip
    return listed, per_outcode


def store_of(folder: str, plan: Any) -> Path | None:
    """The store a product folder sits in: the folder minus the export's bucket/key."""
    if folder.startswith("s3://"):
        return None
    from bakery.lambdas.s3uri import split

    path = Path(folder).resolve()
    for layer in plan.layers:
        for step in layer.walk():
            if step.kind == "export_by_key" and step.location:
                bucket, key = split(step.location)
                tail = Path(bucket, key.rstrip("/"))
                if path.parts[-len(tail.parts) :] == tail.parts:
                    return Path(*path.parts[: -len(tail.parts)])
    return None


def _glob(store: Path, location: str, pattern: str) -> str | None:
    from bakery.lambdas.s3uri import split

    bucket, key = split(location)
    folder = store / bucket / key
    return str(folder / pattern) if folder.is_dir() and any(folder.rglob(pattern)) else None


def locate(listed: list[dict[str, Any]], store: Path, plan: Any) -> int:
    """Add lon/lat to the changed addresses found in the store's addressbase table;
    the number located."""
    from bakery.engine.duck import connect, quote

    files = _glob(store, plan.table(ADDRESSES).location, "*.parquet")
    if files is None or not listed:
        return 0
    import pyarrow as pa

    con = connect(threads=2)
    try:
        con.register("wanted", pa.table({"uprn": [r["uprn"] for r in listed]}))
        every = quote(str(Path(files).parent / "**" / "*.parquet"))
        sql = (
            "SELECT CAST(p.uprn AS VARCHAR), p.longitude, p.latitude FROM "
            f"read_parquet({every}, hive_partitioning = true) p "
            "JOIN wanted w ON CAST(p.uprn AS VARCHAR) = w.uprn"
        )
        found = {u: (lon, lat) for u, lon, lat in con.execute(sql).fetchall()}
    finally:
        con.close()
    for row in listed:
        if row["uprn"] in found and None not in found[row["uprn"]]:
            row["lon"], row["lat"] = (round(float(v), 6) for v in found[row["uprn"]])
    return sum(1 for r in listed if "lon" in r)


def polygons(ballots: list[str], store: Path, plan: Any) -> list[dict[str, Any]]:
    """One GeoJSON feature per ballot (its pieces as a MultiPolygon), at most
    MAX_POLYGONS, simplified to about MAX_VERTICES points each."""
    from bakery.engine.duck import connect, quote

    files = _glob(store, plan.table(BALLOTS).location, "*.csv")
    if files is None or not ballots:
        return []
    import pyarrow as pa

    con = connect(threads=2)
    try:
        con.register("wanted", pa.table({"id": ballots[:MAX_POLYGONS]}))
        # columns by position, as the layer reads them (EE's header names differ)
        sql = f"""
        SELECT c.column0, ST_AsGeoJSON(ST_SimplifyPreserveTopology(
                   ST_GeomFromText(c.column2), 0.0005)) AS g
        FROM read_csv({quote(files)}, header = true, all_varchar = true,
                      columns = {{'column0': 'VARCHAR', 'column1': 'VARCHAR',
                                  'column2': 'VARCHAR', 'column3': 'VARCHAR'}}) c
        JOIN wanted w ON c.column0 = w.id
        WHERE coalesce(c.column2, '') <> ''
        ORDER BY c.column0
        """
        pieces = con.execute(sql).fetchall()
    finally:
        con.close()
    merged: dict[str, list[Any]] = {}
    for ballot, text in pieces:
        geometry = json.loads(text)
        parts = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else [])  # fmt: skip
        merged.setdefault(ballot, []).extend(parts)
    out = []
    for ballot, parts in merged.items():
        step = max(1, sum(len(ring) for part in parts for ring in part) // MAX_VERTICES)
        rings = [[ring[::step] + [ring[0]] if step > 1 else ring for ring in part]
                 for part in parts]  # fmt: skip
        out.append({"type": "Feature", "properties": {"ballot": ballot},
                    "geometry": {"type": "MultiPolygon", "coordinates": rings}})  # fmt: skip
    return out


def collect(a: str, b: str, *, plan: Any, store: Path | None, s3_endpoint: str | None) -> dict:
    """Everything the page shows (and `--json` prints)."""
    from bakery.compare import compare_trees, open_tree

    tree_a, tree_b = open_tree(a, s3_endpoint=s3_endpoint), open_tree(b, s3_endpoint=s3_endpoint)
    values = values_column(tree_b)
    summary = compare_trees(tree_a, tree_b, values=values).to_dict()
    listed, per_outcode = changes(tree_a, tree_b, values)
    store = store or store_of(b, plan) or store_of(a, plan)
    located = locate(listed, store, plan) if store is not None else 0
    gained: dict[str, int] = {}
    lost: dict[str, int] = {}
    if values == "ballot_ids":
        for row in listed:
            for x in set(row["new"]) - set(row["old"]):
                gained[x] = gained.get(x, 0) + 1
            for x in set(row["old"]) - set(row["new"]):
                lost[x] = lost.get(x, 0) + 1
    features = polygons(sorted(set(gained) | set(lost)), store, plan) if store else []
    for feature in features:
        ballot = feature["properties"]["ballot"]
        feature["properties"].update(gained=gained.get(ballot, 0), lost=lost.get(ballot, 0))
    total = sum(per_outcode.values())
    return {
        "a": a,
        "b": b,
        "values": values,
        "store": str(store) if store else None,
        "summary": summary,
        "changed": total,
        "listed": len(listed),
        "located": located,
        "drawn": min(located, MAX_POINTS),
        "caps": {"rows": MAX_ROWS, "points": MAX_POINTS, "polygons": MAX_POLYGONS},
        "per_outcode": dict(sorted(per_outcode.items())),
        "ballots": {"gained": dict(sorted(gained.items())), "lost": dict(sorted(lost.items()))},
        "changes": listed,
        "polygons": features,
    }

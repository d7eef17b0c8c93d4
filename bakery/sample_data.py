"""Deterministic synthetic inputs for a local bake: AddressBase-cleaned and the ballots CSV.

Addresses (numpy, vectorised: a million in a few seconds):
- UK-shaped postcodes whose outcodes cluster geographically: the postcode area comes
  from a coarse grid over a UK-sized box, the district from a finer grid inside it,
  the sector and unit from finer still, so neighbours share postcodes;
- `SRID=4326;POINT(lon lat)` locations, most around "towns", some anywhere;
- about 1% empty locations; about 2% lower-case postcodes and 2% without the space.

Ballots (one row per polygon, header election_id,division_id,geometry,source_table):
- Organisation ballots (a council-wide rectangle, subdivided into strips, some with
  a hole) and Division ballots (wards tiling the council, each subdivided into
  pieces, some pieces merged into one MULTIPOLYGON row): every address in a ward is
  also inside its council, so ballots overlap; councils overlap each other too;
- a few `None` rows with an empty geometry; much of the box is in no council, so
  plenty of addresses match no ballot.
Coordinates are rounded (polygons to 4 decimals, points to 6) so a few addresses
may fall exactly on a shared boundary.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from bakery.plan import Plan
from bakery.samples import boundary_reviews
from bakery.samples.boundary_reviews import BOUNDARY_REVIEWS
from bakery.store import Store

ADDRESSBASE = "addressbase.addressbase_cleaned_raw"
BALLOTS = "current_elections.current_ballots"
BOX = (-5.5, 50.2, 1.5, 57.8)  # lon_min, lat_min, lon_max, lat_max
AREAS = [
    "AB",
    "B",
    "BA",
    "BB",
    "BD",
    "BH",
    "BL",
    "BN",
    "BR",
    "BS",
    "CA",
    "CB",
    "CF",
    "CH",
    "CM",
    "CO",
    "CR",
    "CT",
    "CV",
    "CW",
    "DA",
    "DD",
    "DE",
    "DG",
    "DH",
    "DL",
    "DN",
    "DT",
    "DY",
    "E",
    "EC",
    "EH",
    "EN",
    "EX",
    "FK",
    "FY",
    "G",
    "GL",
    "GU",
    "HA",
    "HD",
    "HG",
    "HP",
    "HR",
    "HU",
    "HX",
    "IG",
    "IP",
    "IV",
    "KA",
    "KT",
    "KW",
    "KY",
    "L",
    "LA",
    "LD",
    "LE",
    "LL",
    "LN",
    "LS",
    "LU",
    "M",
    "ME",
    "MK",
    "ML",
    "N",
    "NE",
    "NG",
    "NN",
    "NP",
    "NR",
    "NW",
    "OL",
    "OX",
    "PA",
    "PE",
    "PH",
    "PL",
    "PO",
    "PR",
    "RG",
    "RH",
    "RM",
    "S",
    "SA",
    "SE",
    "SG",
    "SK",
    "SL",
    "SM",
    "SN",
    "SO",
    "SP",
    "SR",
    "SS",
    "ST",
    "SW",
    "SY",
    "TA",
    "TD",
    "TF",
    "TN",
    "TQ",
    "TR",
    "TS",
    "TW",
    "UB",
    "W",
    "WA",
    "WC",
    "WD",
    "WF",
    "WN",
    "WR",
    "WS",
    "WV",
    "YO",
    "ZE",
    "BT",
    "GY",
    "JE",
]
GRID = 11  # 11 x 11 cells for the 121 areas
UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))
STREETS = np.array(
    [
        "High Street",
        "Station Road",
        "Church Lane",
        "Mill Road",
        "Park Avenue",
        "Victoria Road",
        "Green Lane",
        "Manor Way",
        "School Lane",
        "Kings Road",
        "The Crescent",
        "Queens Drive",
        "Chapel Street",
        "New Road",
        "Orchard Close",
        "Bridge Street",
        "Main Street",
        "Windsor Road",
        "York Road",
        "Elm Grove",
    ]
)
DAY = "2026-05-07"


@dataclass
class SampleSummary:
    addresses: int
    ballots: int
    polygon_rows: int
    outcodes: int
    files: list[str]


def _districts_per_side(n: int) -> int:
    return int(np.clip(round(np.sqrt(n / (len(AREAS) * 300))), 1, 8))


def addresses_table(n: int, seed: int = 1) -> Any:
    """N synthetic AddressBase-cleaned rows as a pyarrow Table (uprn, address, postcode,
    location, address_type), all strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    lon0, lat0, lon1, lat1 = BOX
    towns = max(20, min(400, n // 2000))
    centres = np.column_stack([rng.uniform(lon0, lon1, towns), rng.uniform(lat0, lat1, towns)])
    in_town = rng.random(n) < 0.75
    which = rng.integers(0, towns, n)
    spread = rng.uniform(0.02, 0.12, towns)[which]
    lon = np.where(
        in_town, centres[which, 0] + rng.normal(0, 1, n) * spread, rng.uniform(lon0, lon1, n)
    )
    lat = np.where(
        in_town, centres[which, 1] + rng.normal(0, 1, n) * spread * 0.6, rng.uniform(lat0, lat1, n)
    )
    lon = np.clip(lon, lon0, lon1 - 1e-6).round(6)
    lat = np.clip(lat, lat0, lat1 - 1e-6).round(6)
    # postcode from position: area (coarse grid) -> district -> sector -> unit
    fx = (lon - lon0) / (lon1 - lon0) * GRID
    fy = (lat - lat0) / (lat1 - lat0) * GRID
    ax, ay = fx.astype(int), fy.astype(int)
    area = np.array(AREAS)[ay * GRID + ax]
    d = _districts_per_side(n)
    rx, ry = (fx - ax) * d, (fy - ay) * d
    dx, dy = rx.astype(int), ry.astype(int)
    district = (dy * d + dx + 1).astype(str)
    sx, sy = (rx - dx), (ry - dy)
    sector = (sx * 9).astype(int) + 1
    unit_i = (sy * 40).astype(int) * 3 + (sx * 27).astype(int) % 3
    unit = np.char.add(UNIT_LETTERS[(unit_i // 20) % 20], UNIT_LETTERS[unit_i % 20])
    outcode = pa.array(np.char.add(area, district))
    inward = pa.array(np.char.add(sector.astype(str), unit))
    style = rng.random(n)
    sep = np.where((style >= 0.02) & (style < 0.04), "", " ")
    postcode = pc.binary_join_element_wise(outcode, pa.array(sep), inward, "")
    lower = pa.array((style < 0.02) | ((style >= 0.04) & (style < 0.05)))
    postcode = pc.if_else(lower, pc.utf8_lower(postcode), postcode)
    location = pc.binary_join_element_wise(
        "SRID=4326;POINT(",
        pc.cast(pa.array(lon), pa.string()),
        " ",
        pc.cast(pa.array(lat), pa.string()),
        ")",
        "",
    )
    empty = pa.array(rng.random(n) < 0.01)
    location = pc.if_else(empty, pa.scalar(None, pa.string()), location)
    number = pa.array(rng.integers(1, 300, n).astype(str))
    street = pa.array(STREETS[rng.integers(0, len(STREETS), n)])
    address = pc.binary_join_element_wise(
        number, " ", street, ", ", pa.array(np.char.add("Town ", outcode.to_numpy(False))), ""
    )
    uprn = pa.array((100_000_000 + np.arange(n, dtype=np.int64) * 7).astype(str))
    kind = pa.array(np.where(rng.random(n) < 0.9, "R", "C"))
    return pa.table(
        {"uprn": uprn, "address": address, "postcode": postcode, "location": location,
         "address_type": kind}
    )  # fmt: skip


def _ring(x0: float, y0: float, x1: float, y1: float, per_edge: int = 8) -> str:
    """A rectangle ring, counter-clockwise, each edge with extra collinear vertices
    (real boundaries have many vertices; containment is unchanged)."""
    t = np.linspace(0, 1, per_edge, endpoint=False)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(per_edge, x1), x1 - (x1 - x0) * t,
                         np.full(per_edge, x0)])  # fmt: skip
    ys = np.concatenate([np.full(per_edge, y0), y0 + (y1 - y0) * t, np.full(per_edge, y1),
                         y1 - (y1 - y0) * t])  # fmt: skip
    pts = [f"{x:.4f} {y:.4f}" for x, y in zip(xs, ys, strict=True)]
    pts.append(pts[0])
    return "(" + ", ".join(pts) + ")"


def _hole(x0: float, y0: float, x1: float, y1: float) -> str:
    """The middle of a rectangle, clockwise (an interior ring)."""
    w, h = x1 - x0, y1 - y0
    a, b, c, e = x0 + w * 0.35, y0 + h * 0.35, x0 + w * 0.65, y0 + h * 0.65
    return f"({a:.4f} {b:.4f}, {a:.4f} {e:.4f}, {c:.4f} {e:.4f}, {c:.4f} {b:.4f}, {a:.4f} {b:.4f})"


def ballots_rows(m: int, seed: int = 1) -> list[tuple[str, str, str, str]]:
    """About M ballots as rows (election_id, division_id, geometry WKT, source_table)."""
    rng = np.random.default_rng(seed + 1000)
    lon0, lat0, lon1, lat1 = BOX
    n_none = max(1, m // 100)
    n_org = max(1, (m - n_none) // 9)
    wards_total = max(0, m - n_none - n_org)
    per_org = max(1, wards_total // n_org) if wards_total else 0
    rows: list[tuple[str, str, str, str]] = []
    for o in range(n_org):
        slug = f"council-{o + 1:04d}"
        # councils together cover about half the box, whatever their number
        side = np.sqrt(0.5 * (lon1 - lon0) * (lat1 - lat0) / n_org)
        w, h = side * rng.uniform(0.6, 1.5), side * rng.uniform(0.5, 1.2)
        x0 = round(float(rng.uniform(lon0, lon1 - w)), 4)
        y0 = round(float(rng.uniform(lat0, lat1 - h)), 4)
        x1, y1 = round(x0 + w, 4), round(y0 + h, 4)
        org_id = f"mayor.{slug}.{DAY}"
        strips = int(rng.integers(2, 4))
        holed = o % 5 == 2
        xs = np.round(np.linspace(x0, x1, strips + 1), 4)
        for i in range(strips):
            rings = _ring(xs[i], y0, xs[i + 1], y1)
            if holed and i == strips // 2:
                rings = rings + ", " + _hole(xs[i], y0, xs[i + 1], y1)
            rows.append((org_id, f"org:{slug}", f"POLYGON({rings})", "Organisation"))
        wards = per_org if o < n_org - 1 else max(0, wards_total - per_org * (n_org - 1))
        if wards <= 0:
            continue
        gx = int(np.ceil(np.sqrt(wards)))
        gy = int(np.ceil(wards / gx))
        wx = np.round(np.linspace(x0, x1, gx + 1), 4)
        wy = np.round(np.linspace(y0, y1, gy + 1), 4)
        for k in range(wards):
            i, j = k % gx, k // gx
            ward = f"ward-{k + 1:02d}"
            eid = f"local.{slug}.{ward}.{DAY}"
            div = f"div:{slug}:{ward}"
            # subdivide the ward into a 2 x 3 grid of pieces
            px = np.round(np.linspace(wx[i], wx[i + 1], 3), 4)
            py = np.round(np.linspace(wy[j], wy[j + 1], 4), 4)
            pieces = [_ring(px[a], py[b], px[a + 1], py[b + 1], 3)
                      for b in range(3) for a in range(2)]  # fmt: skip
            if k % 4 == 1:  # two pieces as one MULTIPOLYGON row
                rows.append((eid, div, f"MULTIPOLYGON(({pieces[0]}), ({pieces[1]}))", "Division"))
                pieces = pieces[2:]
            for piece in pieces:
                rows.append((eid, div, f"POLYGON({piece})", "Division"))
    for k in range(n_none):
        rows.append((f"ref.none-{k + 1:03d}.{DAY}", "", "", "None"))
    return rows


def _csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["election_id", "division_id", "geometry", "source_table"])
    writer.writerows(rows)
    return out.getvalue().encode()


def ballots_csv(m: int, seed: int = 1) -> bytes:
    return _csv_bytes(ballots_rows(m, seed))


def ballots_file_name(plan: Plan) -> str:
    for layer in plan.layers:
        for step in layer.walk():
            if step.kind == "lambda" and BALLOTS in step.writes:
                return step.environment.get("FILE_NAME", "current_elections.csv")
    return "current_elections.csv"


def locations(plan: Plan) -> dict[str, str]:
    """Where sample data goes: the real input locations from the plan."""
    return {
        "addresses": plan.table(ADDRESSBASE).location + "addressbase_cleaned.csv",
        "ballots": plan.table(BALLOTS).location + ballots_file_name(plan),
    }


def missing_inputs(plan: Plan, store: Store) -> list[str]:
    return [
        ref
        for ref in (ADDRESSBASE, BALLOTS, BOUNDARY_REVIEWS)
        if ref in plan.tables and not store.list(plan.table(ref).location)
    ]


def write_sample_data(
    plan: Plan,
    store: Store,
    *,
    addresses: int = 50_000,
    ballots: int = 300,
    seed: int = 1,
    only: list[str] | None = None,
    reviews: int = boundary_reviews.DEFAULT_REVIEWS,
) -> SampleSummary:
    """Write the inputs (both, or the table refs in `only`) into the store, replacing
    what is at their locations."""
    where = locations(plan)
    wanted = set(only or (ADDRESSBASE, BALLOTS, BOUNDARY_REVIEWS))
    files = []
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    outcodes = 0
    if ADDRESSBASE in wanted:
        store.delete_prefix(plan.table(ADDRESSBASE).location)
        table = addresses_table(addresses, seed)
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        pacsv.write_csv(table, sink, write_options=options)
        store.write_bytes(where["addresses"], sink.getvalue().to_pybytes())
        files.append(where["addresses"])
        squashed = pc.utf8_upper(pc.replace_substring(table["postcode"], " ", ""))
        outcodes = pc.count_distinct(pc.utf8_slice_codeunits(squashed, 0, -3)).as_py()
    rows: list[tuple[str, str, str, str]] = []
    if BALLOTS in wanted:
        store.delete_prefix(plan.table(BALLOTS).location)
        rows = ballots_rows(ballots, seed)
        store.write_bytes(where["ballots"], _csv_bytes(rows))
        files.append(where["ballots"])
    if BOUNDARY_REVIEWS in wanted and BOUNDARY_REVIEWS in plan.tables:
        # Reviews around places that have addresses (the same addresses the seed makes).
        points = addresses_table(addresses, seed)["location"].to_pylist()
        files += boundary_reviews.write(plan.table(BOUNDARY_REVIEWS), store, reviews, points, seed)
    return SampleSummary(
        addresses=addresses if ADDRESSBASE in wanted else 0,
        ballots=len({r[0] for r in rows}),
        polygon_rows=len(rows),
        outcodes=outcodes,
        files=files,
    )

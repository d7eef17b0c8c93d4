"""Sample generator `ballots`: deterministic synthetic current ballots with WKT.

One row per polygon, header election_id,division_id,geometry,source_table:
- Organisation ballots (a council-wide rectangle, subdivided into strips, some with
  a hole) and Division ballots (wards tiling the council, each subdivided into
  pieces, some pieces merged into one MULTIPOLYGON row): every address in a ward is
  also inside its council, so ballots overlap; councils overlap each other too;
- a few `None` rows with an empty geometry; much of the box is in no council, so
  plenty of addresses match no ballot.
Polygons are rounded to 4 decimals, so a few addresses may fall exactly on a shared
boundary.
"""

from __future__ import annotations

import io

import numpy as np

from bakery.democracy_club.samples.addressbase import BOX
from bakery.sample_data import SampleFiles, SampleRequest

DEFAULT_ROWS = 300
DAY = "2026-05-07"


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
                # diagonal pieces touch at one corner: a valid MULTIPOLYGON (ST_IsValid)
                rows.append((eid, div, f"MULTIPOLYGON(({pieces[0]}), ({pieces[3]}))", "Division"))
                pieces = [pieces[1], pieces[2], pieces[4], pieces[5]]
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


def file_name(request: SampleRequest) -> str:
    """The file name the step that writes this table on AWS uses (its FILE_NAME)."""
    for layer in request.plan.layers:
        for step in layer.walk():
            if step.kind == "lambda" and request.table.ref in step.writes:
                return step.environment.get("FILE_NAME", "current_elections.csv")
    return "current_elections.csv"


def generate(request: SampleRequest) -> SampleFiles:
    m = request.rows or DEFAULT_ROWS
    rows = ballots_rows(m, request.seed)
    ballots = len({r[0] for r in rows})
    return SampleFiles(
        files={file_name(request): _csv_bytes(rows)},
        rows=len(rows),
        summary=f"{ballots:,} ballots ({len(rows):,} polygon rows)",
        stats={"ballots": ballots, "polygon_rows": len(rows)},
    )

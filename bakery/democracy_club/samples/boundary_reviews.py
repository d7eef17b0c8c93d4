"""Sample boundary reviews: the table the EveryElection boundary-review export writes.

Deterministic, in the export's shape (bakery.lambdas.ee_boundary_reviews): Parquet files
partitioned `boundary_review_id=<int>/divisionset_generation=<old|new>/division_type=<t>/`,
every column a string. What it holds, so the layer meets every case:

- several organisations, each with one review; each review has an old and a new
  division set for one or two division types (`DIW` wards: a grid of columns x rows;
  `CED` county divisions: horizontal bands);
- the new set moves some of the old grid lines (redrawn divisions) and renames some
  divisions (new slug): so divisions are untouched, renamed, redrawn, or both;
- every division is cut into two or three pieces (EE keeps geographies subdivided);
- reviews overlap in pairs (a county and a district around the same place), so some
  addresses are in two reviews; most of the country is in no review;
- one review's `CED` type exists only in its old set (abolished in the new one);
- some NULLs: a review without legislation title, a set without PMTiles hash.

Coordinates are rounded to 4 decimals, like the ballots sample.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bakery.lambdas import ee_boundary_reviews

BOUNDARY_REVIEWS = "current_boundary_changes.current_boundary_reviews_with_wkt"
BOX = (-5.5, 50.2, 1.5, 57.8)  # the sample addresses' box (lon_min, lat_min, lon_max, lat_max)
# The export handler's columns: the sample has the shape of what it writes.
COLUMNS = ee_boundary_reviews.COLUMNS
PMTILES_STORE = "https://s3.eu-west-2.amazonaws.com/ee.public.data/pmtiles-store/"
DEFAULT_REVIEWS = 6


@dataclass
class Division:
    slug: str
    name: str
    official_identifier: str
    pieces: list[str]  # WKT polygons, one per subdivided piece


@dataclass
class DivisionSet:
    id: int
    pmtiles_url: str | None
    divisions: dict[str, list[Division]] = field(default_factory=dict)  # by division type


@dataclass
class Review:
    id: int
    review: dict[str, str | None]  # the review and organisation columns
    old: DivisionSet
    new: DivisionSet


def _box(x0: float, y0: float, x1: float, y1: float) -> str:
    return (
        f"POLYGON(({x0:.4f} {y0:.4f}, {x1:.4f} {y0:.4f}, {x1:.4f} {y1:.4f}, "
        f"{x0:.4f} {y1:.4f}, {x0:.4f} {y0:.4f}))"
    )


def _pieces(x0: float, y0: float, x1: float, y1: float, n: int) -> list[str]:
    """A rectangle cut into n horizontal pieces (what ST_Subdivide leaves)."""
    ys = np.round(np.linspace(y0, y1, n + 1), 4)
    return [_box(x0, ys[i], x1, ys[i + 1]) for i in range(n)]


def _moved(lines: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Inner grid lines, some moved by up to a third of a cell (redrawn divisions)."""
    out = lines.copy()
    cell = (lines[-1] - lines[0]) / (len(lines) - 1)
    for i in range(1, len(lines) - 1):
        if rng.random() < share:
            out[i] = lines[i] + rng.uniform(-cell / 3, cell / 3)
    return np.round(out, 4)


def _grid(
    kind: str,
    org: str,
    xs: np.ndarray,
    ys: np.ndarray,
    names: list[str],
    rng: np.random.Generator,
) -> list[Division]:
    out = []
    k = 0
    for j in range(len(ys) - 1):
        for i in range(len(xs) - 1):
            slug = names[k]
            pieces = _pieces(xs[i], ys[j], xs[i + 1], ys[j + 1], int(rng.integers(2, 4)))
            ident = f"E0{5 if kind == 'DIW' else 6}{int(_stable_id(org + slug), 16) % 10**6:06d}"
            out.append(Division(slug, slug.replace("-", " ").title(), ident, pieces))
            k += 1
    return out


def _stable_id(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:6]


def centres_from(locations: Any, k: int, seed: int = 1) -> list[tuple[float, float]]:
    """K places where there are addresses: the points of k of the given EWKT locations."""
    rng = np.random.default_rng(seed + 3000)
    points = [s for s in locations if s and s.startswith("SRID=4326;POINT(")]
    if not points:
        return []
    chosen = rng.choice(len(points), size=min(k, len(points)), replace=False)
    out = []
    for i in sorted(chosen):
        lon, lat = points[i][len("SRID=4326;POINT(") : -1].split()
        out.append((float(lon), float(lat)))
    return out


def reviews(
    n: int = DEFAULT_REVIEWS,
    seed: int = 1,
    divisions_per_set: int = 9,
    centres: list[tuple[float, float]] | None = None,
) -> list[Review]:
    """N reviews over pairs of overlapping organisations, around the given centres (places
    with addresses) or anywhere in the box of the sample addresses."""
    rng = np.random.default_rng(seed + 2000)
    lon0, lat0, lon1, lat1 = BOX
    side = max(2, round(np.sqrt(divisions_per_set)))
    out: list[Review] = []
    centre = (0.0, 0.0)
    for r in range(n):
        if r % 2 == 0:  # a new place; the next review's organisation overlaps this one
            if centres:
                centre = centres[(r // 2) % len(centres)]
            else:
                centre = (rng.uniform(lon0 + 0.6, lon1 - 0.6), rng.uniform(lat0 + 0.4, lat1 - 0.4))
        w, h = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.4)
        cx = centre[0] + (0 if r % 2 == 0 else w * 0.4)
        cy = centre[1] + (0 if r % 2 == 0 else h * 0.3)
        x0, y0 = round(cx - w / 2, 4), round(cy - h / 2, 4)
        x1, y1 = round(cx + w / 2, 4), round(cy + h / 2, 4)
        org = f"council-{r + 1:02d}"
        review_id = 900 + r * 7
        old_id, new_id = 100 + r * 2, 101 + r * 2
        types = ["DIW", "CED"] if r % 3 != 1 else ["DIW"]
        old = DivisionSet(old_id, f"{PMTILES_STORE}{org}_{old_id}_{_stable_id(org)}.pmtiles")
        new_url = f"{PMTILES_STORE}{org}_{new_id}_{_stable_id(org + 'n')}.pmtiles"
        new = DivisionSet(new_id, None if r == 1 else new_url)
        for kind in types:
            cols, rows = (side, side) if kind == "DIW" else (1, side)
            xs = np.round(np.linspace(x0, x1, cols + 1), 4)
            ys = np.round(np.linspace(y0, y1, rows + 1), 4)
            names = [f"{kind.lower()}-{org}-{k + 1:02d}" for k in range(cols * rows)]
            old.divisions[kind] = _grid(kind, org, xs, ys, names, rng)
            if kind == "CED" and r == 0:
                continue  # abolished: the new set has no CED divisions
            renamed = [f"{s}-new" if rng.random() < 0.3 else s for s in names]
            new_xs = _moved(xs, rng, 0.4) if cols > 1 else xs
            new_ys = _moved(ys, rng, 0.4)
            new.divisions[kind] = _grid(kind, org, new_xs, new_ys, renamed, rng)
        details: dict[str, str | None] = {
            "slug": f"{org}-boundary-review",
            "status": "COMPLETED" if r % 2 else "CURRENT",
            "latest_event": "Final recommendations published",
            "consultation_url": f"https://www.lgbce.org.uk/all-reviews/{org}",
            "legislation_title": (
                None if r == 2 else f"The {org.title()} (Electoral Changes) Order 2026"
            ),
            "effective_date": "2027-05-06",
            "review_created": f"2025-0{1 + r % 9}-15T09:15:00.000000Z",
            "review_modified": "2026-02-01T12:00:00.000000Z",
            "organisation_name": org.replace("-", " ").title(),
            "organisation_official_name": f"{org.replace('-', ' ').title()} Council",
            "organisation_gss": f"E0700{r + 1:04d}",
        }
        out.append(Review(review_id, details, old, new))
    return out


def rows(items: list[Review]) -> list[tuple[Any, ...]]:
    """(boundary_review_id, divisionset_generation, division_type, *COLUMNS) per piece,
    ordered as the export orders them."""
    out = []
    for review in items:
        for generation, dset in (("new", review.new), ("old", review.old)):
            for kind in sorted(dset.divisions):
                for div in sorted(dset.divisions[kind], key=lambda d: d.slug):
                    for wkt in div.pieces:
                        out.append(
                            (review.id, generation, kind)
                            + tuple(review.review[c] for c in COLUMNS[:11])
                            + (str(dset.id), dset.pmtiles_url, div.slug, div.name,
                               div.official_identifier, wkt)
                        )  # fmt: skip
    return out


def files(items: list[Review]) -> dict[str, bytes]:
    """Relative path under the table location -> Parquet bytes, one file per partition."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    grouped: dict[tuple, list[tuple]] = {}
    for row in rows(items):
        grouped.setdefault(row[:3], []).append(row[3:])
    out = {}
    for (review_id, generation, kind), values in grouped.items():
        table = pa.table(list(zip(*values, strict=True)), schema=schema)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        path = (
            f"boundary_review_id={review_id}/divisionset_generation={generation}/"
            f"division_type={kind}/part-0.parquet"
        )
        out[path] = sink.getvalue()
    return out


def write(
    table: Any, store: Any, n: int, locations: Any, seed: int = 1, divisions_per_set: int = 9
) -> list[str]:
    """Replace what is at the table's location with N sample reviews around some of the
    given address locations; the files written."""
    store.delete_prefix(table.location)
    centres = centres_from(locations, max(1, n // 2), seed)
    items = reviews(n, seed, divisions_per_set, centres=centres)
    written = []
    for path, data in files(items).items():
        store.write_bytes(table.location + path, data)
        written.append(table.location + path)
    return written


def generate(request: Any) -> Any:
    """The `boundary_reviews` sample generator (bakery/sample_data.py): reviews around
    the sample addresses of the same seeding (their size and seed)."""
    from bakery.democracy_club.samples.addressbase import DEFAULT_ROWS, addresses_table
    from bakery.sample_data import SampleFiles

    n = request.rows or DEFAULT_REVIEWS
    addresses = request.sizes.get("addressbase", DEFAULT_ROWS)
    points = addresses_table(addresses, request.seed)["location"].to_pylist()
    items = reviews(n, request.seed, 9, centres=centres_from(points, max(1, n // 2), request.seed))
    made = files(items)
    return SampleFiles(made, len(rows(items)), f"{n} boundary reviews ({len(made)} files)")

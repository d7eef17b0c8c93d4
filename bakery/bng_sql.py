"""British National Grid (EPSG:27700) to WGS 84 longitude/latitude, as SQL arithmetic.

Athena engine 3 (Trino) has no ST_Transform, so a layer that meets grid references
converts them with plain arithmetic that Athena and DuckDB both run (sin, cos, tan,
atan2, sqrt): the same SQL on both engines, so both publish the same coordinates.
Templates call it as `{{ bng_to_wgs84('relation', 'easting', 'northing') }}`; it renders
a derived table: every column of `relation` plus `wgs84_longitude` and
`wgs84_latitude` (NULL where the easting or northing is NULL), with working columns
named `bng__*`.

The steps, each a SELECT over the one before (so no expression is repeated):
1. the inverse Transverse Mercator projection of the National Grid on the Airy 1830
   ellipsoid (the footpoint latitude from the meridional arc by its series in the
   rectifying latitude, then Ordnance Survey's series in the easting offset), giving
   OSGB36 latitude and longitude;
2. geodetic to cartesian coordinates on Airy 1830;
3. the Helmert transformation OSGB36 -> WGS 84 with Ordnance Survey's published
   parameters, reversed by changing their signs as OS says to (accurate to about 3.5 m,
   95 %: https://docs.os.uk/more-than-maps/deep-dive/a-guide-to-coordinate-systems-in-
   great-britain/from-one-coordinate-system-to-another-geodetic-transformations/
   approximate-wgs84-to-osgb36-odn-transformation);
4. cartesian to geodetic on the WGS 84 ellipsoid (Bowring's formula, exact to well
   under a millimetre at the Earth's surface).

Measured against DuckDB spatial's ST_Transform('EPSG:27700', 'EPSG:4326') over Great
Britain: tests/local/test_bng_sql.py (the figure is in docs/local.md).
"""

from __future__ import annotations

import math
import re

import jinja2

# Airy 1830 and the National Grid's projection (OS, "A guide to coordinate systems in
# Great Britain", annex A and C).
AIRY_A, AIRY_B = 6377563.396, 6356256.909
F0 = 0.9996012717
LAT0, LON0 = math.radians(49.0), math.radians(-2.0)
E0, N0 = 400000.0, -100000.0
# WGS 84.
WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563
# OSGB36 -> WGS 84: the signs of OS's WGS84 -> OSGB36 parameters changed.
TX, TY, TZ = 446.448, -125.157, 542.060  # metres
RX, RY, RZ = 0.1502, 0.2470, 0.8421  # arc seconds
SCALE_PPM = -20.4894

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _num(value: float) -> str:
    """A double literal both engines read as DOUBLE (an exponent makes it one in Trino,
    where 0.5 would be a DECIMAL), with every digit a double holds."""
    return format(value, ".17e")


def _constants() -> dict[str, str]:
    a, b = AIRY_A, AIRY_B
    e2 = (a * a - b * b) / (a * a)
    n = (a - b) / (a + b)
    # Meridional arc from the equator to the true origin's latitude, scaled by F0: the
    # northing of the equator is N0 minus it.
    phi = LAT0
    arc0 = (
        b
        * F0
        * (
            (1 + n + 5 / 4 * n**2 + 5 / 4 * n**3) * phi
            - (3 * n + 3 * n**2 + 21 / 8 * n**3) * math.sin(phi) * math.cos(phi)
            + (15 / 8 * n**2 + 15 / 8 * n**3) * math.sin(2 * phi) * math.cos(2 * phi)
            - 35 / 24 * n**3 * math.sin(3 * phi) * math.cos(3 * phi)
        )
    )
    e1 = (1 - math.sqrt(1 - e2)) / (1 + math.sqrt(1 - e2))
    wa = WGS84_A
    wb = wa * (1 - WGS84_F)
    sec = math.pi / 180 / 3600
    return {
        # rectifying latitude per metre of northing, and the equator's northing
        "mu_per_m": _num(1 / (F0 * a * (1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256))),
        # (positive: the equator lies south of the false origin)
        "minus_n_equator": _num(arc0 - N0),
        "c2": _num(3 * e1 / 2 - 27 * e1**3 / 32),
        "c4": _num(21 * e1**2 / 16 - 55 * e1**4 / 32),
        "c6": _num(151 * e1**3 / 96),
        "c8": _num(1097 * e1**4 / 512),
        "e2": _num(e2),
        "af0": _num(a * F0),
        "af0_1me2": _num(a * F0 * (1 - e2)),
        "a": _num(a),
        "1me2": _num(1 - e2),
        "e0": _num(E0),
        "lon0": _num(LON0),
        "tx": _num(TX),
        "ty": _num(TY),
        "tz": _num(TZ),
        "rx": _num(RX * sec),
        "ry": _num(RY * sec),
        "rz": _num(RZ * sec),
        "1ps": _num(1 + SCALE_PPM * 1e-6),
        "wa": _num(wa),
        "wb": _num(wb),
        "we2": _num((wa * wa - wb * wb) / (wa * wa)),
        "wep2": _num((wa * wa - wb * wb) / (wb * wb)),
    }


def _stages(easting: str, northing: str) -> list[str]:
    """The select list each stage adds (over `*` of the stage before)."""
    k = _constants()
    return [
        # 1. rectifying latitude of the footpoint; easting offset from the true origin
        f"({northing} + {k['minus_n_equator']}) * {k['mu_per_m']} AS bng__mu, "
        f"{easting} - {k['e0']} AS bng__de",
        # 2. footpoint latitude
        f"bng__mu + {k['c2']} * sin(2 * bng__mu) + {k['c4']} * sin(4 * bng__mu) "
        f"+ {k['c6']} * sin(6 * bng__mu) + {k['c8']} * sin(8 * bng__mu) AS bng__phi1",
        # 3. its tangent, secant and the radii of curvature (scaled by F0)
        f"tan(bng__phi1) AS bng__t, 1 / cos(bng__phi1) AS bng__sec, "
        f"1 - {k['e2']} * sin(bng__phi1) * sin(bng__phi1) AS bng__w",
        f"{k['af0']} / sqrt(bng__w) AS bng__nu, "
        f"{k['af0_1me2']} / (bng__w * sqrt(bng__w)) AS bng__rho",
        # 4. OSGB36 latitude and longitude (radians)
        "bng__phi1"
        " - bng__t / (2 * bng__rho * bng__nu) * power(bng__de, 2)"
        " + bng__t / (24 * bng__rho * power(bng__nu, 3))"
        " * (5 + 3 * bng__t * bng__t + (bng__nu / bng__rho - 1)"
        " - 9 * bng__t * bng__t * (bng__nu / bng__rho - 1)) * power(bng__de, 4)"
        " - bng__t / (720 * bng__rho * power(bng__nu, 5))"
        " * (61 + 90 * bng__t * bng__t + 45 * power(bng__t, 4)) * power(bng__de, 6)"
        " AS bng__lat, "
        f"{k['lon0']}"
        " + bng__sec / bng__nu * bng__de"
        " - bng__sec / (6 * power(bng__nu, 3)) * (bng__nu / bng__rho + 2 * bng__t * bng__t)"
        " * power(bng__de, 3)"
        " + bng__sec / (120 * power(bng__nu, 5))"
        " * (5 + 28 * bng__t * bng__t + 24 * power(bng__t, 4)) * power(bng__de, 5)"
        " - bng__sec / (5040 * power(bng__nu, 7))"
        " * (61 + 662 * bng__t * bng__t + 1320 * power(bng__t, 4) + 720 * power(bng__t, 6))"
        " * power(bng__de, 7)"
        " AS bng__lon",
        # 5. cartesian on Airy 1830 (height 0)
        f"{k['a']} / sqrt(1 - {k['e2']} * sin(bng__lat) * sin(bng__lat)) AS bng__v",
        "bng__v * cos(bng__lat) * cos(bng__lon) AS bng__x1, "
        "bng__v * cos(bng__lat) * sin(bng__lon) AS bng__y1, "
        f"{k['1me2']} * bng__v * sin(bng__lat) AS bng__z1",
        # 6. Helmert, position vector convention, small angles
        f"{k['tx']} + {k['1ps']} * bng__x1 - {k['rz']} * bng__y1 + {k['ry']} * bng__z1"
        " AS bng__x2, "
        f"{k['ty']} + {k['rz']} * bng__x1 + {k['1ps']} * bng__y1 - {k['rx']} * bng__z1"
        " AS bng__y2, "
        f"{k['tz']} - {k['ry']} * bng__x1 + {k['rx']} * bng__y1 + {k['1ps']} * bng__z1"
        " AS bng__z2",
        # 7. back to latitude and longitude on WGS 84 (Bowring)
        "sqrt(bng__x2 * bng__x2 + bng__y2 * bng__y2) AS bng__p",
        f"atan2(bng__z2 * {k['wa']}, bng__p * {k['wb']}) AS bng__theta",
        "degrees(atan2(bng__y2, bng__x2)) AS wgs84_longitude, "
        f"degrees(atan2(bng__z2 + {k['wep2']} * {k['wb']} * power(sin(bng__theta), 3), "
        f"bng__p - {k['we2']} * {k['wa']} * power(cos(bng__theta), 3))) AS wgs84_latitude",
    ]


def bng_to_wgs84(relation: str, easting: str, northing: str) -> str:
    """A derived table: `relation`'s rows with wgs84_longitude and wgs84_latitude computed
    from its `easting` and `northing` columns (metres on the National Grid)."""
    for what, name in (("relation", relation), ("easting", easting), ("northing", northing)):
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise jinja2.TemplateRuntimeError(
                f"bng_to_wgs84: {what} must be a table or column name, not {name!r}"
            )
    sql = relation
    for i, select in enumerate(_stages(easting, northing)):
        sql = f"(SELECT *, {select} FROM {sql} AS bng__{i})"
    return sql

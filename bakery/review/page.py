"""The review page: one HTML file, Leaflet and its clustering plugin inlined from
node_modules (pinned in package.json), the data inlined as JSON. Nothing is fetched when
the page is opened: no tile layer (points and polygons on a blank background), no
images (circle markers, CSS clusters), source-map comments and CSS image URLs removed."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from bakery.errors import BakeryError

REPO = Path(__file__).resolve().parents[2]
ASSETS = {
    "css": ["leaflet/dist/leaflet.css", "leaflet.markercluster/dist/MarkerCluster.css",
            "leaflet.markercluster/dist/MarkerCluster.Default.css"],
    "js": ["leaflet/dist/leaflet.js", "leaflet.markercluster/dist/leaflet.markercluster.js"],
}  # fmt: skip
TEMPLATE = Path(__file__).with_name("page.html")


class MissingAssets(BakeryError):
    pass


def _asset(name: str) -> str:
    path = REPO / "node_modules" / name
    if not path.is_file():
        raise MissingAssets(f"{path} is missing; install the pinned npm packages: npm ci")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"//# sourceMappingURL=\S+", "", text)
    return re.sub(r"url\([^)]*\)", "none", text) if name.endswith(".css") else text


def _script_safe(text: str) -> str:
    """Inline text that cannot close its <script>/<style> element early."""
    return text.replace("</", "<\\/")


def render(data: dict[str, Any]) -> str:
    css = "\n".join(_asset(n) for n in ASSETS["css"])
    js = "\n".join(_asset(n) for n in ASSETS["js"])
    page = TEMPLATE.read_text(encoding="utf-8")
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    return (
        page.replace("/*LIBRARY_CSS*/", css.replace("</", "<\\/"))
        .replace("/*LIBRARY_JS*/", _script_safe(js))
        .replace("/*DATA*/", _script_safe(blob))
        .replace("<!--TITLE-->", html.escape(f"bakery review: {data['a']} → {data['b']}"))
    )

"""JSON Schema of the spec files, generated from the pydantic models."""

from __future__ import annotations

import json

from bakery.spec import Layer, Project


def schema_files() -> dict[str, str]:
    out = {}
    for name, model in (("layer.schema.json", Layer), ("project.schema.json", Project)):
        data = model.model_json_schema(by_alias=True)
        data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return out

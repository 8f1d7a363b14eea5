"""Hypothesis strategies for the JSON Schema subset /openapi.json uses.

Enough for the contract tests to draw values the document allows (``$ref``, ``anyOf``,
``const``, ``enum``, integers with bounds, strings with a ``pattern``, closed objects,
arrays with size bounds) without a schema library the project does not depend on.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"


def resolve(document: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF_PREFIX)]
    return schema


def integers(schema: Schema) -> st.SearchStrategy[Any]:
    whole = st.integers(schema.get("minimum"), schema.get("maximum"))
    # JSON Schema counts 5.0 as an integer too, and so must the server.
    return st.one_of(whole, whole.map(float))


def strings(schema: Schema) -> st.SearchStrategy[str]:
    pattern = schema.get("pattern")
    drawn = st.text() if pattern is None else st.from_regex(pattern, fullmatch=True)
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    return drawn.filter(lambda s: len(s) >= low and (high is None or len(s) <= high))


def objects(document: Schema, schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    drawn = st.fixed_dictionaries(
        {name: values(document, sub) for name, sub in properties.items() if name in required},
        optional={
            name: values(document, sub) for name, sub in properties.items() if name not in required
        },
    )
    low = schema.get("minProperties", 0)
    return drawn.filter(lambda d: len(d) >= low)


def values(document: Schema, schema: Schema) -> st.SearchStrategy[Any]:
    """Any value ``schema`` (within ``document``) allows."""
    schema = resolve(document, schema)
    if "anyOf" in schema:
        return st.one_of([values(document, option) for option in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return integers(schema)
    if kind == "string":
        return strings(schema)
    if kind == "null":
        return st.none()
    if kind == "object":
        return objects(document, schema)
    if kind == "array":
        return st.lists(
            values(document, schema["items"]),
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems"),
        )
    raise NotImplementedError(f"no strategy for {schema}")


def query_text(value: Any) -> str:
    """How a client puts a query parameter's value in the URL."""
    return str(value)

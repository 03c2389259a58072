"""Merging OpenAPI documents: paths, tags, components, clashes and their references."""

from __future__ import annotations

from typing import Any

from gateway.openapi import merge_documents, plan_renames, rewrite_refs


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def op(tags: list[str], operation_id: str, schema: str) -> dict[str, Any]:
    content = {"application/json": {"schema": ref(schema)}}
    return {
        "tags": tags,
        "operationId": operation_id,
        "responses": {"200": {"description": "OK", "content": content}},
    }


def doc(title: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
        },
    }


GATEWAY = doc(
    "Gateway",
    {"/api/v1/me": {"get": op(["auth"], "me", "CallerOut")}},
    {
        "CallerOut": {"type": "object", "properties": {"subject": {"type": "string"}}},
    },
)
ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
CUSTOMER = doc(
    "Customer service",
    {
        "/api/v1/customers": {"get": op(["customers"], "list", "Page")},
        "/healthz": {"get": op(["health"], "healthz", "Error")},
        "/api/v1/ratings": {"get": op([], "stray", "Error")},
    },
    {
        "Item": {"type": "object", "properties": {"id": {"type": "string"}}},
        "Page": {"type": "object", "properties": {"items": {"items": ref("Item")}}},
        "Error": ERROR,
    },
)
RATING = doc(
    "Rating service",
    {"/api/v1/ratings/{id}": {"get": op(["ratings"], "list", "Page")}},
    {
        "Item": {"type": "object", "properties": {"grade": {"type": "string"}}},
        "Page": {"type": "object", "properties": {"items": {"items": ref("Item")}}},
        "Error": ERROR,
    },
)


def merged() -> dict[str, Any]:
    return merge_documents(GATEWAY, {"customer": CUSTOMER, "rating": RATING}, ["visits"])


def test_paths_merged_health_and_unrouted_left_out() -> None:
    document = merged()
    assert document["openapi"] == "3.1.0"
    assert list(document["paths"]) == ["/api/v1/me", "/api/v1/customers", "/api/v1/ratings/{id}"]
    assert document["x-unavailable"] == ["visits"]


def test_operations_tagged_with_service_first() -> None:
    paths = merged()["paths"]
    assert paths["/api/v1/me"]["get"]["tags"] == ["gateway", "auth"]
    assert paths["/api/v1/customers"]["get"]["tags"] == ["customer", "customers"]
    assert paths["/api/v1/ratings/{id}"]["get"]["tags"] == ["rating", "ratings"]
    tags = [tag["name"] for tag in merged()["tags"]]
    assert tags == ["gateway", "auth", "customer", "customers", "rating", "ratings"]


def test_operation_ids_kept_unique() -> None:
    paths = merged()["paths"]
    assert paths["/api/v1/customers"]["get"]["operationId"] == "list"
    assert paths["/api/v1/ratings/{id}"]["get"]["operationId"] == "rating_list"


def test_clashing_schemas_renamed_with_refs_rewritten() -> None:
    document = merged()
    schemas = document["components"]["schemas"]
    assert set(schemas) == {"CallerOut", "Item", "Page", "Error", "rating_Item", "rating_Page"}
    # Page is the same text in both, but its Item is not: it is renamed too.
    assert schemas["rating_Page"]["properties"]["items"]["items"] == ref("rating_Item")
    assert schemas["Page"]["properties"]["items"]["items"] == ref("Item")
    response = document["paths"]["/api/v1/ratings/{id}"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == ref("rating_Page")
    assert list(document["components"]["securitySchemes"]) == ["HTTPBearer"]


def test_inputs_are_not_changed() -> None:
    before = repr((GATEWAY, CUSTOMER, RATING))
    merged()
    assert repr((GATEWAY, CUSTOMER, RATING)) == before


def test_rename_avoids_names_already_taken() -> None:
    existing = {"schemas": {"A": {"type": "string"}, "rating_A": {"type": "integer"}}}
    components = {"schemas": {"A": {"type": "boolean"}}}
    renames = plan_renames(existing, "rating", components)
    assert renames == {"#/components/schemas/A": "#/components/schemas/rating_A_2"}


def test_rewrite_refs_copies() -> None:
    node = {"a": [ref("X"), {"b": ref("Y")}]}
    out = rewrite_refs(node, {"#/components/schemas/X": "#/components/schemas/Z"})
    assert out == {"a": [ref("Z"), {"b": ref("Y")}]}
    assert node["a"][0] == ref("X")

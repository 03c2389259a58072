"""One OpenAPI document for the whole suite, merged from the services' own documents.

Each upstream's ``/openapi.json`` is fetched in parallel. Paths are merged (health and metrics
endpoints left out, and only the paths the route table sends to that service kept), each
operation is tagged with the name of its service, and components are merged. When two services
define a component of the same name with different content, the later one is renamed
``<service>_<name>`` and its references are rewritten. A service that does not answer is left out
and named in the ``x-unavailable`` extension.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.proxy import context_headers, get_client
from gateway.routes import resolve
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

Document = dict[str, Any]

GATEWAY = "gateway"
OPENAPI_PATH = "/api/v1/openapi.json"
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
REF_PREFIX = "#/components/"
# Security schemes are named, not referenced, by operations: the first definition is kept.
NAMED_SECTIONS = frozenset({"securitySchemes"})
DESCRIPTION = (
    "The bank CRM suite behind its gateway. Get a token from `POST /api/v1/auth/token` "
    "(development) or the bank's identity provider and send it as `Authorization: Bearer`."
)


async def fetch_document(
    client: httpx.AsyncClient, service: str, base_url: str, timeout_s: float
) -> Document | None:
    """The service's OpenAPI document, or None when it cannot be had."""
    try:
        response = await client.get(
            f"{base_url}/openapi.json", timeout=timeout_s, headers=context_headers()
        )
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("no OpenAPI document from %s: %r", service, exc, extra={"upstream": service})
        return None
    return document if isinstance(document, dict) else None


async def fetch_documents(
    client: httpx.AsyncClient, upstreams: Mapping[str, str], timeout_s: float
) -> tuple[dict[str, Document], list[str]]:
    """The documents of the services that answered, and the names of those that did not."""
    results = await asyncio.gather(
        *(fetch_document(client, name, url, timeout_s) for name, url in upstreams.items())
    )
    documents = {name: doc for name, doc in zip(upstreams, results, strict=True) if doc}
    unavailable = [name for name, doc in zip(upstreams, results, strict=True) if not doc]
    return documents, unavailable


def rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """A deep copy of ``node`` with every ``$ref`` found in ``renames`` replaced."""
    if isinstance(node, dict):
        return {
            key: renames.get(value, value)
            if key == "$ref" and isinstance(value, str)
            else rewrite_refs(value, renames)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [rewrite_refs(item, renames) for item in node]
    return node


def _ref(section: str, name: str) -> str:
    return f"{REF_PREFIX}{section}/{name}"


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _free_name(service: str, name: str, taken: set[str]) -> str:
    candidate, counter = f"{service}_{name}", 2
    while candidate in taken:
        candidate, counter = f"{service}_{name}_{counter}", counter + 1
    return candidate


def _sections(components: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(components, dict):
        return {}
    return {
        section: entries
        for section, entries in components.items()
        if isinstance(entries, dict) and section not in NAMED_SECTIONS
    }


def _rename_pass(
    merged: dict[str, dict[str, Any]],
    service: str,
    sections: dict[str, dict[str, Any]],
    renames: dict[str, str],
) -> bool:
    """Rename the components that clash with merged ones; True when a new rename was made."""
    changed = False
    for section, entries in sections.items():
        existing = merged.get(section, {})
        for name, value in entries.items():
            ref = _ref(section, name)
            if ref in renames or name not in existing:
                continue
            if existing[name] != rewrite_refs(value, renames):
                taken = set(existing) | set(entries) | {_name(r) for r in renames.values()}
                renames[ref] = _ref(section, _free_name(service, name, taken))
                changed = True
    return changed


def plan_renames(
    merged: dict[str, dict[str, Any]], service: str, components: Any
) -> dict[str, str]:
    """Old ref to new ref for the service's components that clash with merged ones.

    A rename changes the content of the components that refer to the renamed one, which may
    make them clash in turn: passes are repeated until nothing more is renamed.
    """
    sections = _sections(components)
    renames: dict[str, str] = {}
    while _rename_pass(merged, service, sections, renames):
        pass
    return renames


def merge_components(
    merged: dict[str, dict[str, Any]], components: Any, renames: Mapping[str, str]
) -> None:
    """Add a service's components to the merged ones under their (possibly new) names."""
    if not isinstance(components, dict):
        return
    for section, entries in components.items():
        if not isinstance(entries, dict):
            continue
        bucket = merged.setdefault(section, {})
        for name, value in entries.items():
            ref = _ref(section, name)
            bucket.setdefault(_name(renames.get(ref, ref)), rewrite_refs(value, renames))


def tag_operations(path_item: dict[str, Any], service: str, operation_ids: set[str]) -> None:
    """Put the service's tag first on every operation and keep operation ids unique."""
    for method, operation in path_item.items():
        if method not in HTTP_METHODS or not isinstance(operation, dict):
            continue
        tags = [tag for tag in operation.get("tags", []) if tag != service]
        operation["tags"] = [service, *tags]
        operation_id = operation.get("operationId")
        if isinstance(operation_id, str):
            if operation_id in operation_ids:
                operation_id = operation["operationId"] = f"{service}_{operation_id}"
            operation_ids.add(operation_id)


def merge_paths(
    merged: Document,
    service: str,
    document: Document,
    renames: Mapping[str, str],
    owns: Callable[[str], bool],
) -> list[dict[str, Any]]:
    """Add the service's paths the gateway routes to it, refs rewritten and operations tagged.

    Returns the path items added.
    """
    operation_ids = _operation_ids(merged)
    added: list[dict[str, Any]] = []
    for path, item in (document.get("paths") or {}).items():
        if path in HEALTH_PATHS or not isinstance(item, dict):
            continue
        if not owns(path):
            log.warning("%s: path %s is not routed to it; left out", service, path)
            continue
        if path in merged["paths"]:
            log.warning("%s: path %s is defined already; left out", service, path)
            continue
        path_item = rewrite_refs(item, renames)
        tag_operations(path_item, service, operation_ids)
        merged["paths"][path] = path_item
        added.append(path_item)
    return added


def _operation_ids(merged: Document) -> set[str]:
    return {
        operation["operationId"]
        for item in merged["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict) and "operationId" in operation
    }


def _used_tags(path_items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": tag}
        for item in path_items
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict)
        for tag in operation.get("tags", [])
    ]


def merge_tags(
    merged: Document, service: str, document: Document, path_items: Sequence[dict[str, Any]]
) -> None:
    """Declare the service's tag (described by its title), then its declared and used tags."""
    known = {tag["name"] for tag in merged["tags"]}
    title = (document.get("info") or {}).get("title", service)
    declared = [t for t in document.get("tags") or [] if isinstance(t, dict) and "name" in t]
    for tag in [{"name": service, "description": title}, *declared, *_used_tags(path_items)]:
        if tag["name"] not in known:
            merged["tags"].append(copy.deepcopy(tag))
            known.add(tag["name"])


def add_document(
    merged: Document, service: str, document: Document, owns: Callable[[str], bool]
) -> None:
    """Merge one document (a service's or the gateway's own) into ``merged``."""
    components = document.get("components")
    renames = plan_renames(merged["components"], service, components)
    merge_components(merged["components"], components, renames)
    added = merge_paths(merged, service, document, renames, owns)
    merge_tags(merged, service, document, added)


def merge_documents(
    gateway_document: Document,
    service_documents: Mapping[str, Document],
    unavailable: Sequence[str],
) -> Document:
    """The suite's document: the gateway's own paths, then every service's in order."""
    merged: Document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Bank CRM API",
            "version": (gateway_document.get("info") or {}).get("version", "1.0.0"),
            "description": DESCRIPTION,
        },
        "paths": {},
        "components": {},
        "tags": [],
        "x-unavailable": list(unavailable),
    }
    add_document(merged, GATEWAY, gateway_document, lambda path: True)
    for service, document in service_documents.items():
        add_document(merged, service, document, _routed_to(service))
    return merged


def _routed_to(service: str) -> Callable[[str], bool]:
    def owns(path: str) -> bool:
        return resolve(path) == service

    return owns


def docs_router(settings: GatewaySettings) -> APIRouter:
    """The merged document and the Swagger UI page over it (both public)."""
    router = APIRouter()

    @router.get(OPENAPI_PATH, include_in_schema=False)
    async def suite_openapi(request: Request) -> JSONResponse:
        """The merged OpenAPI document of the suite."""
        documents, unavailable = await fetch_documents(
            get_client(request), settings.upstreams(), settings.probe_timeout_s
        )
        return JSONResponse(merge_documents(request.app.openapi(), documents, unavailable))

    @router.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        """Swagger UI over the merged document."""
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title="Bank CRM API",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    return router

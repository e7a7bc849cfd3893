"""`/api/models`: the semantic models, read from the served registry, written through the store.

Ids are model names (`^[a-z][a-z0-9_]*$`); a name may repeat across categories, so routes
that take an id also take `category` (needed only when the name is ambiguous). Reading
needs `read`, writing `write`, deleting `delete`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from semproxy.admin.auth import CurrentUser, iso, require
from semproxy.admin.store import Change, InvalidModel, ModelStore, StoreError, check_name, issue, relative
from semproxy.errors import ModelError
from semproxy.semantic.load import MAX_FILE_BYTES, validate_dir
from semproxy.semantic.model import SemanticModel
from semproxy.semantic.registry import Registry

router = APIRouter(prefix="/api/models", tags=["models"])
READ, WRITE, DELETE = require("read"), require("write"), require("delete")
CategoryParam = Annotated[
    str | None, Query(max_length=63, description="the model's category, when ambiguous")
]


class ModelBody(BaseModel):
    """A model as a JSON object (`model`) or as YAML text (`yaml`)."""

    category: str = Field(default="production", max_length=63)
    model: dict[str, Any] | None = None
    yaml: str | None = Field(default=None, max_length=MAX_FILE_BYTES)

    def text(self) -> str:
        if self.yaml is not None:
            return self.yaml
        if self.model is not None:
            return yaml.safe_dump(self.model, sort_keys=False, allow_unicode=True)
        raise HTTPException(422, "send the model as `model` (an object) or `yaml` (text)")


class Operation(ModelBody):
    action: Literal["create", "update", "delete"]
    id: str | None = Field(default=None, max_length=63)


class Batch(BaseModel):
    operations: list[Operation] = Field(max_length=100)


def _store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.store
    return store


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.server.registry
    return registry


def _find(request: Request, model_id: str, category: str | None) -> tuple[str, SemanticModel]:
    check_name("model name", model_id)
    registry = _registry(request)
    found = [
        (name, cat.models[model_id])
        for name, cat in sorted(registry.categories.items())
        if model_id in cat.models and category in (None, name)
    ]
    if not found:
        where = f" in category {category!r}" if category else ""
        raise HTTPException(404, f"model {model_id!r} does not exist{where}")
    if len(found) > 1:
        raise HTTPException(409, f"model {model_id!r} is in several categories; pass ?category=")
    return found[0]


def summary(store: ModelStore, category: str, model: SemanticModel) -> dict[str, Any]:
    created, updated = store.times(category, model.name)
    return {
        "id": model.name,
        "name": model.name,
        "category": category,
        "label": model.label,
        "description": model.description,
        "tags": model.tags,
        "file": relative(store.root, str(path)) if (path := store.path_of(category, model.name)) else None,
        "dimensions": [d.name for d in model.dimensions],
        "measures": [m.name for m in model.measures],
        "metrics": [m.name for m in model.metrics],
        "created_at": iso(created) if created else None,
        "updated_at": iso(updated) if updated else None,
    }


def detail(store: ModelStore, category: str, model: SemanticModel) -> dict[str, Any]:
    return {**summary(store, category, model), "definition": model.model_dump(mode="json", exclude_none=True)}


def _written(
    store: ModelStore, category: str, model: SemanticModel, reload_errors: list[ModelError]
) -> dict[str, Any]:
    return {
        **detail(store, category, model),
        "served": not reload_errors,
        "reload_errors": [issue(e) for e in reload_errors],
    }


def _paged(items: list[dict[str, Any]], page: int, page_size: int) -> dict[str, Any]:
    total = len(items)
    return {
        "data": items[(page - 1) * page_size : page * page_size],
        "pagination": {
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": (total + page_size - 1) // page_size,
        },
    }


Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


@router.get("/", dependencies=[READ])
async def list_models(
    request: Request, category: CategoryParam = None, page: Page = 1, page_size: PageSize = 20
) -> dict[str, Any]:
    store, registry = _store(request), _registry(request)
    items = [
        summary(store, name, model)
        for name, cat in sorted(registry.categories.items())
        if category in (None, name)
        for model in sorted(cat.models.values(), key=lambda m: m.name)
    ]
    return _paged(items, page, page_size)


@router.get("/search", dependencies=[READ])
async def search_models(
    request: Request,
    query: Annotated[str | None, Query(max_length=200)] = None,
    category: CategoryParam = None,
    tags: Annotated[str | None, Query(max_length=500, description="comma-separated; all must match")] = None,
    has_metrics: bool | None = None,
    created_after: dt.datetime | None = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    store, registry = _store(request), _registry(request)
    wanted_tags = {t.strip() for t in (tags or "").split(",") if t.strip()}
    after = created_after.replace(tzinfo=created_after.tzinfo or dt.UTC) if created_after else None
    items = []
    for name, cat in sorted(registry.categories.items()):
        if category not in (None, name):
            continue
        for model in sorted(cat.models.values(), key=lambda m: m.name):
            if query and not _mentions(model, query.lower()):
                continue
            if not wanted_tags <= set(model.tags):
                continue
            if has_metrics is not None and bool(model.metrics or model.measures) != has_metrics:
                continue
            item = summary(store, name, model)
            if after and (
                item["created_at"] is None or dt.datetime.fromisoformat(item["created_at"]) <= after
            ):
                continue
            items.append(item)
    return _paged(items, page, page_size)


def _mentions(model: SemanticModel, needle: str) -> bool:
    texts = [model.name, model.description, model.label]
    texts += [text for m in model.metrics for text in (m.name, m.description, m.label)]
    texts += [text for m in model.measures for text in (m.name, m.description, m.label)]
    return any(needle in t.lower() for t in texts if t)


@router.post("/validate", dependencies=[READ])
async def validate_model(request: Request, body: ModelBody | None = None) -> dict[str, Any]:
    """Check a model as its category would be with it, without writing; with no body,
    check every model under the models folder."""
    store = _store(request)
    if body is None or (body.model is None and body.yaml is None):
        errors = [issue(e) for e in validate_dir(store.root)]
        for e in errors:
            e["file"] = relative(store.root, str(e["file"]))
        return {"is_valid": not errors, "errors": errors, "warnings": []}
    try:
        text = body.text()
        name = store.name_in(text)
        store.check([Change(check_name("category", body.category), name, text)])
    except InvalidModel as exc:
        return {"is_valid": False, "errors": [issue(e) for e in exc.errors], "warnings": []}
    return {"is_valid": True, "errors": [], "warnings": []}


@router.post("/reload", dependencies=[WRITE])
async def reload_models(request: Request) -> JSONResponse:
    errors = await request.app.state.server.reload_models()
    registry = _registry(request)
    answer = {
        "status": "failed" if errors else "reloaded",
        "errors": [issue(e) for e in errors],
        "categories": sorted(registry.categories),
        "model_count": sum(len(c.models) for c in registry.categories.values()),
    }
    if errors:
        answer |= {"detail": "the models are invalid; the last good ones keep serving", "status_code": 422}
    return JSONResponse(answer, status_code=422 if errors else 200)


@router.post("/upload", dependencies=[WRITE], status_code=201)
async def upload_model(
    request: Request,
    file: Annotated[UploadFile, File(description="one model as YAML, named <id>.yaml")],
    category: Annotated[str, Form(max_length=63)] = "production",
    overwrite: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    store = _store(request)
    filename = file.filename or ""
    stem, dot, suffix = filename.rpartition(".")
    if "/" in filename or "\\" in filename or not dot or f".{suffix}" not in (".yaml", ".yml"):
        raise HTTPException(400, "the file name must be <model id>.yaml, without folders")
    check_name("model name", stem)
    limit = request.app.state.server.settings.max_upload_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise HTTPException(413, f"the file is larger than {limit} bytes")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "the file is not UTF-8 text") from None
    if store.name_in(text) != stem:
        raise InvalidModel(
            "the model is invalid", [ModelError(filename, 1, "name", f"must be {stem!r}, as the file name")]
        )
    change = Change(check_name("category", category), stem, text, None if overwrite else False)
    models, errors = await store.apply([change])
    return _written(store, category, models[(category, stem)], errors)


@router.post("/batch")
async def batch(request: Request, body: Batch, user: CurrentUser) -> dict[str, Any]:
    """Apply each operation in order, each checked, written and reloaded on its own, so one
    failure does not hold back the others; creating and updating need `write`, deleting `delete`."""
    store = _store(request)
    permissions = user.permissions(request.app.state.server.settings)
    results = []
    for i, op in enumerate(body.operations):
        needed = "delete" if op.action == "delete" else "write"
        try:
            if needed not in permissions:
                raise HTTPException(403, f"this needs the {needed!r} permission")
            results.append({"index": i, "action": op.action, **await _one(store, op)})
        except StoreError as exc:
            results.append(_failed(i, op, exc.status, exc.message, [issue(e) for e in exc.errors]))
        except HTTPException as exc:
            results.append(_failed(i, op, exc.status_code, str(exc.detail), []))
    ok = sum(r["success"] for r in results)
    return {
        "results": results,
        "summary": {"total": len(results), "succeeded": ok, "failed": len(results) - ok},
    }


def _failed(i: int, op: Operation, status: int, message: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"index": i, "action": op.action, "id": op.id, "success": False, "status_code": status,
            "detail": message, "errors": errors}  # fmt: skip


async def _one(store: ModelStore, op: Operation) -> dict[str, Any]:
    if op.action == "delete":
        if not op.id:
            raise HTTPException(422, "a delete needs the model's id")
        await store.apply([Change(op.category, op.id, None, True)])
        return {"id": op.id, "success": True, "status_code": 200}
    text = op.text()
    name = store.name_in(text)
    if op.id and op.id != name:
        raise HTTPException(422, f"the model's name {name!r} differs from id {op.id!r}")
    _, errors = await store.apply([Change(op.category, name, text, op.action == "update")])
    return {"id": name, "success": True, "status_code": 201 if op.action == "create" else 200,
            "served": not errors}  # fmt: skip


@router.get("/{model_id}", dependencies=[READ])
async def get_model(request: Request, model_id: str, category: CategoryParam = None) -> dict[str, Any]:
    category_name, model = _find(request, model_id, category)
    return detail(_store(request), category_name, model)


@router.get("/{model_id}/download", dependencies=[READ])
async def download_model(request: Request, model_id: str, category: CategoryParam = None) -> Response:
    category_name, _ = _find(request, model_id, category)
    text = _store(request).read(category_name, model_id)
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{model_id}.yaml"'},
    )


@router.post("/", dependencies=[WRITE], status_code=201)
async def create_model(request: Request, body: ModelBody) -> dict[str, Any]:
    store = _store(request)
    text = body.text()
    name = store.name_in(text)
    models, errors = await store.apply([Change(check_name("category", body.category), name, text, False)])
    return _written(store, body.category, models[(body.category, name)], errors)


@router.put("/{model_id}", dependencies=[WRITE])
async def update_model(request: Request, model_id: str, body: ModelBody) -> dict[str, Any]:
    store = _store(request)
    text = body.text()
    if store.name_in(text) != check_name("model name", model_id):
        raise HTTPException(422, f"the model's name must be {model_id!r}, its id")
    models, errors = await store.apply([Change(check_name("category", body.category), model_id, text, True)])
    return _written(store, body.category, models[(body.category, model_id)], errors)


@router.delete("/{model_id}", dependencies=[DELETE])
async def delete_model(request: Request, model_id: str, category: CategoryParam = None) -> dict[str, Any]:
    store = _store(request)
    name = category or "production"
    _, errors = await store.apply(
        [Change(check_name("category", name), check_name("model name", model_id), None, True)]
    )
    return {
        "deleted": model_id,
        "category": name,
        "served": not errors,
        "reload_errors": [issue(e) for e in errors],
    }

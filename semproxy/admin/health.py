"""Health: liveness, the engine's round trip, and readiness with each check's state.

GET /health                 always 200 while the process serves HTTP
GET /api/health/            status, service, version, environment
GET /api/health/engine      time a SELECT 1 on the engine; 503 with the reason (alias /databricks)
GET /api/health/ready       engine, catalog server, model store, configuration: 200 or 503
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from semproxy import __version__
from semproxy.admin.store import issue, relative
from semproxy.config import DEFAULT_SECRET_KEY

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 5.0


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


@router.get("/api/health/")
async def api_health(request: Request) -> dict[str, str]:
    return {
        "status": "healthy",
        "service": "semproxy",
        "version": __version__,
        "environment": request.app.state.server.settings.environment,
    }


async def _engine_check(request: Request) -> dict[str, Any]:
    engine = request.app.state.server.engine
    started = time.perf_counter()
    try:
        await asyncio.wait_for(engine.health(), CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, and says why
        return {"status": "error", "engine": engine.dialect, "detail": str(exc) or type(exc).__name__}
    ms = (time.perf_counter() - started) * 1000
    return {"status": "ok", "engine": engine.dialect, "response_time_ms": round(ms, 3)}


@router.get("/api/health/engine")
@router.get("/api/health/databricks")
async def engine_health(request: Request) -> JSONResponse:
    check = await _engine_check(request)
    return JSONResponse(check, status_code=200 if check["status"] == "ok" else 503)


async def _catalog_check(request: Request) -> dict[str, Any]:
    catalog = request.app.state.server.catalog
    try:
        conn = await asyncio.wait_for(catalog.connect_admin(), CHECK_TIMEOUT_S)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except Exception as exc:  # noqa: BLE001
        return {"status": "error", "detail": str(exc) or type(exc).__name__}
    return {"status": "ok", "version": catalog.version}


def _store_check(request: Request) -> dict[str, Any]:
    server = request.app.state.server
    root = server.settings.models
    if server.model_errors:
        errors = [issue(e) | {"file": relative(root, e.file)} for e in server.model_errors]
        return {"status": "error", "detail": "invalid models on disk; the last good ones are serving",
                "errors": errors}  # fmt: skip
    if not root.is_dir() or not os.access(root, os.W_OK):
        return {"status": "error", "detail": f"the models folder {root} is missing or not writable"}
    return {"status": "ok", "models": sum(len(c.models) for c in server.registry.categories.values())}


def _config_check(request: Request) -> dict[str, Any]:
    settings = request.app.state.server.settings
    if settings.secret_key == DEFAULT_SECRET_KEY:
        return {"status": "ok", "warning": "the default secret key is in use (allowed in development only)"}
    return {"status": "ok"}


@router.get("/api/health/ready")
async def ready(request: Request) -> JSONResponse:
    engine, catalog = await asyncio.gather(_engine_check(request), _catalog_check(request))
    checks = {
        "engine": engine,
        "catalog": catalog,
        "models": _store_check(request),
        "configuration": _config_check(request),
    }
    ok = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
    )

"""The HTTP port: health now; model admin and the REST API of the backend plan later.

Served by uvicorn on the same event loop as the Postgres listener, sharing its Server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from semproxy import __version__

if TYPE_CHECKING:
    from semproxy.server import Server

ENGINE_TIMEOUT_S = 5.0


def create_app(server: Server) -> FastAPI:
    app = FastAPI(title="semproxy", version=__version__)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.get("/api/health/")
    async def api_health() -> dict[str, str]:
        return {
            "status": "healthy",
            "service": "semproxy",
            "version": __version__,
            "environment": server.settings.environment,
        }

    @app.get("/api/health/ready")
    async def ready() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(server.engine.health(), ENGINE_TIMEOUT_S)
            checks["engine"] = {"status": "ok"}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready, and says why
            checks["engine"] = {"status": "error", "detail": str(exc) or type(exc).__name__}
        ok = all(c["status"] == "ok" for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
        )

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's lifespan owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(server: Server, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        create_app(server),
        host=server.settings.host,
        port=server.settings.http_port,
        log_level="warning",
        lifespan="off",
    )
    http = _QuietServer(config)
    task = asyncio.create_task(http.serve())
    await stop.wait()
    http.should_exit = True
    await task

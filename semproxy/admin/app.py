"""The HTTP port: health, sign-in, model admin, metadata and metric queries (the REST API of
the backend plan), with OpenAPI docs at /docs and /redoc.

Served by uvicorn on the same event loop as the Postgres listener, sharing its Server: one
registry, one compiler, one engine. Conventions on every route:

- one error shape: `{"detail": str, "status_code": int, "timestamp": ISO 8601 UTC}`, plus
  `errors` (each with file, line, field, message for models) where there are several;
- `X-Process-Time` (seconds) on every response; CORS from `cors_origins`;
- request bodies over `max_upload_bytes` (plus room for multipart framing) are refused (413).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semproxy import __version__
from semproxy.admin import auth, health, metadata, models, queries
from semproxy.admin.metadata import MetadataCache
from semproxy.admin.store import ModelStore, StoreError, issue
from semproxy.admin.watch import ModelWatcher
from semproxy.errors import (
    EngineError,
    InvalidAuthorization,
    InvalidPassword,
    ModelError,
    QueryCanceled,
    SemproxyError,
)

if TYPE_CHECKING:
    from semproxy.server import Server

log = structlog.get_logger("semproxy.admin")
MULTIPART_ROOM = 64 * 1024


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    moment = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return {"detail": detail, "status_code": status, "timestamp": moment, **extra}


def _error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(status, detail, **extra), status_code=status, headers=headers)


def _status_of(exc: SemproxyError) -> int:
    if isinstance(exc, InvalidPassword | InvalidAuthorization):
        return 401
    if isinstance(exc, ModelError):
        return 422
    if isinstance(exc, QueryCanceled):
        return 504
    if isinstance(exc, EngineError):
        return 502
    return 400


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg"))} for e in exc.errors()
        ]
        return _error(422, "the request is invalid", errors=errors)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return _error(exc.status, exc.message, errors=[issue(e) for e in exc.errors])

    @app.exception_handler(SemproxyError)
    async def semproxy_error(_: Request, exc: SemproxyError) -> JSONResponse:
        status = _status_of(exc)
        body = error_body(status, exc.message, sqlstate=exc.sqlstate)
        body |= {k: v for k, v in (("hint", exc.hint), ("position", exc.position)) if v is not None}
        return JSONResponse(body, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on the HTTP port", error=type(exc).__name__)
        return _error(500, "internal error")


class ProcessTime:
    """Adds `X-Process-Time: <seconds>` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = f"{time.perf_counter() - started:.6f}"
                message["headers"] = [*message.get("headers", []), (b"x-process-time", elapsed.encode())]
            await send(message)

        await self.app(scope, receive, timed)


class BodyLimit:
    """Refuses request bodies over `limit` bytes, by Content-Length or as they stream in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, f"the request body is larger than {self.limit} bytes")(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(server: Server, watcher: ModelWatcher | None = None) -> FastAPI:
    settings = server.settings
    app = FastAPI(
        title="semproxy",
        version=__version__,
        description="Model admin, sign-in, metadata and metric queries of the semproxy semantic layer.",
    )
    app.state.server = server
    app.state.store = ModelStore(settings.models, server.reload_models)
    app.state.metadata_cache = MetadataCache(settings.metadata_cache_ttl_minutes * 60)
    if watcher is not None:
        app.state.store.after_write.append(watcher.settle)
    _install_error_handlers(app)
    for module in (health, auth, models, metadata, queries):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + MULTIPART_ROOM)
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials="*" not in origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Process-Time"],
        )
    app.add_middleware(ProcessTime)
    return app


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process's lifespan owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(server: Server, stop: asyncio.Event) -> None:
    """Serve the HTTP port, and watch the models folder, until `stop` is set."""
    watcher = ModelWatcher(server.settings.models, server.reload_models)
    config = uvicorn.Config(
        create_app(server, watcher),
        host=server.settings.host,
        port=server.settings.http_port,
        log_level="warning",
        lifespan="off",
        access_log=False,  # the access log would carry query strings; we log what we choose
    )
    http = _QuietServer(config)
    tasks = [asyncio.create_task(http.serve()), asyncio.create_task(watcher.run(stop))]
    await stop.wait()
    http.should_exit = True
    await asyncio.gather(*tasks)

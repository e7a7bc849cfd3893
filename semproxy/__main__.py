"""Command line: serve, demo-data, validate, compile."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import structlog

from semproxy.config import AUTH_METHODS, Settings
from semproxy.errors import ConfigError, SemproxyError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semproxy", description="A semantic layer that speaks PostgreSQL.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the models over the Postgres protocol and HTTP")
    serve.add_argument("--models", help="models directory (SEMPROXY_MODELS, default semantic-models)")
    serve.add_argument(
        "--engine", choices=["duckdb", "postgres", "spark", "databricks"], help="the warehouse (SEMPROXY_ENGINE)"
    )
    serve.add_argument(
        "--database",
        help="the engine's target: a DuckDB file (default data/demo.duckdb), a postgresql:// DSN or an "
        "sc://host:port Spark Connect URL; Databricks reads DATABRICKS_HOST and DATABRICKS_HTTP_PATH",
    )
    serve.add_argument("--host", help="listen address (SEMPROXY_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="Postgres port (SEMPROXY_PORT, default 5433)")
    serve.add_argument("--http-port", type=int, help="HTTP port (SEMPROXY_HTTP_PORT, default 8080)")
    serve.add_argument("--state-dir", help="where the catalog server keeps its data (SEMPROXY_STATE_DIR)")
    serve.add_argument(
        "--auth",
        choices=AUTH_METHODS,
        help="Postgres auth method (SEMPROXY_AUTH; default scram-sha-256 with --users, else trust on "
        "loopback; jwt: the password is a token of POST /api/auth/login; databricks: a Databricks token)",
    )
    serve.add_argument("--users", help="users file written by `semproxy users add` (SEMPROXY_USERS)")
    serve.add_argument("--tls-cert", help="TLS certificate (PEM) for SSLRequest (SEMPROXY_TLS_CERT)")
    serve.add_argument("--tls-key", help="its private key (PEM) (SEMPROXY_TLS_KEY)")
    serve.add_argument(
        "--require-tls", action="store_true", default=None, help="refuse connections without TLS"
    )
    serve.add_argument("--log-level", help="debug, info, warning (SEMPROXY_LOG_LEVEL)")

    users = sub.add_parser("users", help="manage the users file of the Postgres port")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add or replace a user; the password is read from stdin")
    add.add_argument("--users", required=True, help="the users file (created if missing)")
    add.add_argument("name")

    data = sub.add_parser("demo-data", help="generate the demo DuckDB database")
    data.add_argument("--database", default="data/demo.duckdb")
    data.add_argument("--orders", type=int, default=100_000)
    data.add_argument("--force", action="store_true", help="regenerate even if the file exists")

    validate = sub.add_parser("validate", help="check a models directory; exit 1 on any error")
    validate.add_argument("--models", default=None)

    compile_ = sub.add_parser("compile", help="print the warehouse SQL a query compiles to")
    compile_.add_argument("sql")
    compile_.add_argument("--models", default=None)
    compile_.add_argument("--dialect", default="duckdb", choices=["duckdb", "databricks", "spark", "postgres"])
    compile_.add_argument("--search-path", default="production")
    return parser


def _configure_logging(level: str) -> None:
    numeric = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _serve(args: argparse.Namespace) -> int:
    from semproxy.engines import create_engine
    from semproxy.semantic.registry import Registry
    from semproxy.server import serve

    flags: dict[str, Any] = {
        "models": args.models,
        "database": args.database,
        "engine": args.engine,
        "host": args.host,
        "port": args.port,
        "http_port": args.http_port,
        "state_dir": args.state_dir,
        "auth": args.auth,
        "users": args.users,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "require_tls": args.require_tls,
        "log_level": args.log_level,
    }
    settings = Settings.load(flags)
    _configure_logging(settings.log_level)
    registry = Registry.load(settings.models)
    engine = create_engine(settings)
    try:
        import uvloop

        uvloop.run(serve(settings, registry, engine))
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept for odd platforms
        asyncio.run(serve(settings, registry, engine))
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from semproxy.demo import generate

    path = Path(args.database)
    if path.exists() and not args.force:
        print(f"{path} exists; use --force to regenerate")
        return 0
    generate(path, orders=args.orders)
    print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from semproxy.semantic.load import validate_dir

    root = Path(args.models or Settings.load().models)
    errors = validate_dir(root)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {root}", file=sys.stderr)
        return 1
    print(f"{root}: ok")
    return 0


def _compile(args: argparse.Namespace) -> int:
    from semproxy.plan.compile import compile_query
    from semproxy.semantic.registry import Registry

    registry = Registry.load(Path(args.models or Settings.load().models))
    search_path = [s.strip() for s in args.search_path.split(",")]
    print(compile_query(args.sql, registry, search_path, args.dialect).sql)
    return 0


def _users(args: argparse.Namespace) -> int:
    from semproxy.auth.users import UsersFile

    # one line from stdin, so `echo secret | semproxy users add` and a prompt-less pipe both work
    password = sys.stdin.readline().rstrip("\r\n")
    UsersFile(Path(args.users)).add(args.name, password)
    print(f"{args.name} written to {args.users}", file=sys.stderr)
    return 0


COMMANDS = {
    "serve": _serve,
    "users": _users,
    "demo-data": _demo_data,
    "validate": _validate,
    "compile": _compile,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"semproxy: {exc.message}", file=sys.stderr)
        return 2
    except SemproxyError as exc:
        print(f"ERROR: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"HINT: {exc.hint}", file=sys.stderr)
        return 1
    except Exception as exc:
        from semproxy.semantic.load import ModelErrors

        if isinstance(exc, ModelErrors):
            for error in exc.errors:
                print(error, file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())

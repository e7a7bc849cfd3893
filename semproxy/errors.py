"""The SemproxyError tree. Each class carries its SQLSTATE, so the session turns any
SemproxyError into a Postgres ErrorResponse with no mapping table.

    SemproxyError (XX000)
    ├── ProtocolViolation (08P01)         malformed or out-of-order message: ends that connection
    ├── FeatureNotSupported (0A000)
    ├── ReadOnlyViolation (25006)         writes never reach the warehouse
    ├── SemanticError (42000)
    │   ├── GroupingError (42803)         metric outside MEASURE(), metric in WHERE...
    │   ├── UndefinedColumn (42703)
    │   ├── UndefinedTable (42P01)
    │   ├── SyntaxError_ (42601)
    │   └── InvalidParameterValue (22023)
    ├── EngineError (58000)               the warehouse failed
    ├── QueryCanceled (57014)
    └── ModelError                        an invalid model file: file, line, field
"""

from __future__ import annotations


class SemproxyError(Exception):
    sqlstate = "XX000"
    severity = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        detail: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail
        self.position = position  # 1-based character offset into the client's query text


class ProtocolViolation(SemproxyError):
    sqlstate = "08P01"
    severity = "FATAL"


class FeatureNotSupported(SemproxyError):
    sqlstate = "0A000"


class ReadOnlyViolation(SemproxyError):
    sqlstate = "25006"


class InFailedTransaction(SemproxyError):
    sqlstate = "25P02"


class SemanticError(SemproxyError):
    sqlstate = "42000"


class GroupingError(SemanticError):
    sqlstate = "42803"


class UndefinedColumn(SemanticError):
    sqlstate = "42703"


class UndefinedTable(SemanticError):
    sqlstate = "42P01"


class UndefinedFunction(SemanticError):
    sqlstate = "42883"


class SyntaxError_(SemanticError):
    sqlstate = "42601"


class AmbiguousColumn(SemanticError):
    sqlstate = "42702"


class InvalidParameterValue(SemanticError):
    sqlstate = "22023"


class EngineError(SemproxyError):
    sqlstate = "58000"


class EngineUnavailable(EngineError):
    sqlstate = "08006"


class QueryCanceled(SemproxyError):
    sqlstate = "57014"


class InvalidAuthorization(SemproxyError):
    sqlstate = "28000"
    severity = "FATAL"


class InvalidPassword(SemproxyError):
    sqlstate = "28P01"
    severity = "FATAL"


class ConfigError(SemproxyError):
    """A setting that makes serving unsafe or impossible; the process refuses to start."""


class ModelError(SemproxyError):
    """One problem in one model file. `str()` reads `file:line: field: message`."""

    sqlstate = "42P17"

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}")


class TooManyConnections(SemproxyError):
    sqlstate = "53300"
    severity = "FATAL"


class DuplicatePreparedStatement(SemproxyError):
    sqlstate = "42P05"


class InvalidStatementName(SemproxyError):
    sqlstate = "26000"


class InvalidCursorName(SemproxyError):
    sqlstate = "34000"


class DuplicateCursor(SemproxyError):
    sqlstate = "42P03"


class NoActiveTransaction(SemproxyError):
    sqlstate = "25P01"


class IdleSessionTimeout(SemproxyError):
    sqlstate = "57P05"
    severity = "FATAL"


class InternalError(SemproxyError):
    """A bug: the session ends with this, the server keeps serving."""

    severity = "FATAL"

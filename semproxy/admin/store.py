"""The model store: the YAML files under the models folder, written safely.

Every change is checked as the whole category would be after it (a temporary copy of the
category with the change applied, loaded by the same loader that serves), then written
atomically (a temporary file in the same folder, fsync, rename), with the previous version
kept under `backups/<category>/<name>.<UTC timestamp>.yaml`, then the server reloads so
registry, catalog relations and plan cache swap in one step. One writer at a time.

Names are ids: a category and a model name each match `^[a-z][a-z0-9_]*$`, so no path
built from them can leave the models folder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from semproxy.errors import ModelError
from semproxy.semantic.load import RESERVED_SCHEMA, ModelErrors, load_registry, read_yaml
from semproxy.semantic.model import NAME_RE, SemanticModel
from semproxy.semantic.registry import NEVER_SERVED

SUFFIXES = (".yaml", ".yml")
BACKUPS = "backups"
STAMP = "%Y%m%dT%H%M%S%fZ"


class StoreError(Exception):
    status = 400

    def __init__(self, message: str, errors: list[ModelError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class UnsafeName(StoreError):
    status = 400


class ModelNotFound(StoreError):
    status = 404


class ModelExists(StoreError):
    status = 409


class InvalidModel(StoreError):
    status = 422


@dataclass(frozen=True)
class Change:
    """One write: `text` is the new YAML of `category/name`, or None to delete it."""

    category: str
    name: str
    text: str | None
    must_exist: bool | None = None  # True: update, False: create, None: either


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name) or len(name) > 63:
        raise UnsafeName(f"{kind} {name[:80]!r} must match ^[a-z][a-z0-9_]*$ (at most 63 characters)")
    if kind == "category" and (name in NEVER_SERVED or RESERVED_SCHEMA.match(name)):
        raise UnsafeName(f"{name!r} cannot be a category: it is never served")
    return name


def relative(root: Path, file: str) -> str:
    """`file` as `category/name.yaml` when it lies under `root`."""
    try:
        return Path(file).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file


def issue(error: ModelError) -> dict[str, object]:
    """A ModelError as JSON: file, line, field, message."""
    where = f"{error.file}:{error.line}" if error.line else error.file
    prefix = f"{where}: {error.field}: "
    text = str(error)
    return {
        "file": error.file,
        "line": error.line,
        "field": error.field,
        "message": text[len(prefix) :] if text.startswith(prefix) else text,
    }


class ModelStore:
    def __init__(self, root: Path, reload: Callable[[], Awaitable[list[ModelError]]]) -> None:
        self.root = root
        self.reload = reload
        self.lock = asyncio.Lock()
        self.after_write: list[Callable[[], None]] = []  # e.g. the file watcher's new baseline

    # reading ---------------------------------------------------------------------------
    def path_of(self, category: str, name: str) -> Path | None:
        """The file of an existing model, else None."""
        folder = self.root / check_name("category", category)
        for suffix in SUFFIXES:
            path = folder / f"{check_name('model name', name)}{suffix}"
            if path.is_file() and path.resolve().parent == folder.resolve():
                return path
        return None

    def read(self, category: str, name: str) -> str:
        path = self.path_of(category, name)
        if path is None:
            raise ModelNotFound(f"model {category}.{name} does not exist")
        return path.read_text(encoding="utf-8")

    def times(self, category: str, name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(created, updated): the first backup or the file's time, and the file's time."""
        path = self.path_of(category, name)
        if path is None:
            return None, None
        updated = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        stamps = sorted(self.backups(category, name))
        created = dt.datetime.strptime(stamps[0], STAMP).replace(tzinfo=dt.UTC) if stamps else updated
        return min(created, updated), updated

    def backups(self, category: str, name: str) -> list[str]:
        folder = self.root / BACKUPS / category
        prefix = f"{name}."
        return [p.name[len(prefix) : -5] for p in folder.glob(f"{name}.*.yaml")] if folder.is_dir() else []

    def name_in(self, text: str) -> str:
        """The `name:` of a YAML document, read by the hardened loader."""
        refuse_unreadable(text, "(upload)")
        with _scratch() as tmp:
            path = tmp / "model.yaml"
            path.write_text(text, encoding="utf-8")
            try:
                data = read_yaml(path)
            except ModelErrors as exc:
                raise InvalidModel("the model is invalid", _relabel(exc.errors, tmp, "(upload)")) from None
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str):
            raise InvalidModel(
                "the model is invalid", [ModelError("(upload)", 1, "name", "this field is required")]
            )
        return check_name("model name", name)

    # writing ---------------------------------------------------------------------------
    def check(self, changes: list[Change]) -> dict[tuple[str, str], SemanticModel]:
        """Validate the categories as they would be after `changes`; InvalidModel with every
        issue otherwise. Returns the new models by (category, name)."""
        for change in changes:
            check_name("category", change.category)
            check_name("model name", change.name)
            exists = self.path_of(change.category, change.name) is not None
            if change.must_exist is True and not exists:
                raise ModelNotFound(f"model {change.category}.{change.name} does not exist")
            if change.must_exist is False and exists:
                raise ModelExists(f"model {change.category}.{change.name} already exists")
        for change in changes:
            if change.text is not None:
                refuse_unreadable(change.text, f"{change.category}/{change.name}.yaml")
        categories = {c.category for c in changes}
        with _scratch() as tmp:
            for category in categories:
                _copy_category(self.root / category, tmp / category)
            for change in changes:
                for suffix in SUFFIXES:
                    (tmp / change.category / f"{change.name}{suffix}").unlink(missing_ok=True)
                if change.text is not None:
                    (tmp / change.category / f"{change.name}.yaml").write_text(change.text, encoding="utf-8")
            try:
                registry = load_registry(tmp)
            except ModelErrors as exc:
                raise InvalidModel(
                    "the change leaves its category invalid", _relabel(exc.errors, tmp)
                ) from None
            written = {}
            for change in changes:
                if change.text is None:
                    continue
                model = registry.model(change.category, change.name)
                if model is None:  # the file holds another name
                    file = f"{change.category}/{change.name}.yaml"
                    raise InvalidModel(
                        "the model is invalid",
                        [
                            ModelError(
                                file, 1, "name", f"must be {change.name!r}, the model's id and file name"
                            )
                        ],
                    )
                written[(change.category, change.name)] = model
            return written

    async def apply(
        self, changes: list[Change]
    ) -> tuple[dict[tuple[str, str], SemanticModel], list[ModelError]]:
        """Check, back up, write and reload, as one step among writers. Returns the new
        models and the reload's errors (of files changed on disk meanwhile; [] normally)."""
        async with self.lock:
            models = await asyncio.to_thread(self.check, changes)
            await asyncio.to_thread(self._write_all, changes)
            for hook in self.after_write:
                hook()
            return models, await self.reload()

    def _write_all(self, changes: list[Change]) -> None:
        for change in changes:
            old = self.path_of(change.category, change.name)
            if old is not None:
                self._backup(change.category, change.name, old)
            if change.text is None:
                if old is not None:
                    old.unlink()
                continue
            folder = self.root / change.category
            folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(folder / f"{change.name}.yaml", change.text)
            if old is not None and old.suffix != ".yaml":
                old.unlink()  # a .yml replaced by the .yaml just written

    def _backup(self, category: str, name: str, path: Path) -> None:
        folder = self.root / BACKUPS / category
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime(STAMP)
        _atomic_write(folder / f"{name}.{stamp}.yaml", path.read_text(encoding="utf-8"))


def refuse_unreadable(text: str, file: str) -> None:
    """InvalidModel for characters YAML does not allow (NUL, other control characters)."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        message = f"character #x{ord(found.group()):04x} is not allowed in YAML"
        raise InvalidModel("the model is invalid", [ModelError(file, line, "(yaml)", message)])


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _copy_category(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True)
    if src.is_dir():
        for path in src.iterdir():
            if path.suffix in SUFFIXES and path.is_file():
                shutil.copyfile(path, dst / path.name)


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="semproxy-models-") as tmp:
        yield Path(tmp)


def _relabel(errors: list[ModelError], tmp: Path, single: str | None = None) -> list[ModelError]:
    """Errors found in the scratch copy, named by the file they will be (`production/x.yaml`)."""
    out = []
    for error in errors:
        file = single or relative(tmp, error.file)
        message = str(issue(error)["message"])
        out.append(ModelError(file, error.line, error.field, message))
    return out

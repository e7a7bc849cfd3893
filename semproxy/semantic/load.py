"""YAML files -> validated semantic models, each node remembering its file and line.

Layout under the models root (see ../shared/spec/semantic-models.md):

- `production/`, `staging/`, `development/` are categories, and so is any other
  folder whose name is a valid schema name (`^[a-z][a-z0-9_]*$`, not `pg_*` nor
  `information_schema`, which Postgres owns). A folder with any other name is an error,
  so a model is never silently left unserved.
- `templates/`, `backups/` and hidden folders are never served; files at the root are
  ignored.
- Every `*.yaml` / `*.yml` directly inside a category folder is one model.

The YAML reader is hardened: files over 1 MiB, documents nested deeper than 32, with more
than 50 aliases or expanding to more than 100,000 nodes (a billion-laughs document),
and duplicate keys are refused with an error naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from semproxy.errors import ModelError
from semproxy.semantic.model import NAME_RE, SemanticModel, Source
from semproxy.semantic.registry import NEVER_SERVED, Category, Registry

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_ALIASES = 50
MAX_EXPANDED_NODES = 100_000
RESERVED_SCHEMA = re.compile(r"^(pg_.*|information_schema)$")


class ModelErrors(Exception):
    """Every problem found in a set of model files, in file and line order."""

    def __init__(self, errors: list[ModelError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line or 0, e.field))
        super().__init__("\n".join(str(e) for e in self.errors))


class LineDict(dict[Any, Any]):
    """A YAML mapping with the line of the mapping and of each of its keys (1-based)."""

    line: int
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A YAML sequence with the line of the sequence and of each item (1-based)."""

    line: int
    item_lines: list[int]


class _YamlRefused(yaml.YAMLError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _line(item: yaml.Node | yaml.Event) -> int:
    return item.start_mark.line + 1 if item.start_mark else 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and many aliases, and builds LineDict/LineList."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _YamlRefused(_line(event), f"more than {MAX_ALIASES} aliases")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _YamlRefused(_line(event), f"nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise _YamlRefused(line, "a mapping key must be a plain value")
        if key in data.key_lines:
            raise _YamlRefused(line, f"duplicate key {key!r} (first on line {data.key_lines[key]})")
        data.key_lines[key] = line
        data[key] = loader.construct_object(value_node, deep=True)


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [child.start_mark.line + 1 for child in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past MAX_EXPANDED_NODES, or that refers to itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _YamlRefused(node.start_mark.line + 1, "an alias refers to the node that contains it")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_EXPANDED_NODES:
            raise _YamlRefused(
                node.start_mark.line + 1, f"aliases expand the document past {MAX_EXPANDED_NODES} nodes"
            )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def read_yaml(path: Path) -> Any:
    """The document in `path` with LineDict/LineList containers; ModelErrors if refused."""
    file = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelErrors([ModelError(file, None, "(file)", f"larger than {MAX_FILE_BYTES} bytes")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelErrors([ModelError(file, None, "(file)", f"cannot read: {exc}")]) from exc
    loader: _LineLoader | None = None
    try:
        loader = _LineLoader(text)  # the reader refuses control characters here, as a YAMLError
        node = loader.get_single_node()
        if node is None:
            raise ModelErrors([ModelError(file, 1, "(file)", "the file is empty")])
        _check_expansion(node)
        return loader.construct_document(node)
    except _YamlRefused as exc:
        raise ModelErrors([ModelError(file, exc.line, "(yaml)", exc.message)]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ModelErrors([ModelError(file, line, "(yaml)", f"invalid YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise ModelErrors([ModelError(file, None, "(yaml)", f"invalid YAML: {exc}")]) from exc
    finally:
        if loader is not None:
            loader.dispose()


# pydantic errors -> file, line, field -------------------------------------------------


def _locate(data: Any, loc: tuple[int | str, ...], missing: bool) -> tuple[str, int | None]:
    """Follow pydantic's `loc` through the YAML data: the dotted field path and its line.

    Union members add their type name to `loc` (`'MetricInput'`); those are skipped."""
    path = ""
    line = getattr(data, "line", None)
    current = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(current, LineList) and isinstance(part, int) and part < len(current):
            path += f"[{part}]"
            line = current.item_lines[part]
            current = current[part]
        elif isinstance(current, LineDict) and part in current:
            path += f".{part}" if path else str(part)
            line = current.key_lines[part]
            current = current[part]
        elif last and missing:
            path += f".{part}" if path else str(part)
    return path or "(model)", line


def _pydantic_errors(file: str, data: Any, exc: ValidationError) -> list[ModelError]:
    messages: dict[str, tuple[int | None, list[str]]] = {}
    for err in exc.errors(include_url=False):
        field, line = _locate(data, tuple(err["loc"]), err["type"] == "missing")
        msg = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(err["input"], dict | list):
            msg += f", got {err['input']!r}"
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling and indentation)"
        elif err["type"] == "missing":
            msg = "this field is required"
        messages.setdefault(field, (line, []))[1].append(msg)
    # A union reports one error per member; keep the most specific, deepest ones.
    fields = list(messages)
    errors = []
    for field, (line, msgs) in messages.items():
        if any(other.startswith(field + ".") or other.startswith(field + "[") for other in fields):
            continue
        errors.append(ModelError(file, line, field, " or ".join(dict.fromkeys(msgs))))
    return errors


def _attach_sources(node: BaseModel, data: LineDict, file: str, line: int) -> None:
    """Set `source` on `node` and its children; a node's line is that of the key or list
    item holding it, where a reader looks first."""
    fields = {str(k): key_line for k, key_line in data.key_lines.items()}
    for key, value in data.items():
        if isinstance(value, LineList):
            fields.update({f"{key}[{i}]": item_line for i, item_line in enumerate(value.item_lines)})
    object.__setattr__(node, "source", Source(file=file, line=line, fields=fields))
    for name in type(node).model_fields:
        child, raw = getattr(node, name), data.get(name)
        if isinstance(child, BaseModel) and isinstance(raw, LineDict):
            _attach_sources(child, raw, file, data.key_lines[name])
        elif isinstance(child, list) and isinstance(raw, LineList):
            for item, raw_item, item_line in zip(child, raw, raw.item_lines, strict=False):
                if isinstance(item, BaseModel) and isinstance(raw_item, LineDict):
                    _attach_sources(item, raw_item, file, item_line)


def _parse_model(path: Path) -> SemanticModel:
    file = str(path)
    data = read_yaml(path)
    if not isinstance(data, LineDict):
        raise ModelErrors([ModelError(file, 1, "(model)", "a model file must be a mapping (name: ..., model: ...)")])
    try:
        model = SemanticModel.model_validate(data)
    except ValidationError as exc:
        raise ModelErrors(_pydantic_errors(file, data, exc)) from exc
    _attach_sources(model, data, file, data.line)
    return model


# files -> models -> registry ---------------------------------------------------------


def load_model_file(path: Path, category: str) -> SemanticModel:
    """Read one model file and check the rules that need no other model of `category`.

    Raises ModelErrors listing every problem."""
    from semproxy.semantic.validate import LOCAL_RULES, run_rules

    model = _parse_model(path)
    errors = run_rules(Category(category, {model.name: model}), LOCAL_RULES)
    if errors:
        raise ModelErrors(errors)
    return model


def _category_dirs(root: Path) -> tuple[list[Path], list[ModelError]]:
    dirs, errors = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if sub.name.startswith(".") or sub.name in NEVER_SERVED:
            continue
        if NAME_RE.match(sub.name) and not RESERVED_SCHEMA.match(sub.name):
            dirs.append(sub)
        else:
            errors.append(
                ModelError(
                    str(sub), None, "(folder)",
                    "a category folder name must match ^[a-z][a-z0-9_]*$ and not be pg_* or "
                    "information_schema; rename it, or move it under templates/",
                )
            )
    return dirs, errors


def _load(root: Path) -> tuple[dict[str, Category], list[ModelError]]:
    from semproxy.semantic.validate import RULES, duplicate_model_names, run_rules

    if not root.is_dir():
        return {}, [ModelError(str(root), None, "(folder)", "the models folder does not exist")]
    dirs, errors = _category_dirs(root)
    categories = {}
    for folder in dirs:
        parsed: list[SemanticModel] = []
        for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
            try:
                parsed.append(_parse_model(path))
            except ModelErrors as exc:
                errors.extend(exc.errors)
        errors.extend(duplicate_model_names(parsed))
        models: dict[str, SemanticModel] = {}
        for model in parsed:
            models.setdefault(model.name, model)
        categories[folder.name] = Category(folder.name, models)
        errors.extend(run_rules(categories[folder.name], RULES))
    return categories, errors


def load_registry(root: Path) -> Registry:
    """Every served category under `root`, validated; ModelErrors lists all problems found."""
    categories, errors = _load(root)
    if errors:
        raise ModelErrors(errors)
    return Registry(categories=categories, root=root)


def validate_dir(root: Path) -> list[ModelError]:
    """Every problem in the models under `root` (what `semproxy validate` prints); [] = valid."""
    return ModelErrors(_load(root)[1]).errors

"""The rules that one semantic model must pass on its own, one small function each.

Each takes a SemanticModel and yields ModelErrors (file, line, dotted field path); the
loader runs them on every file before the category-wide rules of `validate.py`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator

import sqlglot
from sqlglot import exp

from semproxy.errors import ModelError
from semproxy.semantic.graph import (
    mapped_inputs,
    named_nodes,
    time_dimensions,
)
from semproxy.semantic.model import (
    NAME_RE,
    Agg,
    DimensionType,
    EntityType,
    Metric,
    MetricType,
    SemanticModel,
    _Node,
)
from semproxy.semantic.registry import Category

Rule = Callable[[Category], list[ModelError]]
WINDOW_RE = re.compile(r"^\s*[1-9][0-9]*\s+(hour|day|week|month|quarter|year)s?\s*$")
_STATEMENTS = (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block, exp.Transaction, exp.Alias, exp.Set)


def error_at(
    model: SemanticModel, node: _Node | None, field: str, message: str, key: str | None = None
) -> ModelError:
    """An error about `field`, at the line of `node`'s key `key` (or of `node`, or the model)."""
    src = node.source if node is not None and node.source is not None else model.source
    line = (src.line_of(key) if key else src.line) if src is not None else None
    return ModelError(model.source.file if model.source else f"<model {model.name}>", line, field, message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def parse_error(sql: str, query: bool = False) -> str | None:
    """Why `sql` is not one SQL expression (or one SELECT when `query`), else None."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="postgres") if t is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        what = re.sub(r" for <class '[\w.]+'>", "", str(first.get("description", exc)))
        return f"is not valid SQL (column {first.get('col', '?')}: {what})"
    except sqlglot.errors.SqlglotError as exc:
        return f"is not valid SQL ({str(exc).splitlines()[0]})"
    if len(trees) != 1:
        return "must be a single SQL " + ("SELECT" if query else "expression")
    if query and not isinstance(trees[0], exp.Query):
        return "must be a SELECT statement"
    if not query and isinstance(trees[0], _STATEMENTS):
        return "must be an SQL expression, not a statement"
    return None


def sql_columns(sql: str) -> list[str]:
    """The column names an expression that parses reads."""
    return sorted({c.name for c in sqlglot.parse_one(sql, read="postgres").find_all(exp.Column)})


# per-model rules ------------------------------------------------------------------------


def _per_model(check: Callable[[SemanticModel], Iterator[ModelError]]) -> Rule:
    def rule(category: Category) -> list[ModelError]:
        return [e for model in category.models.values() for e in check(model)]

    rule.__name__ = rule.__qualname__ = check.__name__
    rule.__doc__ = check.__doc__
    return rule


@_per_model
def names_are_identifiers(model: SemanticModel) -> Iterator[ModelError]:
    """Model, entity, dimension, measure, metric and alias names match ^[a-z][a-z0-9_]*$."""
    rule = "must match ^[a-z][a-z0-9_]*$ (lower case letters, digits and _, starting with a letter)"
    if not NAME_RE.match(model.name):
        yield error_at(model, model, "name", f"model name {model.name!r} {rule}", "name")
    for path, kind, node in named_nodes(model):
        if not NAME_RE.match(node.name):
            yield error_at(model, node, f"{path}.name", f"{kind} name {node.name!r} {rule}", "name")
    for _, path, value in mapped_inputs(model):
        if value.alias is not None and not NAME_RE.match(value.alias):
            yield error_at(model, value, f"{path}.alias", f"alias {value.alias!r} {rule}", "alias")


@_per_model
def names_unique_in_model(model: SemanticModel) -> Iterator[ModelError]:
    """Names are unique across a model's entities, dimensions, measures and metrics; an explicit
    metric may reuse a measure's name only as the simple metric over that measure."""
    seen: dict[str, str] = {}
    for path, kind, node in named_nodes(model):
        if (
            isinstance(node, Metric)
            and node.type is MetricType.simple
            and node.type_params.measure == node.name
        ):
            continue
        if node.name in seen:
            message = (
                f"{kind} {node.name!r} reuses the name of {seen[node.name]}; names are unique in a model"
            )
            yield error_at(model, node, f"{path}.name", message, "name")
        seen.setdefault(node.name, f"{kind} {node.name!r} ({path})")


@_per_model
def model_name_not_reserved(model: SemanticModel) -> Iterator[ModelError]:
    """`metrics` is the category's table of all metrics, so no model may take that name."""
    if model.name == "metrics":
        message = "'metrics' is reserved (the table of every metric of the category); rename the model"
        yield error_at(model, model, "name", message, "name")


@_per_model
def model_xor_sql(model: SemanticModel) -> Iterator[ModelError]:
    """A model's base relation is a table (`model`) or a SELECT (`sql`), exactly one of them."""
    if (model.model is None) == (model.sql is None):
        has = "both" if model.model else "neither"
        message = f"give exactly one of `model` (a table) and `sql` (a SELECT); this model has {has}"
        yield error_at(model, model, "model", message, "model" if model.model else None)
    elif model.sql is not None and (why := parse_error(model.sql, query=True)):
        yield error_at(model, model, "sql", f"sql {why}", "sql")


@_per_model
def expressions_parse(model: SemanticModel) -> Iterator[ModelError]:
    """Every `expr` and `filter` parses as a Postgres SQL expression."""
    for path, _, node in named_nodes(model):
        for key in ("expr", "filter"):
            sql = getattr(node, key, None)
            if sql is not None and (why := parse_error(sql)):
                yield error_at(model, node, f"{path}.{key}", f"{key} of {node.name!r} {why}", key)
    for i, metric in enumerate(model.metrics):
        expr = metric.type_params.expr
        if metric.type is MetricType.derived and expr is not None and (why := parse_error(expr)):
            field = f"metrics[{i}].type_params.expr"
            yield error_at(model, metric.type_params, field, f"expr of {metric.name!r} {why}", "expr")
    for _, path, value in mapped_inputs(model):
        if value.filter is not None and (why := parse_error(value.filter)):
            yield error_at(model, value, f"{path}.filter", f"filter {why}", "filter")


@_per_model
def time_dimensions_have_granularity(model: SemanticModel) -> Iterator[ModelError]:
    """A time dimension says its finest grain; a categorical one takes no type_params."""
    for i, dim in enumerate(model.dimensions):
        if dim.type is DimensionType.time and dim.type_params is None:
            message = (
                f"time dimension {dim.name!r} needs type_params: {{time_granularity: <grain>}}, "
                "the finest grain it holds (hour, day, week, month, quarter or year)"
            )
            yield error_at(model, dim, f"dimensions[{i}].type_params.time_granularity", message, "type")
        if dim.type is DimensionType.categorical and dim.type_params is not None:
            message = f"categorical dimension {dim.name!r} takes no type_params; did you mean type: time?"
            yield error_at(model, dim, f"dimensions[{i}].type_params", message, "type_params")


@_per_model
def agg_time_dimension_is_time_dimension(model: SemanticModel) -> Iterator[ModelError]:
    """`agg_time_dimension` (model default or per measure) names a time dimension of the model."""
    times = time_dimensions(model)
    named: list[tuple[str, _Node | None, str | None]] = [
        (f"measures[{i}].agg_time_dimension", m, m.agg_time_dimension) for i, m in enumerate(model.measures)
    ]
    if model.defaults is not None:
        named.insert(0, ("defaults.agg_time_dimension", model.defaults, model.defaults.agg_time_dimension))
    for field, node, name in named:
        if name is not None and name not in times:
            kind = "is not a time dimension" if model.dimension(name) else "is not a dimension of this model"
            message = f"agg_time_dimension {name!r} {kind}{did_you_mean(name, times)}"
            yield error_at(model, node, field, message, "agg_time_dimension")


@_per_model
def measure_params(model: SemanticModel) -> Iterator[ModelError]:
    """A percentile needs agg_params.percentile in (0, 1); non_additive_dimension names a time
    dimension of the model."""
    times = time_dimensions(model)
    for i, measure in enumerate(model.measures):
        params, nad = measure.agg_params, measure.non_additive_dimension
        value = params.percentile if params else None
        if measure.agg is Agg.percentile and (value is None or not 0 < value < 1):
            message = (
                f"percentile measure {measure.name!r} needs agg_params.percentile in (0, 1), got {value}"
            )
            where, key = (params, "percentile") if params is not None else (measure, "agg")
            yield error_at(model, where, f"measures[{i}].agg_params.percentile", message, key)
        if nad is not None and nad.name not in times:
            message = f"non_additive_dimension {nad.name!r} is not a time dimension of this model"
            field = f"measures[{i}].non_additive_dimension.name"
            yield error_at(model, nad, field, message + did_you_mean(nad.name, times), "name")


@_per_model
def one_primary_entity(model: SemanticModel) -> Iterator[ModelError]:
    """A model has at most one primary entity: its rows have one identity."""
    primaries = [(i, e) for i, e in enumerate(model.entities) if e.type is EntityType.primary]
    for i, entity in primaries[1:]:
        message = (
            f"entity {entity.name!r} is a second primary entity (the first is {primaries[0][1].name!r}); "
            "make it unique or natural"
        )
        yield error_at(model, entity, f"entities[{i}].type", message, "type")


_REQUIRED = {
    MetricType.simple: ("measure",),
    MetricType.cumulative: ("measure",),
    MetricType.ratio: ("numerator", "denominator"),
    MetricType.derived: ("expr", "metrics"),
}


@_per_model
def metric_type_params(model: SemanticModel) -> Iterator[ModelError]:
    """Each metric type has its parameters; a simple or cumulative measure is one of this model;
    windows read like `7 days`."""
    for i, metric in enumerate(model.metrics):
        params, path = metric.type_params, f"metrics[{i}].type_params"
        for key in _REQUIRED[metric.type]:
            if getattr(params, key) in (None, []):
                message = f"{metric.type.value} metric {metric.name!r} needs type_params.{key}"
                yield error_at(model, params if params.source else metric, f"{path}.{key}", message)
        measure = params.measure
        if (
            metric.type in (MetricType.simple, MetricType.cumulative)
            and measure
            and not model.measure(measure)
        ):
            hint = did_you_mean(measure, [m.name for m in model.measures])
            message = f"measure {measure!r} is not a measure of model {model.name!r}{hint}"
            yield error_at(model, params, f"{path}.measure", message, "measure")
        if params.window is not None and not WINDOW_RE.match(params.window):
            message = f"window {params.window!r} must read like '7 days' or '1 month'"
            yield error_at(model, params, f"{path}.window", message, "window")
        if params.window is not None and params.grain_to_date is not None:
            message = "a cumulative metric takes window or grain_to_date, not both"
            yield error_at(model, params, f"{path}.grain_to_date", message, "grain_to_date")
    for _, path, value in mapped_inputs(model):
        if value.offset_window is not None and not WINDOW_RE.match(value.offset_window):
            message = f"offset_window {value.offset_window!r} must read like '1 month' or '7 days'"
            yield error_at(model, value, f"{path}.offset_window", message, "offset_window")


LOCAL_RULES: tuple[Rule, ...] = (
    names_are_identifiers,
    names_unique_in_model,
    model_name_not_reserved,
    model_xor_sql,
    expressions_parse,
    time_dimensions_have_granularity,
    agg_time_dimension_is_time_dimension,
    measure_params,
    one_primary_entity,
    metric_type_params,
)

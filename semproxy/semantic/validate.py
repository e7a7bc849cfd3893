"""The rules of a valid category of semantic models, one small function each.

A rule takes a Category and returns the problems it finds, each a ModelError with the
file, the line of the offending node and the field's dotted path
(`metrics[2].type_params.measure`). Rules never raise; `run_rules` runs a tuple of them.

    >>> run_rules(registry.category("production"), RULES)
    []

Decisions the spec leaves open:
- A `foreign` entity with no `primary`/`unique`/`natural` entity of that name elsewhere
  is allowed (it is just a key); it joins nothing, so `entity__dimension` names through
  it are errors that say why. A foreign entity matching only other foreign entities is
  likewise not a join.
- Metric names (explicit metrics and measures) are unique across the category too:
  the category's `metrics` table has one column per metric.
- A simple or cumulative metric is defined in the model of its measure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator

import sqlglot
from sqlglot import exp

from semproxy.errors import ModelError
from semproxy.semantic.model import (
    NAME_RE,
    Agg,
    DimensionType,
    EntityType,
    Metric,
    MetricInput,
    MetricType,
    SemanticModel,
    _Node,
)
from semproxy.semantic.registry import Category

Rule = Callable[[Category], list[ModelError]]
WINDOW_RE = re.compile(r"^\s*[1-9][0-9]*\s+(hour|day|week|month|quarter|year)s?\s*$")
ONE_SIDE = (EntityType.primary, EntityType.unique, EntityType.natural)
MAX_HOPS = 2
_STATEMENTS = (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block, exp.Transaction, exp.Alias, exp.Set)


def _err(model: SemanticModel, field: str, message: str, node: _Node | None, key: str | None = None) -> ModelError:
    """An error at `node` (its key `key` if given), falling back to the model's line."""
    src = node.source if node is not None and node.source is not None else model.source
    line = (src.line_of(key) if key else src.line) if src is not None else None
    file = model.source.file if model.source else f"<model {model.name}>"
    return ModelError(file, line, field, message)


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _parse_error(sql: str, query: bool = False) -> str | None:
    """Why `sql` is not one SQL expression (or one SELECT when `query`), else None."""
    try:
        trees = [t for t in sqlglot.parse(sql, read="postgres") if t is not None]
    except sqlglot.errors.SqlglotError as exc:
        return f"is not valid SQL: {str(exc).splitlines()[0]}"
    if len(trees) != 1:
        return "must be a single SQL " + ("SELECT" if query else "expression")
    if query and not isinstance(trees[0], exp.Query):
        return "must be a SELECT statement"
    if not query and isinstance(trees[0], _STATEMENTS):
        return "must be an SQL expression, not a statement"
    return None


def _named(model: SemanticModel) -> Iterator[tuple[str, str, _Node, str]]:
    """(path, kind, node, name) of every entity, dimension, measure and metric."""
    for kind, nodes in (
        ("entity", model.entities),
        ("dimension", model.dimensions),
        ("measure", model.measures),
        ("metric", model.metrics),
    ):
        for i, node in enumerate(nodes):
            yield f"{kind if kind != 'entity' else 'entitie'}s[{i}]", kind, node, node.name  # type: ignore[attr-defined]


def _inputs(metric: Metric) -> Iterator[tuple[str, MetricInput | str, _Node]]:
    """(path, input, node holding it) of a ratio's or derived metric's inputs."""
    params = metric.type_params
    if metric.type is MetricType.ratio:
        for key in ("numerator", "denominator"):
            value = getattr(params, key)
            if value is not None:
                yield key, value, value if isinstance(value, MetricInput) else params
    elif metric.type is MetricType.derived:
        for i, value in enumerate(params.metrics or []):
            yield f"metrics[{i}]", value, value if isinstance(value, MetricInput) else params


def _input_name(value: MetricInput | str) -> str:
    return value.name if isinstance(value, MetricInput) else value


def _time_dimensions(model: SemanticModel) -> set[str]:
    return {d.name for d in model.dimensions if d.type is DimensionType.time}


# per-model rules ------------------------------------------------------------------------


def _per_model(check: Callable[[SemanticModel], Iterator[ModelError]]) -> Rule:
    def rule(category: Category) -> list[ModelError]:
        return [e for model in category.models.values() for e in check(model)]

    rule.__name__ = rule.__qualname__ = check.__name__
    rule.__doc__ = check.__doc__
    return rule


@_per_model
def names_are_identifiers(model: SemanticModel) -> Iterator[ModelError]:
    """Model, entity, dimension, measure and metric names match ^[a-z][a-z0-9_]*$."""
    hint = "must match ^[a-z][a-z0-9_]*$ (lower case letters, digits and _, starting with a letter)"
    if not NAME_RE.match(model.name):
        yield _err(model, "name", f"model name {model.name!r} {hint}", model, "name")
    for path, kind, node, name in _named(model):
        if not NAME_RE.match(name):
            yield _err(model, f"{path}.name", f"{kind} name {name!r} {hint}", node, "name")
    for i, metric in enumerate(model.metrics):
        for path, value, node in _inputs(metric):
            if isinstance(value, MetricInput) and value.alias is not None and not NAME_RE.match(value.alias):
                yield _err(model, f"metrics[{i}].type_params.{path}.alias", f"alias {value.alias!r} {hint}", node, "alias")


@_per_model
def names_unique_in_model(model: SemanticModel) -> Iterator[ModelError]:
    """Names are unique across a model's entities, dimensions, measures and metrics; an explicit
    metric may reuse a measure's name only as the simple metric over that measure."""
    seen: dict[str, str] = {}
    for path, kind, node, name in _named(model):
        if isinstance(node, Metric) and node.type is MetricType.simple and node.type_params.measure == name:
            continue
        if name in seen:
            yield _err(model, f"{path}.name", f"{kind} {name!r} reuses the name of {seen[name]}; names are unique in a model", node, "name")
        else:
            seen[name] = f"{kind} {name!r} ({path})"


@_per_model
def model_name_not_reserved(model: SemanticModel) -> Iterator[ModelError]:
    """`metrics` is the category's table of all metrics, so no model may take that name."""
    if model.name == "metrics":
        yield _err(model, "name", "'metrics' is reserved (the table of every metric of the category); rename the model", model, "name")


@_per_model
def model_xor_sql(model: SemanticModel) -> Iterator[ModelError]:
    """A model's base relation is a table (`model`) or a SELECT (`sql`), exactly one of them."""
    if (model.model is None) == (model.sql is None):
        which = "both" if model.model else "neither"
        yield _err(model, "model", f"give exactly one of `model` (a table) and `sql` (a SELECT); this model has {which}", model, "model" if model.model else None)
    elif model.sql is not None and (why := _parse_error(model.sql, query=True)):
        yield _err(model, "sql", f"sql {why}", model, "sql")


@_per_model
def expressions_parse(model: SemanticModel) -> Iterator[ModelError]:
    """Every `expr` and `filter` parses as a Postgres SQL expression."""
    for path, _kind, node, name in _named(model):
        for key in ("expr", "filter"):
            sql = getattr(node, key, None)
            if sql is not None and (why := _parse_error(sql)):
                yield _err(model, f"{path}.{key}", f"{key} of {name!r} {why}", node, key)
    for i, metric in enumerate(model.metrics):
        params = metric.type_params
        if metric.type is MetricType.derived and params.expr is not None and (why := _parse_error(params.expr)):
            yield _err(model, f"metrics[{i}].type_params.expr", f"expr of {metric.name!r} {why}", params, "expr")
        for path, value, node in _inputs(metric):
            if isinstance(value, MetricInput) and value.filter is not None and (why := _parse_error(value.filter)):
                yield _err(model, f"metrics[{i}].type_params.{path}.filter", f"filter {why}", node, "filter")


@_per_model
def time_dimensions_have_granularity(model: SemanticModel) -> Iterator[ModelError]:
    """A time dimension says its finest grain; a categorical one takes no type_params."""
    for i, dim in enumerate(model.dimensions):
        if dim.type is DimensionType.time and dim.type_params is None:
            yield _err(model, f"dimensions[{i}].type_params.time_granularity", f"time dimension {dim.name!r} needs type_params: {{time_granularity: day}} (hour, day, week, month, quarter or year)", dim, "type")
        if dim.type is DimensionType.categorical and dim.type_params is not None:
            yield _err(model, f"dimensions[{i}].type_params", f"categorical dimension {dim.name!r} takes no type_params; did you mean type: time?", dim, "type_params")


@_per_model
def agg_time_dimension_is_time_dimension(model: SemanticModel) -> Iterator[ModelError]:
    """`agg_time_dimension` (model default or per measure) names a time dimension of the model."""
    times = _time_dimensions(model)
    named: list[tuple[str, _Node | None, str | None]] = [
        ("defaults.agg_time_dimension", model.defaults, model.defaults.agg_time_dimension if model.defaults else None)
    ]
    named += [(f"measures[{i}].agg_time_dimension", m, m.agg_time_dimension) for i, m in enumerate(model.measures)]
    for field, node, name in named:
        if name is not None and name not in times:
            kind = "is not a time dimension" if model.dimension(name) else "is not a dimension of this model"
            yield _err(model, field, f"agg_time_dimension {name!r} {kind}{_did_you_mean(name, times)}", node, "agg_time_dimension")


@_per_model
def measure_params(model: SemanticModel) -> Iterator[ModelError]:
    """A percentile needs agg_params.percentile in (0, 1); non_additive_dimension names a time dimension."""
    times = _time_dimensions(model)
    for i, measure in enumerate(model.measures):
        params = measure.agg_params
        value = params.percentile if params else None
        if measure.agg is Agg.percentile and (value is None or not 0 < value < 1):
            where = params if params is not None else measure
            yield _err(model, f"measures[{i}].agg_params.percentile", f"percentile measure {measure.name!r} needs agg_params: {{percentile: p}} with 0 < p < 1, got {value}", where, "percentile" if params else "agg")
        nad = measure.non_additive_dimension
        if nad is not None and nad.name not in times:
            yield _err(model, f"measures[{i}].non_additive_dimension.name", f"non_additive_dimension {nad.name!r} is not a time dimension of this model{_did_you_mean(nad.name, times)}", nad, "name")


@_per_model
def one_primary_entity(model: SemanticModel) -> Iterator[ModelError]:
    """A model has at most one primary entity: its rows have one identity."""
    primaries = [(i, e) for i, e in enumerate(model.entities) if e.type is EntityType.primary]
    for i, entity in primaries[1:]:
        yield _err(model, f"entities[{i}].type", f"entity {entity.name!r} is a second primary entity (the first is {primaries[0][1].name!r}); make it unique or natural", entity, "type")


@_per_model
def metric_type_params(model: SemanticModel) -> Iterator[ModelError]:
    """Each metric type has its parameters; a simple or cumulative measure is one of this model;
    windows read like `7 days`."""
    required = {
        MetricType.simple: ("measure",),
        MetricType.cumulative: ("measure",),
        MetricType.ratio: ("numerator", "denominator"),
        MetricType.derived: ("expr", "metrics"),
    }
    for i, metric in enumerate(model.metrics):
        params, path = metric.type_params, f"metrics[{i}].type_params"
        for key in required[metric.type]:
            if getattr(params, key) in (None, []):
                yield _err(model, f"{path}.{key}", f"{metric.type.value} metric {metric.name!r} needs type_params.{key}", params if params.source else metric, "type_params" if params.source is None else None)
        measure = params.measure
        if metric.type in (MetricType.simple, MetricType.cumulative) and measure and not model.measure(measure):
            names = [m.name for m in model.measures]
            yield _err(model, f"{path}.measure", f"measure {measure!r} is not a measure of model {model.name!r}{_did_you_mean(measure, names)}", params, "measure")
        if params.window is not None and not WINDOW_RE.match(params.window):
            yield _err(model, f"{path}.window", f"window {params.window!r} must read like '7 days' or '1 month'", params, "window")
        if params.window is not None and params.grain_to_date is not None:
            yield _err(model, f"{path}.grain_to_date", "a cumulative metric takes window or grain_to_date, not both", params, "grain_to_date")
        for ipath, value, node in _inputs(metric):
            if isinstance(value, MetricInput) and value.offset_window is not None and not WINDOW_RE.match(value.offset_window):
                yield _err(model, f"{path}.{ipath}.offset_window", f"offset_window {value.offset_window!r} must read like '1 month' or '7 days'", node, "offset_window")


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


# rules across the models of a category ------------------------------------------------


def duplicate_model_names(models: list[SemanticModel]) -> list[ModelError]:
    """Model names are unique in a category (they are its table names)."""
    first: dict[str, SemanticModel] = {}
    errors = []
    for model in models:
        if model.name in first:
            other = first[model.name].source
            where = f"{other.file}:{other.line}" if other else "another file"
            errors.append(_err(model, "name", f"model {model.name!r} is already defined in {where}", model, "name"))
        first.setdefault(model.name, model)
    return errors


def _metric_names(category: Category) -> set[str]:
    return {n for m in category.models.values() for n in [*(x.name for x in m.measures), *(x.name for x in m.metrics)]}


def metric_names_unique_in_category(category: Category) -> list[ModelError]:
    """A metric (measure or explicit metric) has one definition in a category: the `metrics`
    table has one column per metric."""
    owner: dict[str, str] = {}
    errors = []
    for model in category.models.values():
        own = {m.name for m in model.measures} | {m.name for m in model.metrics}
        for name in sorted(own):
            if name in owner:
                node = model.metric(name) or model.measure(name)
                kind = "metrics" if model.metric(name) else "measures"
                index = [x.name for x in getattr(model, kind)].index(name)
                errors.append(_err(model, f"{kind}[{index}].name", f"metric {name!r} is also defined by model {owner[name]!r}; metric names are unique in a category", node, "name"))
            owner.setdefault(name, model.name)
    return errors


def metric_inputs_exist(category: Category) -> list[ModelError]:
    """Ratio numerators and denominators and derived inputs name metrics of the category
    (measures count); a derived expr names only its inputs."""
    known = _metric_names(category)
    errors = []
    for model in category.models.values():
        for i, metric in enumerate(model.metrics):
            refs = set()
            for path, value, node in _inputs(metric):
                name = _input_name(value)
                refs.add(value.ref if isinstance(value, MetricInput) else value)
                if name not in known:
                    key = "name" if isinstance(value, MetricInput) else path
                    field = f"metrics[{i}].type_params.{path}" + (".name" if key == "name" else "")
                    errors.append(_err(model, field, f"{metric.name!r} uses metric {name!r}, which no model of {category.name!r} defines{_did_you_mean(name, known)}", node, key))
            expr = metric.type_params.expr
            if metric.type is MetricType.derived and expr and _parse_error(expr) is None:
                for col in sorted({c.name for c in sqlglot.parse_one(expr, read="postgres").find_all(exp.Column)} - refs):
                    errors.append(_err(model, f"metrics[{i}].type_params.expr", f"expr names {col!r}, which is not one of the inputs listed in type_params.metrics{_did_you_mean(col, refs)}", metric.type_params, "expr"))
    return errors


def derived_metrics_acyclic(category: Category) -> list[ModelError]:
    """Ratio and derived metrics never depend on themselves."""
    graph = {
        metric.name: (model, i, [_input_name(v) for _, v, _ in _inputs(metric)])
        for model in category.models.values()
        for i, metric in enumerate(model.metrics)
        if metric.type in (MetricType.ratio, MetricType.derived) and category.metric_owner(metric.name) == (model, metric)
    }
    errors, done = [], set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):] + [name]
            model, i, _ = graph[name]
            errors.append(_err(model, f"metrics[{i}].type_params", f"metric {name!r} depends on itself: {' -> '.join(cycle)}", model.metrics[i].type_params, None))
            return
        if name in done or name not in graph:
            return
        for child in graph[name][2]:
            visit(child, [*stack, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    return errors


def _base_measures(category: Category, name: str, seen: frozenset[str] = frozenset()) -> Iterator[tuple[SemanticModel, str]]:
    """The (model, measure name) pairs a metric is computed from."""
    owner = category.metric_owner(name)
    if owner is None or name in seen:
        return
    model, metric = owner
    if metric is None:
        yield model, name
    elif metric.type in (MetricType.simple, MetricType.cumulative):
        if metric.type_params.measure and model.measure(metric.type_params.measure):
            yield model, metric.type_params.measure
    else:
        for _, value, _ in _inputs(metric):
            yield from _base_measures(category, _input_name(value), seen | {name})


def time_offsets_have_agg_time(category: Category) -> list[ModelError]:
    """A cumulative metric, and a derived input with offset_window, need every measure they
    use to have an agg_time_dimension."""
    errors = []
    for model in category.models.values():
        for i, metric in enumerate(model.metrics):
            uses: list[tuple[str, _Node, str, str]] = []
            if metric.type is MetricType.cumulative and metric.type_params.measure:
                uses.append((f"metrics[{i}].type_params.measure", metric.type_params, "measure", metric.name))
            for path, value, node in _inputs(metric):
                if isinstance(value, MetricInput) and value.offset_window:
                    uses.append((f"metrics[{i}].type_params.{path}.offset_window", node, "offset_window", value.name))
            for field, node, key, name in uses:
                for owner, measure in _base_measures(category, name):
                    if owner.agg_time_dimension(owner.measure(measure)) is None:
                        errors.append(_err(model, field, f"{metric.name!r} needs a time axis, but measure {measure!r} of model {owner.name!r} has no agg_time_dimension; set defaults.agg_time_dimension there", node, key))
    return errors


def reachable_dimensions(category: Category, model: SemanticModel) -> set[str]:
    """Names a filter on `model` may use: its dimensions, entities and metric_time, and the
    dimensions and entities of models joined through foreign entities, as
    `entity__dimension`, up to two hops."""
    names = {d.name for d in model.dimensions} | {e.name for e in model.entities}
    if any(model.agg_time_dimension(m) for m in model.measures):
        names.add("metric_time")

    def walk(source: SemanticModel, prefix: str, hops: int) -> None:
        for entity in source.entities:
            if entity.type is not EntityType.foreign:
                continue
            for target in category.models.values():
                joined = target.entity(entity.name)
                if target is source or joined is None or joined.type not in ONE_SIDE:
                    continue
                path = f"{prefix}{entity.name}__"
                names.update(path + d.name for d in target.dimensions)
                names.update(path + e.name for e in target.entities if e.name != entity.name)
                if hops < MAX_HOPS:
                    walk(target, path, hops + 1)

    walk(model, "", 1)
    return names


def _unreachable_hint(category: Category, name: str) -> str:
    entity = name.split("__")[0]
    if "__" in name and not any(
        (e := m.entity(entity)) is not None and e.type in ONE_SIDE for m in category.models.values()
    ):
        return f" (no model of {category.name!r} has {entity!r} as a primary, unique or natural entity, so nothing joins through it)"
    return ""


def filters_name_reachable_dimensions(category: Category) -> list[ModelError]:
    """A filter names only dimensions reachable from every model its metric is computed from."""
    reach = {name: reachable_dimensions(category, m) for name, m in category.models.items()}
    errors = []
    for model in category.models.values():
        for i, metric in enumerate(model.metrics):
            filters: list[tuple[str, _Node, str | None, str]] = [(f"metrics[{i}].filter", metric, metric.filter, metric.name)]
            for path, value, node in _inputs(metric):
                if isinstance(value, MetricInput):
                    filters.append((f"metrics[{i}].type_params.{path}.filter", node, value.filter, value.name))
            for field, node, sql, name in filters:
                if sql is None or _parse_error(sql) is not None:
                    continue
                if metric.type in (MetricType.simple, MetricType.cumulative) and node is metric:
                    owners = [model]
                else:
                    owners = list({id(m): m for m, _ in _base_measures(category, name)}.values())
                columns = sorted({c.name for c in sqlglot.parse_one(sql, read="postgres").find_all(exp.Column)})
                for col in columns:
                    missing = next((o for o in owners if col not in reach[o.name]), None)
                    if missing is not None:
                        errors.append(_err(model, field, f"filter names {col!r}, which is not a dimension reachable from model {missing.name!r}{_did_you_mean(col, reach[missing.name])}{_unreachable_hint(category, col)}", node, "filter"))
    return errors


CATEGORY_RULES: tuple[Rule, ...] = (
    metric_names_unique_in_category,
    metric_inputs_exist,
    derived_metrics_acyclic,
    time_offsets_have_agg_time,
    filters_name_reachable_dimensions,
)
RULES: tuple[Rule, ...] = LOCAL_RULES + CATEGORY_RULES


def run_rules(category: Category, rules: tuple[Rule, ...] = RULES) -> list[ModelError]:
    """Every problem the rules find in `category`."""
    return [error for rule in rules for error in rule(category)]

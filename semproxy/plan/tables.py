"""The virtual tables a category exposes, and what each of their columns means.

A model is a table of its own dimensions (time ones included), its entities,
`metric_time`, the dimensions of joined models as `entity__dimension`, and every metric
usable from it. Each schema also has a `metrics` table: every metric of the category with
every dimension as `entity__dimension` plus `metric_time`.

`virtual_tables(registry)` is what the catalog creates; `scope(registry, schema, table)`
is what the compiler resolves a query's columns against. Both are computed once per
Registry object (a reload builds a new Registry, so nothing goes stale).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from semproxy.errors import FeatureNotSupported, UndefinedTable
from semproxy.plan.joins import SEP, Hop, Reach, by_target, one_side, reachable
from semproxy.plan.metrics import leaf_models, metric_names
from semproxy.semantic.model import DimensionType, EntityType, Grain, SemanticModel
from semproxy.semantic.registry import Category, Registry
from semproxy.sql.parse import ident_name, position, table_parts

METRICS_TABLE = "metrics"
METRIC_TIME = "metric_time"
ENTITY = "@entity"  # target owner of an entity column: (ENTITY, entity name)
TIME = "@time"  # target of metric_time: (TIME, METRIC_TIME)


@dataclass(frozen=True)
class VirtualColumn:
    name: str
    kind: str  # 'dimension' | 'time' | 'entity' | 'metric'
    description: str | None
    label: str | None


@dataclass(frozen=True)
class VirtualTable:
    schema: str  # the category
    name: str  # the model name, or 'metrics'
    description: str | None
    columns: tuple[VirtualColumn, ...]


@dataclass(frozen=True)
class DimBinding:
    """A dimension column: what it points at, seen from any model of the category."""

    name: str
    kind: str  # 'dimension' | 'time' | 'entity'
    target: tuple[str, str]  # (owner model, field) | (ENTITY, name) | (TIME, METRIC_TIME)
    granularity: Grain | None
    # a joined dimension named by its join path (`order__customer__region`): a model that
    # has this path takes it, even when another path reaches the same field
    path: tuple[Hop, ...] = ()


@dataclass(frozen=True)
class TableScope:
    """One virtual table as the compiler sees it."""

    schema: str
    table: VirtualTable
    model: SemanticModel | None  # None for the `metrics` table
    dims: dict[str, DimBinding]
    metrics: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns)


@dataclass
class SchemaIndex:
    category: Category
    scopes: dict[str, TableScope]
    reach: dict[str, dict[str, Reach]]  # per model: name -> how to reach it
    targets: dict[str, dict[tuple[str, str], Reach | None]]  # per model: target -> shortest reach


_INDEXES: dict[int, tuple[weakref.ref[Registry], dict[str, SchemaIndex]]] = {}


def schema_index(registry: Registry, schema: str) -> SchemaIndex | None:
    return _indexes(registry).get(schema)


def scope(registry: Registry, schema: str, table: str) -> TableScope | None:
    index = schema_index(registry, schema)
    return index.scopes.get(table) if index else None


def virtual_tables(registry: Registry) -> list[VirtualTable]:
    """Every table of every category, each schema's `metrics` table included."""
    return [s.table for index in _indexes(registry).values() for s in index.scopes.values()]


def _indexes(registry: Registry) -> dict[str, SchemaIndex]:
    key = id(registry)
    cached = _INDEXES.get(key)
    if cached is not None and cached[0]() is registry:
        return cached[1]
    built = {name: _build(name, cat) for name, cat in registry.categories.items()}
    _INDEXES[key] = (weakref.ref(registry, lambda _: _INDEXES.pop(key, None)), built)
    return built


def _build(schema: str, category: Category) -> SchemaIndex:
    reach = {m.name: reachable(category, m) for m in category.models.values()}
    targets = {name: by_target(r) for name, r in reach.items()}
    scopes = {m.name: _model_scope(schema, category, m, reach[m.name]) for m in category.models.values()}
    scopes[METRICS_TABLE] = _metrics_scope(schema, category)
    return SchemaIndex(category, scopes, reach, targets)


def _binding(name: str, r: Reach) -> DimBinding:
    field = r.field
    if not hasattr(field, "granularity"):
        return DimBinding(name, "entity", (ENTITY, field.name), None)
    grain = field.granularity  # type: ignore[union-attr]
    kind = "time" if field.type is DimensionType.time else "dimension"  # type: ignore[union-attr]
    return DimBinding(name, kind, r.target, grain, r.path)


def _time_grain(category: Category, models: list[SemanticModel]) -> Grain | None:
    """The grain metric_time holds: the coarsest of the models' agg time dimensions."""
    grains = []
    for m in models:
        name = m.agg_time_dimension()
        dim = m.dimension(name) if name else None
        if dim is not None and dim.granularity is not None:
            grains.append(dim.granularity)
    return max(grains, key=lambda g: g.rank) if grains else None


def _model_scope(
    schema: str, category: Category, model: SemanticModel, reach: dict[str, Reach]
) -> TableScope:
    dims: dict[str, DimBinding] = {}
    own = [n for n, r in reach.items() if not r.path and r.field in model.dimensions]
    ents = [n for n, r in reach.items() if not r.path and r.field in model.entities]
    joined = [n for n, r in reach.items() if r.path]
    for n in own + ents:
        dims[n] = _binding(n, reach[n])
    grain = _time_grain(category, [model])
    if model.agg_time_dimension() is not None:
        dims[METRIC_TIME] = DimBinding(METRIC_TIME, "time", (TIME, METRIC_TIME), grain)
    for n in joined:
        dims[n] = _binding(n, reach[n])
    metrics = _usable_metrics(category, model)
    return TableScope(
        schema, _table(schema, model.name, model.description, category, dims, metrics), model, dims, metrics
    )


def _usable_metrics(category: Category, model: SemanticModel) -> tuple[str, ...]:
    own = metric_names(model)
    others = [
        name
        for m in category.models.values()
        if m is not model
        for name in metric_names(m)
        if name not in own and leaf_models(category, name) == {model.name}
    ]
    return tuple(dict.fromkeys(own + others))


def _metrics_scope(schema: str, category: Category) -> TableScope:
    dims: dict[str, DimBinding] = {}
    models = list(category.models.values())
    for m in models:
        primary = m.primary_entity
        if primary is None:
            continue
        for dim in m.dimensions:
            name = f"{primary.name}{SEP}{dim.name}"
            dims.setdefault(name, _binding(name, Reach((), m, dim)))
    for m in models:  # and by full path, for a dimension that two paths reach
        for name, r in reachable(category, m).items():
            if len(r.path) > 1 and hasattr(r.field, "granularity"):
                dims.setdefault(name, _binding(name, r))
    for m in models:
        for ent in m.entities:
            if ent.type is EntityType.foreign and one_side(category, ent.name, "") is None:
                continue
            dims.setdefault(ent.name, DimBinding(ent.name, "entity", (ENTITY, ent.name), None))
    if any(m.agg_time_dimension() for m in models):
        grain = _time_grain(category, models)
        dims[METRIC_TIME] = DimBinding(METRIC_TIME, "time", (TIME, METRIC_TIME), grain)
    metrics = tuple(dict.fromkeys(n for m in models for n in metric_names(m)))
    description = f"Every metric of {schema}, by every dimension as entity__dimension."
    return TableScope(
        schema, _table(schema, METRICS_TABLE, description, category, dims, metrics), None, dims, metrics
    )


def _table(
    schema: str,
    name: str,
    description: str | None,
    category: Category,
    dims: dict[str, DimBinding],
    metrics: tuple[str, ...],
) -> VirtualTable:
    columns = [VirtualColumn(b.name, b.kind, *_describe_dim(category, b)) for b in dims.values()]
    columns += [VirtualColumn(n, "metric", *_describe_metric(category, n)) for n in metrics]
    return VirtualTable(schema, name, description, tuple(columns))


def _describe_dim(category: Category, b: DimBinding) -> tuple[str | None, str | None]:
    owner, field = b.target
    if owner == TIME:
        return "The time each metric is measured at (its agg_time_dimension).", "Metric time"
    model = category.model(owner)
    found: Any = (model.dimension(field) or model.entity(field)) if model else None
    return (found.description, found.label) if found is not None else (None, None)


def _describe_metric(category: Category, name: str) -> tuple[str | None, str | None]:
    owner = category.metric_owner(name)
    if owner is None:
        return None, None
    model, metric = owner
    if metric is not None:
        return metric.description, metric.label
    measure = model.measure(name)
    return (measure.description, measure.label) if measure else (None, None)


def resolve_table(
    table: exp.Table, registry: Registry, search_path: Sequence[str]
) -> tuple[SchemaIndex, TableScope] | None:
    """The virtual table `table` names (schema-qualified, or found through search_path).

    A name in a served schema that is no table of it is a 42P01 listing the schema's tables."""
    if not isinstance(table.this, exp.Identifier):
        return None
    schema, name = table_parts(table)
    for candidate in [schema] if schema else search_path:
        index = schema_index(registry, candidate)
        if index is None:
            continue
        found = index.scopes.get(name)
        if found is not None:
            return index, found
        if schema:
            tables = ", ".join(sorted(index.scopes))
            raise UndefinedTable(
                f'relation "{schema}.{name}" does not exist',
                hint=f"The tables of {schema} are: {tables}.",
                position=position(table),
            )
    return None


def metric_table(
    select: exp.Select, registry: Registry, search_path: Sequence[str]
) -> tuple[SchemaIndex, TableScope, set[str]] | None:
    """The one virtual table this SELECT reads (its own FROM, not nested queries), with the
    names its columns may be qualified by; None when its FROM is no metric table."""
    source = select.args.get("from_")
    if source is None or not isinstance(source.this, exp.Table):
        return None
    found = resolve_table(source.this, registry, search_path)
    if found is None:
        return None
    for join in select.args.get("joins") or []:
        other = join.this
        if isinstance(other, exp.Table) and resolve_table(other, registry, search_path) is not None:
            raise FeatureNotSupported(
                "joining two metric tables is not supported; query the metrics table instead",
                hint="SELECT ... FROM metrics GROUP BY ... has every metric and dimension of the schema",
                position=position(other),
            )
        raise FeatureNotSupported(
            "a metric table cannot be joined with other relations", position=position(other)
        )
    table = source.this
    schema, name = table_parts(table)
    alias = table.args.get("alias")
    qualifiers = {ident_name(alias)} if alias is not None else {name, f"{schema}.{name}" if schema else name}
    return found[0], found[1], qualifiers

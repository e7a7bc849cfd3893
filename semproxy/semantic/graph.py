"""Walks over the models of a category: every named node with its YAML path, the inputs
and measures behind a metric, the dimensions a model joins to. Pure lookups, shared by
validation and the planner.

    >>> sorted(reachable_dimensions(production, production.models["order_items"]))[:3]
    ['item', 'order', 'order__channel']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from semproxy.semantic.model import (
    Dimension,
    DimensionType,
    Entity,
    EntityType,
    Measure,
    Metric,
    MetricInput,
    MetricType,
    SemanticModel,
    _Node,
)
from semproxy.semantic.registry import Category

ONE_SIDE = (EntityType.primary, EntityType.unique, EntityType.natural)
MAX_HOPS = 2


def metric_inputs(metric: Metric, prefix: str = "") -> Iterator[tuple[str, MetricInput | str, _Node]]:
    """(path, input, node holding it) of a ratio's or derived metric's inputs; a plain name's
    line is its key (`numerator`) or list item (`metrics[1]`) in type_params."""
    params = metric.type_params
    keys = ["numerator", "denominator"] if metric.type is MetricType.ratio else []
    values = [params.numerator, params.denominator] if keys else []
    if metric.type is MetricType.derived:
        keys = [f"metrics[{i}]" for i in range(len(params.metrics or []))]
        values = list(params.metrics or [])
    for key, value in zip(keys, values, strict=True):
        if value is not None:
            yield prefix + key, value, value if isinstance(value, MetricInput) else params


def named_nodes(model: SemanticModel) -> Iterator[tuple[str, str, Entity | Dimension | Measure | Metric]]:
    """(path, kind, node) of every entity, dimension, measure and metric."""
    lists: list[tuple[str, str, list[Any]]] = [
        ("entities", "entity", model.entities),
        ("dimensions", "dimension", model.dimensions),
        ("measures", "measure", model.measures),
        ("metrics", "metric", model.metrics),
    ]
    for plural, kind, nodes in lists:
        for i, node in enumerate(nodes):
            yield f"{plural}[{i}]", kind, node


def mapped_inputs(model: SemanticModel) -> Iterator[tuple[Metric, str, MetricInput]]:
    """(metric, path, input) of every input written as a mapping, in every metric."""
    for i, metric in enumerate(model.metrics):
        for path, value, _ in metric_inputs(metric, f"metrics[{i}].type_params."):
            if isinstance(value, MetricInput):
                yield metric, path, value


def input_name(value: MetricInput | str) -> str:
    return value.name if isinstance(value, MetricInput) else value


def time_dimensions(model: SemanticModel) -> set[str]:
    return {d.name for d in model.dimensions if d.type is DimensionType.time}


def base_measures(
    category: Category, name: str, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[SemanticModel, str]]:
    """The (model, measure name) pairs metric `name` is computed from."""
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
        for _, value, _ in metric_inputs(metric):
            yield from base_measures(category, input_name(value), seen | {name})


def reachable_dimensions(category: Category, model: SemanticModel) -> set[str]:
    """Names a filter on `model` may use: its dimensions and entities, metric_time when it has
    a time axis, and the dimensions and entities of models joined through foreign entities,
    as `entity__dimension`, up to two hops (`customer__nation__name`)."""
    names = {d.name for d in model.dimensions} | {e.name for e in model.entities}
    if any(model.agg_time_dimension(m) for m in model.measures):
        names.add("metric_time")

    def walk(source: SemanticModel, prefix: str, hops: int) -> None:
        for entity in (e for e in source.entities if e.type is EntityType.foreign):
            for target in category.models.values():
                joined = target.entity(entity.name)
                if target is not source and joined is not None and joined.type in ONE_SIDE:
                    path = f"{prefix}{entity.name}__"
                    names.update(path + d.name for d in target.dimensions)
                    names.update(path + e.name for e in target.entities if e.name != entity.name)
                    if hops < MAX_HOPS:
                        walk(target, path, hops + 1)

    walk(model, "", 1)
    return names

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

from semproxy.errors import ModelError
from semproxy.semantic.graph import (
    ONE_SIDE,
    base_measures,
    input_name,
    mapped_inputs,
    metric_inputs,
    named_nodes,
    reachable_dimensions,
)
from semproxy.semantic.model import (
    Metric,
    MetricInput,
    MetricType,
    SemanticModel,
    _Node,
)
from semproxy.semantic.model_rules import LOCAL_RULES, Rule, did_you_mean, error_at, parse_error, sql_columns
from semproxy.semantic.registry import Category

# rules across the models of a category ------------------------------------------------


def duplicate_model_names(models: list[SemanticModel]) -> list[ModelError]:
    """Model names are unique in a category (they are its table names)."""
    first: dict[str, SemanticModel] = {}
    errors = []
    for model in models:
        if model.name in first:
            other = first[model.name].source
            where = f"{other.file}:{other.line}" if other else "another file"
            message = f"model {model.name!r} is already defined in {where}"
            errors.append(error_at(model, model, "name", message, "name"))
        first.setdefault(model.name, model)
    return errors


def metric_names_unique_in_category(category: Category) -> list[ModelError]:
    """A metric (measure or explicit metric) has one definition in a category: the `metrics`
    table has one column per metric."""
    owner: dict[str, str] = {}
    errors = []
    for model in category.models.values():
        for path, kind, node in named_nodes(model):
            if kind not in ("measure", "metric") or model.measure(node.name) not in (None, node):
                continue  # a simple metric over its own measure is that measure
            if owner.get(node.name, model.name) != model.name:
                message = (
                    f"metric {node.name!r} is also defined by model {owner[node.name]!r} (names are unique)"
                )
                errors.append(error_at(model, node, f"{path}.name", message, "name"))
            owner.setdefault(node.name, model.name)
    return errors


def metric_inputs_exist(category: Category) -> list[ModelError]:
    """Ratio numerators and denominators and derived inputs name metrics of the category
    (measures count); a derived expr names only its inputs."""
    known = {
        n.name
        for m in category.models.values()
        for _, kind, n in named_nodes(m)
        if kind in ("measure", "metric")
    }
    errors = []
    for model in category.models.values():
        for i, metric in enumerate(model.metrics):
            refs = set()
            for path, value, node in metric_inputs(metric, f"metrics[{i}].type_params."):
                name = input_name(value)
                refs.add(value.ref if isinstance(value, MetricInput) else value)
                if name not in known:
                    message = (
                        f"{metric.name!r} uses metric {name!r}, which no model of {category.name!r} defines"
                    )
                    plain = not isinstance(value, MetricInput)
                    field, key = (path, path.split(".")[-1]) if plain else (f"{path}.name", "name")
                    errors.append(error_at(model, node, field, message + did_you_mean(name, known), key))
            expr = metric.type_params.expr
            if metric.type is MetricType.derived and expr and parse_error(expr) is None:
                for col in sorted(set(sql_columns(expr)) - refs):
                    message = f"expr names {col!r}, which is not one of the inputs in type_params.metrics"
                    field = f"metrics[{i}].type_params.expr"
                    hint = did_you_mean(col, refs)
                    errors.append(error_at(model, metric.type_params, field, message + hint, "expr"))
    return errors


def derived_metrics_acyclic(category: Category) -> list[ModelError]:
    """Ratio and derived metrics never depend on themselves."""
    graph = {  # metrics shadowed by a duplicate name are left out: that is reported already
        metric.name: (model, i, [input_name(v) for _, v, _ in metric_inputs(metric)])
        for model in category.models.values()
        for i, metric in enumerate(model.metrics)
        if metric.type in (MetricType.ratio, MetricType.derived)
        and category.metric_owner(metric.name) == (model, metric)
    }
    errors: list[ModelError] = []
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            model, i, _ = graph[name]
            cycle = " -> ".join([*stack[stack.index(name) :], name])
            message = f"metric {name!r} depends on itself: {cycle}"
            errors.append(error_at(model, model.metrics[i].type_params, f"metrics[{i}].type_params", message))
        elif name not in done and name in graph:
            for child in graph[name][2]:
                visit(child, [*stack, name])
            done.add(name)

    for name in graph:
        visit(name, [])
    return errors


def time_offsets_have_agg_time(category: Category) -> list[ModelError]:
    """A cumulative metric, and a derived input with offset_window, need every measure they
    use to have an agg_time_dimension."""
    errors = []
    for model in category.models.values():
        uses: list[tuple[Metric, str, _Node, str, str]] = [
            (metric, f"metrics[{i}].type_params.measure", metric.type_params, "measure", metric.name)
            for i, metric in enumerate(model.metrics)
            if metric.type is MetricType.cumulative and metric.type_params.measure
        ]
        uses += [
            (m, f"{path}.offset_window", v, "offset_window", v.name)
            for m, path, v in mapped_inputs(model)
            if v.offset_window
        ]
        for metric, field, node, key, name in uses:
            for owner, measure in base_measures(category, name):
                if owner.agg_time_dimension(owner.measure(measure)) is None:
                    message = (
                        f"{metric.name!r} needs a time axis, but measure {measure!r} of model {owner.name!r} "
                        "has no agg_time_dimension; set defaults.agg_time_dimension there"
                    )
                    errors.append(error_at(model, node, field, message, key))
    return errors


def _unreachable_hint(category: Category, name: str) -> str:
    entity = name.split("__")[0]
    if "__" in name and not any(
        (e := m.entity(entity)) and e.type in ONE_SIDE for m in category.models.values()
    ):
        return (
            f" (no model of {category.name!r} has {entity!r} as a primary, unique or natural entity,"
            " so nothing joins through it)"
        )
    return ""


def filters_name_reachable_dimensions(category: Category) -> list[ModelError]:
    """A filter names only dimensions reachable from every model its metric is computed from."""
    reach = {name: reachable_dimensions(category, m) for name, m in category.models.items()}
    errors = []
    for model in category.models.values():
        filters: list[tuple[str, _Node, str | None, list[SemanticModel]]] = []
        for i, metric in enumerate(model.metrics):
            own = metric.type in (MetricType.simple, MetricType.cumulative)
            owners = [model] if own else [m for m, _ in base_measures(category, metric.name)]
            filters.append((f"metrics[{i}].filter", metric, metric.filter, owners))
        for _, path, value in mapped_inputs(model):
            owners = [m for m, _ in base_measures(category, value.name)]
            filters.append((f"{path}.filter", value, value.filter, owners))
        for field, node, sql, owners in filters:
            for col in sql_columns(sql) if sql is not None and parse_error(sql) is None else []:
                if (missing := next((o for o in owners if col not in reach[o.name]), None)) is not None:
                    hint = did_you_mean(col, reach[missing.name]) + _unreachable_hint(category, col)
                    message = f"filter names {col!r}, not a dimension reachable from model {missing.name!r}"
                    errors.append(error_at(model, node, field, message + hint, "filter"))
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

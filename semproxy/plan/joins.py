"""Which dimensions a model reaches, and through which joins.

A model reaches its own dimensions and entities, and, through each `foreign` entity, the
dimensions of the model whose `primary`/`unique`/`natural` entity has that name (up to two
hops). Joins only go from the many side to the one side, so they never fan out.

    >>> reach = reachable(category, orders)        # doctest: +SKIP
    >>> reach["customer__region"].path              # doctest: +SKIP
    (Hop(entity='customer', model='customers'),)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from semproxy.errors import AmbiguousColumn
from semproxy.semantic.model import Dimension, Entity, EntityType, SemanticModel
from semproxy.semantic.registry import Category
from semproxy.sql.parse import parse_expr

MAX_HOPS = 2
SEP = "__"


@dataclass(frozen=True)
class Hop:
    entity: str  # the entity joined on
    model: str  # the model joined to (its one side)


@dataclass(frozen=True)
class Reach:
    """A dimension or entity as seen from a model: the join path to the model that owns it."""

    path: tuple[Hop, ...]
    owner: SemanticModel
    field: Dimension | Entity

    @property
    def target(self) -> tuple[str, str]:
        return (self.owner.name, self.field.name)


def one_side(category: Category, entity: str, exclude: str) -> SemanticModel | None:
    """The model whose primary/unique/natural entity is `entity` (other than `exclude`)."""
    for model in category.models.values():
        found = model.entity(entity)
        if model.name != exclude and found is not None and found.type is not EntityType.foreign:
            return model
    return None


def reachable(category: Category, model: SemanticModel) -> dict[str, Reach]:
    """Every name a query on `model` may use as a dimension, mapped to how to reach it."""
    names: dict[str, Reach] = {}
    _walk(category, model, model, (), names, {model.name})
    return names


def _walk(
    category: Category,
    root: SemanticModel,
    model: SemanticModel,
    path: tuple[Hop, ...],
    names: dict[str, Reach],
    seen: set[str],
) -> None:
    prefix = SEP.join(h.entity for h in path)
    for dim in model.dimensions:
        names.setdefault(f"{prefix}{SEP}{dim.name}" if prefix else dim.name, Reach(path, model, dim))
    if not path:
        for ent in model.entities:
            names.setdefault(ent.name, Reach(path, model, ent))
    if len(path) >= MAX_HOPS:
        return
    for ent in model.entities:
        if ent.type is not EntityType.foreign:
            continue
        target = one_side(category, ent.name, model.name)
        if target is None or target.name in seen:
            continue
        _walk(category, root, target, (*path, Hop(ent.name, target.name)), names, seen | {target.name})


def by_target(reach: dict[str, Reach]) -> dict[tuple[str, str], Reach | None]:
    """(owner model, field) -> the shortest way to reach it; None when two paths tie."""
    best: dict[tuple[str, str], Reach | None] = {}
    lengths: dict[tuple[str, str], int] = {}
    for r in reach.values():
        key = r.target
        if key not in lengths or len(r.path) < lengths[key]:
            best[key], lengths[key] = r, len(r.path)
        elif len(r.path) == lengths[key] and best[key] is not None and best[key] != r:
            best[key] = None
    return best


class Relation:
    """The FROM clause of one model's aggregation: its base relation and the LEFT JOINs to
    the one-side models that the rendered dimensions need, added on first use."""

    def __init__(
        self, category: Category, model: SemanticModel, targets: dict[tuple[str, str], Reach | None]
    ) -> None:
        self.category = category
        self.model = model
        self.targets = targets
        self.aliases: dict[tuple[Hop, ...], str] = {(): "t0"}
        self.joins: list[exp.Join] = []

    def own(self, sql: str, path: tuple[Hop, ...] = ()) -> exp.Expr:
        """A SQL expression over the columns of the model at `path`, qualified by its alias."""
        alias = self._alias(path)
        tree = parse_expr(sql).copy()
        for col in tree.find_all(exp.Column):
            if not col.table:
                col.set("table", exp.to_identifier(alias))
        return tree

    def reach(self, target: tuple[str, str]) -> Reach | None:
        """How this model reaches (owner, field); raises when two paths tie."""
        if target not in self.targets:
            return None
        found = self.targets[target]
        if found is None:
            raise AmbiguousColumn(
                f"{target[0]}.{target[1]} is reachable from {self.model.name} by two join paths",
                hint="name it by its full path (entity__entity__dimension)",
            )
        return found

    def from_(self) -> tuple[exp.Expr, list[exp.Join]]:
        return base_relation(self.model, "t0"), self.joins

    def _alias(self, path: tuple[Hop, ...]) -> str:
        if path in self.aliases:
            return self.aliases[path]
        left = self._alias(path[:-1])
        hop = path[-1]
        left_model = self.model if len(path) == 1 else self.category.models[path[-2].model]
        right_model = self.category.models[hop.model]
        alias = self.aliases[path] = f"t{len(self.aliases)}"
        left_key = _qualified(left_model.entity(hop.entity), left)
        right_key = _qualified(right_model.entity(hop.entity), alias)
        on = exp.EQ(this=left_key, expression=right_key)
        self.joins.append(exp.Join(this=base_relation(right_model, alias), kind="", side="LEFT", on=on))
        return alias


def _qualified(entity: Entity | None, alias: str) -> exp.Expr:
    assert entity is not None
    tree = parse_expr(entity.sql).copy()
    for col in tree.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier(alias))
    return tree


def base_relation(model: SemanticModel, alias: str) -> exp.Expr:
    """The model's base table (`model:`) or SELECT (`sql:`), aliased."""
    if model.sql:
        return exp.Subquery(
            this=parse_expr(model.sql).copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))
        )
    table = exp.to_table(model.model or model.name)
    table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table

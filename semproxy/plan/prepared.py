"""Prepared statements: a text with `$1..$n`, parsed once, and each Bind's values.

A value that sits where a literal would be a plan-cache slot (a WHERE/HAVING comparison,
LIMIT, OFFSET) is printed into the plan's pre-generated SQL by the dialect's generator, so
a Bind with other values of the same kinds neither parses nor plans again:

    compile_prepared("SELECT ... WHERE status = $1 LIMIT $2", registry, [lit('done'), lit(5)])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from sqlglot import exp

from semproxy.errors import FeatureNotSupported
from semproxy.plan import compile as compiler
from semproxy.plan.cache import SLOT, CompiledQuery, Plan, Prepared, plan_cache, remember, slot_literals
from semproxy.semantic.registry import Registry

__all__ = ["compile_prepared"]


def compile_prepared(
    text: str,
    registry: Registry,
    values: Sequence[exp.Expr],
    search_path: Sequence[str] = ("production",),
    dialect: str = "duckdb",
) -> CompiledQuery:
    """A prepared statement (`text` with `$1..$n`) with one Bind's values, each the literal
    node params.py makes of it (a string or number literal, a CAST of a string literal,
    a boolean, NULL). The text is parsed once; a value in a slot position is printed into
    the plan's pre-generated SQL by the dialect's generator, so a Bind with other values of
    the same kinds neither parses nor plans nor routes again. Other values (a NULL, a
    parameter in the select list or DATE_TRUNC's unit) are part of the plan's key."""
    cache = plan_cache(registry)
    key = (text, tuple(search_path), dialect)
    entry = cache.prepared.get(key)
    if entry is None:
        tree = compiler.parse_statement(text)
        if tree is None:
            raise FeatureNotSupported("this statement could not be parsed as a query on metric tables")
        entry = Prepared(tree, _slot_parameters(tree), OrderedDict())
        remember(cache.prepared, key, entry)
    filled: dict[int, exp.Expr] = {}
    shape: list[object] = []
    for i, value in enumerate(values):
        literal = _slot_literal(value) if i in entry.slots else None
        if literal is None:
            shape.append(value.sql(dialect=dialect))
        else:
            filled[i] = literal
            shape.append(
                (type(value), value.to.sql() if isinstance(value, exp.Cast) else None, literal.is_string)
            )
    plan = entry.plans.get(tuple(shape))
    if plan is not None:
        return plan.fill(filled)
    tree = _bound(entry.tree, values, filled)
    plan, result = Plan.compile(*compiler.compile_tree(tree, registry, key[1], dialect), dialect, filled)
    remember(entry.plans, tuple(shape), plan)
    return result


def _slot_parameters(tree: exp.Expr) -> frozenset[int]:
    """The parameters every use of which is a slot position (as a literal would be)."""
    probe = tree.copy()
    uses: dict[int, int] = {}
    for node in list(probe.find_all(exp.Parameter)):
        index = _parameter_index(node)
        uses[index] = uses.get(index, 0) + 1
        marked = node.replace(exp.Literal.string(""))
        marked.meta["parameter"] = index
    in_slots: dict[int, int] = {}
    for lit in slot_literals(probe):
        if "parameter" in lit.meta:
            in_slots[lit.meta["parameter"]] = in_slots.get(lit.meta["parameter"], 0) + 1
    return frozenset(i for i, n in uses.items() if i >= 0 and in_slots.get(i) == n)


def _parameter_index(node: exp.Parameter) -> int:
    inner = node.this
    return int(inner.name) - 1 if isinstance(inner, exp.Literal) and inner.name.isdigit() else -1


def _slot_literal(value: exp.Expr) -> exp.Literal | None:
    if isinstance(value, exp.Cast) and isinstance(value.this, exp.Literal):
        return value.this
    return value if isinstance(value, exp.Literal) else None


def _bound(tree: exp.Expr, values: Sequence[exp.Expr], slots: dict[int, exp.Expr]) -> exp.Expr:
    """A copy of `tree` with each `$n` replaced by its value, a slot's literal by its slot."""

    def put(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Parameter):
            return node
        index = _parameter_index(node)
        if not 0 <= index < len(values):
            raise FeatureNotSupported(f"there is no parameter ${index + 1}")
        value = values[index].copy()
        if index in slots:
            literal = _slot_literal(value)
            assert literal is not None
            slot = exp.Placeholder(this=f"{SLOT}{index}")
            if literal is value:
                return slot
            literal.replace(slot)
        return value

    return tree.transform(put)

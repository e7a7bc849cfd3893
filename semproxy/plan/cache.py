"""The plan cache: one compiled plan per query shape, filled with each query's values.

A *shape* is a statement with the literal values of its WHERE/HAVING comparisons and its
LIMIT/OFFSET taken out: those never change a plan. The plan keeps each of them as a typed
slot (a placeholder named `semproxy_literal_<i>`), and its SQL is generated once with the
slots in it. Filling a plan with other values prints each value as a literal node with the
dialect's own generator and puts it between the generated pieces, so a cache hit neither
parses nor plans nor regenerates the query:

    SELECT ... WHERE status = 'completed' LIMIT 5     (cold: parse, plan, generate)
    SELECT ... WHERE status = 'cancelled' LIMIT 7     (hit: mask literals, look up, fill)

A plan whose pieces would not print its values as the whole tree does (checked once, when
it is compiled) is filled by replacing the slots in its tree and generating it again.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.generator import Generator

from semproxy.semantic.registry import Registry

CACHE_SIZE = 2048
SLOT = "semproxy_literal_"  # placeholder names of the slots: no client SQL uses them


class CompiledQuery:
    """The warehouse SQL of one statement, the names of its result columns in order, and
    its sqlglot tree (built on first use when the SQL came from a cached plan)."""

    __slots__ = ("sql", "columns", "_tree", "_build")

    def __init__(
        self,
        sql: str,
        columns: tuple[str, ...],
        tree: exp.Expr | None = None,
        build: Callable[[], exp.Expr] | None = None,
    ) -> None:
        self.sql = sql
        self.columns = columns
        self._tree = tree
        self._build = build

    @property
    def tree(self) -> exp.Expr:
        if self._tree is None:
            assert self._build is not None
            self._tree = self._build()
        return self._tree

    def __repr__(self) -> str:
        return f"CompiledQuery(sql={self.sql!r}, columns={self.columns!r})"


@dataclass(frozen=True)
class Plan:
    """A compiled statement whose values are slots; `fill` makes a CompiledQuery of it."""

    tree: exp.Expr  # the warehouse tree, slots as placeholders
    columns: tuple[str, ...]
    dialect: str
    pieces: tuple[str, ...] | None  # generated SQL between the slots; None: regenerate
    slots: tuple[int, ...]  # the slot that goes after pieces[k]

    @classmethod
    def compile(
        cls, tree: exp.Expr, columns: tuple[str, ...], dialect: str, values: Mapping[int, exp.Expr]
    ) -> tuple[Plan, CompiledQuery]:
        """The plan of `tree`, and the query it gives with the statement's own `values`."""
        template = tree.sql(dialect=dialect)
        if not values:
            return cls(tree, columns, dialect, (template,), ()), CompiledQuery(template, columns, tree)
        filled = fill_slots(tree, values)
        sql = filled.sql(dialect=dialect)
        parts = _slot_sql(dialect).split(template)
        pieces, slots = tuple(parts[0::2]), tuple(int(s) for s in parts[1::2])
        exact = set(slots) <= set(values) and _join(pieces, slots, values, dialect) == sql
        plan = cls(tree, columns, dialect, pieces if exact else None, slots)
        return plan, CompiledQuery(sql, columns, filled)

    def fill(self, values: Mapping[int, exp.Expr]) -> CompiledQuery:
        if self.pieces is None:
            tree = fill_slots(self.tree, values)
            return CompiledQuery(tree.sql(dialect=self.dialect), self.columns, tree)
        sql = _join(self.pieces, self.slots, values, self.dialect)
        return CompiledQuery(sql, self.columns, build=lambda: fill_slots(self.tree, values))


@lru_cache(maxsize=16)
def _slot_sql(dialect: str) -> re.Pattern[str]:
    """How `dialect` prints a slot (`:name`, `$name`, `%(name)s`), its number captured."""
    head, tail = exp.Placeholder(this=f"{SLOT}0").sql(dialect=dialect).split(f"{SLOT}0")
    return re.compile(re.escape(head) + SLOT + r"(\d+)" + re.escape(tail))


def fill_slots(tree: exp.Expr, values: Mapping[int, exp.Expr]) -> exp.Expr:
    """A copy of `tree` with each slot replaced by its value's node."""

    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name.startswith(SLOT):
            return values[int(node.name[len(SLOT) :])].copy()
        return node

    return tree.transform(put)


def _join(
    pieces: tuple[str, ...], slots: tuple[int, ...], values: Mapping[int, exp.Expr], dialect: str
) -> str:
    out = [pieces[0]]
    for slot, piece in zip(slots, pieces[1:], strict=True):
        out += [printed(values[slot], dialect), piece]
    return "".join(out)


def printed(value: exp.Expr, dialect: str) -> str:
    """A value node as the dialect's generator prints it (literals remembered)."""
    if isinstance(value, exp.Literal):
        return _printed_literal(value.this, value.is_string, dialect)
    return value.sql(dialect=dialect)


@lru_cache(maxsize=8192)
def _printed_literal(text: str, is_string: bool, dialect: str) -> str:
    return _generator(dialect).generate(exp.Literal(this=text, is_string=is_string))


_GENERATORS = threading.local()  # a generator is not safe to share between threads


def _generator(dialect: str) -> Generator:
    found: dict[str, Generator] = _GENERATORS.__dict__.setdefault("by_dialect", {})
    if dialect not in found:
        found[dialect] = Dialect.get_or_raise(dialect).generator()
    return found[dialect]


def slot_literals(tree: exp.Expr) -> list[exp.Literal]:
    """The literals that are values, not shape: compared with in WHERE/HAVING (`= 'x'`,
    `IN (...)`, `BETWEEN`, `DATE '...'`, `-5`), and the LIMIT and OFFSET counts."""
    found: list[exp.Literal] = []
    for select in tree.find_all(exp.Select):
        spots = [select.args.get(k) for k in ("where", "having", "limit", "offset")]
        for clause in filter(None, spots):
            for lit in clause.find_all(exp.Literal):
                parent = lit.parent
                while isinstance(parent, exp.Cast | exp.Neg):
                    parent = parent.parent
                if isinstance(parent, exp.Predicate | exp.Limit | exp.Offset | exp.Tuple | exp.In):
                    found.append(lit)
    return found


# -- the caches, one set per Registry -----------------------------------------------------
Key = tuple[Any, tuple[str, ...], str]  # (text, tree or shape key; search path; dialect)


class PlanCache:
    """Per Registry: routes and compiled statements by exact text, plans by shape."""

    def __init__(self) -> None:
        self.routes: OrderedDict[Key, list[Any]] = OrderedDict()
        self.route_shapes: OrderedDict[Key, str] = OrderedDict()  # masked text -> route kind
        self.texts: OrderedDict[Key, CompiledQuery] = OrderedDict()
        self.fixed: OrderedDict[Key, tuple[int, ...]] = OrderedDict()  # masked text -> non-slot literals
        self.plans: OrderedDict[tuple[Key, tuple[str, ...]], Plan] = OrderedDict()  # + their values
        self.trees: OrderedDict[Key, Plan] = OrderedDict()  # a bound tree's shape -> plan
        self.prepared: OrderedDict[Key, Prepared] = OrderedDict()  # a text with $n -> its plans

    def clear(self) -> None:
        stores = (
            self.routes,
            self.route_shapes,
            self.texts,
            self.fixed,
            self.plans,
            self.trees,
            self.prepared,
        )
        for store in stores:
            store.clear()


@dataclass
class Prepared:
    """A prepared statement's text, parsed once: `slots` are the parameters that sit where
    a value never changes the plan (WHERE/HAVING comparisons, LIMIT, OFFSET); its plans are
    keyed by the kind of each slot's value and the SQL of every other parameter's value."""

    tree: exp.Expr
    slots: frozenset[int]  # 0-based parameter indexes
    plans: OrderedDict[tuple[object, ...], Plan]


_CACHES: dict[int, tuple[weakref.ref[Registry], PlanCache]] = {}


def plan_cache(registry: Registry) -> PlanCache:
    key = id(registry)
    found = _CACHES.get(key)
    if found is not None and found[0]() is registry:
        return found[1]
    cache = PlanCache()
    _CACHES[key] = (weakref.ref(registry, lambda _: _CACHES.pop(key, None)), cache)
    return cache


def remember(store: OrderedDict, key: object, value: Any) -> None:  # type: ignore[type-arg]
    store[key] = value
    if len(store) > CACHE_SIZE:
        store.popitem(last=False)

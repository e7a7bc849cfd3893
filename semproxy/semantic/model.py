"""Pydantic models of the semantic model YAML format (../shared/spec/semantic-models.md).

Pure data: no SQL is built here. Every object may carry `source` (file and line) set by
the loader, so validation errors point at the YAML.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Source(BaseModel):
    """Where a node was written: its file, the line of its mapping, and the line of each
    key (`fields["expr"]`), with items of scalar lists as `fields["metrics[1]"]`."""

    model_config = ConfigDict(frozen=True)
    file: str
    line: int | None = None
    fields: dict[str, int] = Field(default_factory=dict, repr=False)

    def __hash__(self) -> int:
        return hash((self.file, self.line))

    def line_of(self, field: str) -> int | None:
        """The line of key `field` of this node, else the node's own line."""
        return self.fields.get(field, self.line)


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Source | None = Field(default=None, exclude=True, repr=False)


class EntityType(StrEnum):
    primary = "primary"
    unique = "unique"
    foreign = "foreign"
    natural = "natural"


class DimensionType(StrEnum):
    categorical = "categorical"
    time = "time"


class Grain(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"

    @property
    def rank(self) -> int:
        return list(Grain).index(self)


class Agg(StrEnum):
    sum = "sum"
    count = "count"  # type: ignore[assignment]  # shadows str.count, on purpose
    count_distinct = "count_distinct"
    avg = "avg"
    min = "min"
    max = "max"
    median = "median"
    percentile = "percentile"
    sum_boolean = "sum_boolean"


class MetricType(StrEnum):
    simple = "simple"
    ratio = "ratio"
    derived = "derived"
    cumulative = "cumulative"


class Entity(_Node):
    name: str
    type: EntityType
    expr: str | None = None
    description: str | None = None
    label: str | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name


class TimeTypeParams(_Node):
    time_granularity: Grain


class Dimension(_Node):
    name: str
    type: DimensionType
    expr: str | None = None
    description: str | None = None
    label: str | None = None
    type_params: TimeTypeParams | None = None
    meta: dict[str, Any] | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name

    @property
    def granularity(self) -> Grain | None:
        return self.type_params.time_granularity if self.type_params else None


class AggParams(_Node):
    percentile: float | None = None
    use_discrete_percentile: bool = False
    use_approximate_percentile: bool = False


class NonAdditiveDimension(_Node):
    name: str
    window_choice: str = "max"
    window_groupings: list[str] = Field(default_factory=list)

    @field_validator("window_choice")
    @classmethod
    def _choice(cls, v: str) -> str:
        if v not in ("max", "min"):
            raise ValueError("window_choice must be max or min")
        return v


class Measure(_Node):
    name: str
    agg: Agg
    expr: str | None = None
    description: str | None = None
    label: str | None = None
    agg_params: AggParams | None = None
    non_additive_dimension: NonAdditiveDimension | None = None
    agg_time_dimension: str | None = None
    create_metric: bool | None = None

    @property
    def sql(self) -> str:
        return self.expr if self.expr is not None else self.name


class MetricInput(_Node):
    """An input of a derived metric: a name, or {name, alias, offset_window, filter}."""

    name: str
    alias: str | None = None
    offset_window: str | None = None
    offset_to_grain: Grain | None = None
    filter: str | None = None

    @property
    def ref(self) -> str:
        return self.alias or self.name


class MetricTypeParams(_Node):
    measure: str | None = None
    numerator: str | MetricInput | None = None
    denominator: str | MetricInput | None = None
    expr: str | None = None
    metrics: list[str | MetricInput] | None = None
    window: str | None = None
    grain_to_date: Grain | None = None

    def inputs(self) -> list[MetricInput]:
        """Derived inputs, each as a MetricInput."""
        return [m if isinstance(m, MetricInput) else MetricInput(name=m) for m in self.metrics or []]


class Metric(_Node):
    name: str
    type: MetricType
    description: str | None = None
    label: str | None = None
    type_params: MetricTypeParams = Field(default_factory=MetricTypeParams)
    filter: str | None = None
    meta: dict[str, Any] | None = None


class Defaults(_Node):
    agg_time_dimension: str | None = None


class SemanticModel(_Node):
    name: str
    description: str | None = None
    label: str | None = None
    model: str | None = None
    sql: str | None = None
    version: str | None = None
    defaults: Defaults | None = None
    meta: dict[str, Any] | None = None
    tags: list[str] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    dimensions: list[Dimension] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    # lookups -------------------------------------------------------------
    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def primary_entity(self) -> Entity | None:
        return next((e for e in self.entities if e.type is not EntityType.foreign), None)

    def agg_time_dimension(self, measure: Measure | None = None) -> str | None:
        if measure is not None and measure.agg_time_dimension:
            return measure.agg_time_dimension
        return self.defaults.agg_time_dimension if self.defaults else None

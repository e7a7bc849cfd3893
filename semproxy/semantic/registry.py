"""The served set of semantic models: categories (Postgres schemas) of models.

A Registry is immutable; a reload builds a new one and swaps it in whole, so a
session never sees half a set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from semproxy.semantic.model import Metric, SemanticModel

SERVED_CATEGORIES = ("production", "staging", "development")
NEVER_SERVED = ("templates", "backups")


@dataclass(frozen=True)
class Category:
    name: str
    models: dict[str, SemanticModel] = field(default_factory=dict)

    def model(self, name: str) -> SemanticModel | None:
        return self.models.get(name)

    def metric_owner(self, name: str) -> tuple[SemanticModel, Metric | None] | None:
        """The model that defines metric `name` (explicit metric, or a measure used as an
        implicit simple metric, then the Metric is None)."""
        for model in self.models.values():
            explicit = model.metric(name)
            if explicit is not None:
                return model, explicit
        for model in self.models.values():
            if model.measure(name) is not None:
                return model, None
        return None


@dataclass(frozen=True)
class Registry:
    categories: dict[str, Category] = field(default_factory=dict)
    root: Path | None = None

    def category(self, name: str) -> Category | None:
        return self.categories.get(name)

    def model(self, schema: str, name: str) -> SemanticModel | None:
        category = self.categories.get(schema)
        return category.model(name) if category else None

    @classmethod
    def load(cls, root: Path) -> Registry:
        """Load and validate every served category under `root`.

        Raises `semproxy.semantic.load.ModelErrors` listing every problem found."""
        from semproxy.semantic.load import load_registry

        return load_registry(root)

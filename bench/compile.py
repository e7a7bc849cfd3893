"""Compile latency: cold, plan-cache hit (same text, and same shape with other literal
values), median and p99, for five representative queries, as the model grows to 200
metrics.

    .venv/bin/python -m bench compile

Cold means an empty plan cache (the model's indexes, built once per Registry, are warm).
"""

from __future__ import annotations

import datetime
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from semproxy.plan.cache import plan_cache
from semproxy.plan.compile import compile_query
from semproxy.semantic.model import SemanticModel
from semproxy.semantic.registry import Category, Registry

MODELS = Path(__file__).parent.parent / "tests" / "fixtures" / "correctness" / "models"
SIZES = (25, 100, 200)  # metrics in the category
QUERIES = {  # name: SQL with {} for a literal value that changes
    "single model": "SELECT region, MEASURE(revenue), MEASURE(order_count) FROM orders WHERE status = '{}' GROUP BY 1",
    "join": "SELECT customer__nation__name, MEASURE(revenue) FROM orders WHERE customer__region = '{}' GROUP BY 1",
    "ratio": "SELECT region, MEASURE(avg_order_value) FROM orders WHERE order_date >= DATE '{}' GROUP BY 1",
    "cross-model derived": "SELECT order__region, MEASURE(net_revenue) FROM metrics"
    " WHERE order__region IN ('EU', '{}') GROUP BY 1",
    "cumulative": "SELECT DATE_TRUNC('month', metric_time), MEASURE(revenue_mtd) FROM orders"
    " WHERE metric_time >= DATE '{}' GROUP BY 1",
}
RUNS = 200
DAY0 = datetime.date(2020, 1, 1)


def registry(metrics: int) -> Registry:
    """The correctness models, with filtered and ratio metrics added to orders until the
    category has `metrics` metrics (measures count as metrics)."""
    docs = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(MODELS.glob("*.yaml"))}
    have = sum(len(d.get("measures", [])) + len(d.get("metrics", [])) for d in docs.values())
    extra = docs["orders"].setdefault("metrics", [])
    for i in range(max(0, metrics - have)):
        if i % 2:
            extra.append({"name": f"status_revenue_{i}", "type": "simple",
                          "type_params": {"measure": "revenue"}, "filter": f"status = 's{i}'"})  # fmt: skip
        else:
            extra.append({"name": f"ratio_{i}", "type": "ratio",
                          "type_params": {"numerator": "revenue", "denominator": "order_count"}})  # fmt: skip
    models = {name: SemanticModel.model_validate(doc) for name, doc in docs.items()}
    return Registry(categories={"production": Category("production", models)})


def timed(run: Callable[[int], object], n: int = RUNS) -> tuple[float, float]:
    """(median, p99) in milliseconds of `run(i)` for i in 0..n-1."""
    samples = []
    for i in range(n):
        start = time.perf_counter()
        run(i)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, int(n * 0.99))]


def ours(reg: Registry, template: str) -> dict[str, tuple[float, float]]:
    values = itertools.count(1)
    first = template.format(DAY0 if "DATE '{}'" in template else "v0")
    compile_query(first, reg)  # warm the model's indexes

    def cold(i: int) -> None:
        plan_cache(reg).clear()
        compile_query(first, reg)

    dated = "DATE '{}'" in template

    def other_literal(i: int) -> None:
        n = next(values)
        compile_query(template.format(DAY0 + datetime.timedelta(days=n) if dated else f"v{n}"), reg)

    figures = {"cold": timed(cold, RUNS // 4)}
    figures["hit, same text"] = timed(lambda i: compile_query(first, reg))
    other_literal(0)
    figures["hit, other literals"] = timed(other_literal)
    return figures


def main() -> None:
    print(f"{'query':<22}{'metrics':>8}  {'cold p50/p99 ms':>17}  {'same text':>17}  {'other literals':>17}")
    for size in SIZES:
        reg = registry(size)
        for name, template in QUERIES.items():
            f = ours(reg, template)
            cells = "  ".join(f"{a:>8.3f}/{b:<8.3f}" for a, b in f.values())
            print(f"{name:<22}{size:>8}  {cells}")


if __name__ == "__main__":
    main()

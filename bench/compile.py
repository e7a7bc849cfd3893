"""Compile latency: cold, plan-cache hit (same text, and same shape with other literal
values), median and p99, for five representative queries, as the model grows to 200
metrics.

    .venv/bin/python -m bench compile

Cold means an empty plan cache (the model's indexes, built once per Registry, are warm).

Beside it, MetricFlow (dbt-metricflow, in a venv of its own under /tmp, created on first
use) answers the same five questions from the same models converted to a MetricFlow
manifest (bench/metricflow/convert.py): its explain() - SQL generation only - timed cold
(a fresh engine) and with other filter values, and the ratio of its p50 to ours.
"""

from __future__ import annotations

import datetime
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
# the same questions for MetricFlow: metrics, group by, and a where with {} for the value
MF_QUESTIONS = {
    "single model": (
        ["revenue", "order_count"],
        ["order__region"],
        "{{ Dimension('order__status') }} = '{}'",
    ),
    "join": (["revenue"], ["customer__nation__name"], "{{ Dimension('customer__region') }} = '{}'"),
    "ratio": (["avg_order_value"], ["order__region"], "{{ TimeDimension('metric_time', 'day') }} >= '{}'"),
    "cross-model derived": (
        ["net_revenue"],
        ["order__region"],
        "{{ Dimension('order__region') }} IN ('EU', '{}')",
    ),
    "cumulative": (
        ["revenue_mtd"],
        ["metric_time__month"],
        "{{ TimeDimension('metric_time', 'day') }} >= '{}'",
    ),
}
MF_VENV = Path(tempfile.gettempdir()) / "semproxy-metricflow-venv"
MF_PACKAGES = ["dbt-core==1.11.16", "dbt-metricflow==0.15.0"]  # metricflow 0.213.0
MF_SCRIPT = Path(__file__).parent / "metricflow" / "explain.py"


def registry(metrics: int) -> Registry:
    docs = documents(metrics)
    models = {name: SemanticModel.model_validate(doc) for name, doc in docs.items()}
    return Registry(categories={"production": Category("production", models)})


def documents(metrics: int) -> dict[str, dict[str, Any]]:
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
    return docs


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


def metricflow_python() -> Path | None:
    """The MetricFlow venv's python, created (pip install) when missing; None, said why."""
    python = MF_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating the MetricFlow venv in {MF_VENV} ({', '.join(MF_PACKAGES)})...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MF_VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *MF_PACKAGES], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        print(f"MetricFlow comparison skipped: could not install it ({exc}; {err.decode()[-300:].strip()})")
        return None
    return python


def metricflow(python: Path, docs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """MetricFlow's explain() figures for MF_QUESTIONS, measured in its own venv."""
    questions = {}
    for name, (metrics, group_by, where) in MF_QUESTIONS.items():
        dated = "TimeDimension" in where
        values = [str(DAY0 + datetime.timedelta(days=n)) if dated else f"v{n}" for n in range(50)]
        questions[name] = {"metrics": metrics, "group_by": group_by, "where": where, "values": values}
    job = json.dumps({"models": docs, "questions": questions, "runs": RUNS // 4})
    done = subprocess.run([str(python), str(MF_SCRIPT)], input=job, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"MetricFlow comparison failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    python = metricflow_python()
    header = (
        f"{'query':<22}{'metrics':>8}  {'cold p50/p99 ms':>17}  {'same text':>17}  {'other literals':>17}"
    )
    print(
        header
        + ("  MetricFlow cold / other values p50/p99 ms   ratio MF/ours (cold, other)" if python else "")
    )
    for size in SIZES:
        docs = documents(size)
        reg = registry(size)
        theirs = metricflow(python, docs) if python else None
        for name, template in QUERIES.items():
            f = ours(reg, template)
            cells = "  ".join(f"{a:>8.3f}/{b:<8.3f}" for a, b in f.values())
            if theirs is not None:
                (c50, c99), (o50, o99) = theirs[name]["cold"], theirs[name]["other values"]
                ratio = f"{c50 / f['cold'][0]:>6.1f}x {o50 / f['hit, other literals'][0]:>8.1f}x"
                cells += f"  {c50:>8.2f}/{c99:<8.2f} {o50:>8.2f}/{o99:<8.2f}   {ratio}"
            print(f"{name:<22}{size:>8}  {cells}", flush=True)


if __name__ == "__main__":
    main()

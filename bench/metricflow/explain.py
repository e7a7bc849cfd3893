"""Time MetricFlow's explain() (SQL generation only) for the compile benchmark's questions.

    <metricflow venv>/bin/python bench/metricflow/explain.py < request.json

The request is JSON: {"models": {name: our model YAML as a dict}, "questions": {name:
{"metrics": [...], "group_by": [...], "where": "<MetricFlow where with {} for a value>",
"values": [...]}}, "runs": n}. Prints JSON: per question, p50/p99 in ms of a first
explain (cold: a fresh engine) and of repeated explains with other filter values.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from convert import convert  # noqa: E402  (run as a script inside the MetricFlow venv)


def engine(models: dict[str, Any]) -> Any:
    from metricflow.engine.metricflow_engine import MetricFlowEngine
    from metricflow.protocols.sql_client import SqlEngine
    from metricflow.sql.render.duckdb_renderer import DuckDbSqlPlanRenderer
    from metricflow_semantic_interfaces.parsing.dir_to_model import (
        parse_yaml_files_to_validation_ready_semantic_manifest,
    )
    from metricflow_semantic_interfaces.parsing.objects import YamlConfigFile
    from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

    files = [YamlConfigFile(filepath=f"doc{i}.yaml", contents=text) for i, text in enumerate(convert(models))]
    manifest = parse_yaml_files_to_validation_ready_semantic_manifest(files).semantic_manifest

    class ExplainOnly:  # MetricFlow's SqlClient protocol, for SQL generation only
        sql_engine_type = SqlEngine.DUCKDB
        sql_plan_renderer = DuckDbSqlPlanRenderer()

        def render_bind_parameter_key(self, key: str) -> str:
            return f"${key}"

        def query(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("explain only")

        execute = dry_run = query

        def close(self) -> None:
            pass

    return MetricFlowEngine(SemanticManifestLookup(manifest), ExplainOnly())  # type: ignore[arg-type]


def request(question: dict[str, Any], value: str) -> Any:
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    return MetricFlowQueryRequest.create(
        metric_names=question["metrics"],
        group_by_names=question["group_by"],
        where_constraints=[question["where"].replace("{}", value)],
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    job = json.load(sys.stdin)
    out: dict[str, Any] = {}
    mf = engine(job["models"])
    for name, q in job["questions"].items():
        values = q["values"]
        cold = []
        for value in values[:5]:  # a fresh engine: nothing cached
            fresh = engine(job["models"])
            start = time.perf_counter()
            fresh.explain(request(q, value))
            cold.append((time.perf_counter() - start) * 1000)
        mf.explain(request(q, values[0]))
        warm = []
        for i in range(job["runs"]):
            start = time.perf_counter()
            result = mf.explain(request(q, values[i % len(values)]))
            warm.append((time.perf_counter() - start) * 1000)
        out[name] = {"cold": percentiles(cold), "other values": percentiles(warm),
                     "sql": result.sql_statement.sql}  # fmt: skip
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

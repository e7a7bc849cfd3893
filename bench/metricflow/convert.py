"""Our model YAML -> MetricFlow (dbt-semantic-interfaces) YAML documents.

Standard library and PyYAML only: it runs inside the MetricFlow venv. Covers what the
compile benchmark asks: entities, categorical and time dimensions, measures (each also a
metric, as our spec says), simple/filtered, ratio, derived (offset_window) and cumulative
metrics, filters as `{{ Dimension('entity__name') }}`, and a day time spine. Models
whose base relation is `sql:` (MetricFlow has none) and measures without a time dimension
are left out.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

TIME_SPINE = ("shop", "time_spine", "ds")  # schema, table, column of a day spine
_NAME = re.compile(r"'(?:[^']|'')*'|\b[a-z_][a-z0-9_]*\b")


def convert(models: dict[str, dict[str, Any]]) -> list[str]:
    """YAML documents (one per semantic model and metric, and the project configuration)."""
    docs: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    for doc in models.values():
        if doc.get("sql"):
            continue
        model, own_metrics = _semantic_model(doc)
        docs.append({"semantic_model": model})
        metrics += own_metrics
    schema, table, column = TIME_SPINE
    spine = {"node_relation": {"alias": table, "schema_name": schema, "relation_name": f"{schema}.{table}"},
             "primary_column": {"name": column, "time_granularity": "day"}}  # fmt: skip
    docs.append({"project_configuration": {"time_spines": [spine]}})
    return [yaml.safe_dump(d, sort_keys=False) for d in docs] + [
        yaml.safe_dump({"metric": m}, sort_keys=False) for m in metrics
    ]


def _semantic_model(doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    schema, _, table = (doc.get("model") or doc["name"]).rpartition(".")
    primary = next((e["name"] for e in doc.get("entities", []) if e["type"] == "primary"), doc["name"])
    own = {d["name"] for d in doc.get("dimensions", [])}
    timed = bool((doc.get("defaults") or {}).get("agg_time_dimension"))
    model: dict[str, Any] = {
        "name": doc["name"],
        "node_relation": {
            "alias": table,
            "schema_name": schema or "main",
            "relation_name": f"{schema}.{table}",
        },
        "entities": [_pick(e, "name", "type", "expr") for e in doc.get("entities", [])],
        "dimensions": [_dimension(d) for d in doc.get("dimensions", [])],
    }
    if timed:
        model["defaults"] = {"agg_time_dimension": doc["defaults"]["agg_time_dimension"]}
    model["measures"] = [_measure(m) for m in doc.get("measures", [])] if timed else []
    metrics = [_metric(m, primary, own) for m in doc.get("metrics", [])] if timed else []
    return model, metrics


def _pick(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: d[k] for k in keys if d.get(k) is not None}


def _dimension(d: dict[str, Any]) -> dict[str, Any]:
    out = _pick(d, "name", "type", "expr")
    if d["type"] == "time":
        out["type_params"] = {"time_granularity": d["type_params"]["time_granularity"]}
    return out


def _measure(m: dict[str, Any]) -> dict[str, Any]:
    out = _pick(m, "name", "agg", "expr", "agg_time_dimension")
    out["expr"] = out.get("expr", m["name"])
    out["agg"] = "average" if m["agg"] == "avg" else m["agg"]
    out["create_metric"] = True
    if m.get("agg_params"):
        out["agg_params"] = m["agg_params"]
    if m.get("non_additive_dimension"):
        out["non_additive_dimension"] = m["non_additive_dimension"]
    return out


def jinja(sql: str, primary: str, own: set[str]) -> str:
    """A filter over a model's columns -> MetricFlow's Jinja: `status = 'x'` ->
    `{{ Dimension('order__status') }} = 'x'`; joined `customer__region` stays as named."""

    def name(found: re.Match[str]) -> str:
        word = found.group()
        if word.startswith("'") or (word not in own and "__" not in word):
            return word
        return "{{ Dimension('" + (f"{primary}__{word}" if word in own else word) + "') }}"

    return _NAME.sub(name, sql)


def _metric(m: dict[str, Any], primary: str, own: set[str]) -> dict[str, Any]:
    params = m.get("type_params") or {}
    out: dict[str, Any] = {"name": m["name"], "type": m["type"]}
    if m.get("filter"):
        out["filter"] = jinja(m["filter"], primary, own)
    if m["type"] == "simple":
        out["type_params"] = {"measure": {"name": params.get("measure", m["name"])}}
    elif m["type"] == "ratio":
        out["type_params"] = {
            "numerator": {"name": params["numerator"]},
            "denominator": {"name": params["denominator"]},
        }
    elif m["type"] == "cumulative":
        window = _pick(params, "window", "grain_to_date")
        out["type_params"] = {"measure": {"name": params["measure"]}, "cumulative_type_params": window}
    else:
        inputs = []
        for i in params.get("metrics", []):
            i = {"name": i} if isinstance(i, str) else dict(i)
            if i.get("filter"):
                i["filter"] = jinja(i["filter"], primary, own)
            inputs.append(_pick(i, "name", "alias", "offset_window", "offset_to_grain", "filter"))
        out["type_params"] = {"expr": params["expr"], "metrics": inputs}
    return out

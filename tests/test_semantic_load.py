"""Loading model files: the production models, sources on every node, errors with lines."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from semproxy.semantic.load import ModelErrors, load_model_file, load_registry, read_yaml, validate_dir
from semproxy.semantic.model import Dimension, Entity, Measure, Metric, MetricInput, MetricType, SemanticModel
from semproxy.semantic.registry import Registry

ROOT = Path(__file__).parent.parent / "semantic-models"
REFUNDED = """\
name: refunds
model: main.refunds
defaults: {agg_time_dimension: refunded_at}
dimensions:
  - name: refunded_at
    type: time
    type_params: {time_granularity: day}
measures:
  - name: refunded
    agg: sum
    expr: refund_amount
"""


def nodes(model: SemanticModel) -> list[Entity | Dimension | Measure | Metric]:
    return [*model.entities, *model.dimensions, *model.measures, *model.metrics]


def test_production_models_load_and_validate() -> None:
    assert validate_dir(ROOT) == []
    registry = Registry.load(ROOT)
    production = registry.category("production")
    assert production is not None
    assert set(production.models) == {"orders", "customers", "order_items", "products", "refunds"}
    assert set(registry.categories) == {"production"}  # templates/ is never served
    orders = production.models["orders"]
    assert orders.agg_time_dimension() == "order_date"
    assert production.metric_owner("refunded_amount") == (production.models["refunds"], None)
    for model in production.models.values():
        assert model.description and model.label
        for node in nodes(model):
            assert node.description and node.label, f"{model.name}.{node.name}"


def test_every_node_knows_its_file_and_line() -> None:
    orders = load_model_file(ROOT / "production" / "orders.yaml", "production")
    lines = (ROOT / "production" / "orders.yaml").read_text().splitlines()
    assert orders.source is not None and orders.source.file.endswith("orders.yaml")
    for node in nodes(orders):
        assert node.source is not None and node.source.line is not None
        assert lines[node.source.line - 1].strip() == f"- name: {node.name}"
    growth = orders.metric("revenue_growth_mom")
    assert growth is not None and growth.type is MetricType.derived
    params = growth.type_params
    assert params.source is not None and params.source.line is not None
    assert lines[params.source.line - 1].strip() == "type_params:"
    shifted = params.metrics[1] if params.metrics else None
    assert isinstance(shifted, MetricInput) and shifted.source is not None
    assert "offset_window: 1 month" in lines[shifted.source.line_of("offset_window") - 1]  # type: ignore[operator]
    assert lines[params.source.line_of("metrics[0]") - 1].strip() == "- revenue"  # type: ignore[operator]
    assert "source" not in orders.model_dump()


def test_the_template_is_a_valid_model(tmp_path: Path) -> None:
    (tmp_path / "production").mkdir()
    shutil.copy(ROOT / "templates" / "example.yaml", tmp_path / "production" / "orders.yaml")
    (tmp_path / "production" / "refunds.yaml").write_text(REFUNDED)
    assert validate_dir(tmp_path) == []


def test_load_model_file_reports_pydantic_errors_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text("name: orders\nmodel: main.orders\nmeasures:\n  - name: revenue\n    agg: total\n")
    with pytest.raises(ModelErrors) as caught:
        load_model_file(path, "production")
    (error,) = caught.value.errors
    assert (error.file, error.line, error.field) == (str(path), 5, "measures[0].agg")
    assert "'total'" in error.message and "'sum'" in error.message
    assert str(error).startswith(f"{path}:5: measures[0].agg: ")


def test_load_model_file_runs_the_rules_that_need_no_other_model(tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text("name: orders\nmodel: main.orders\nsql: SELECT 1\n")
    with pytest.raises(ModelErrors) as caught:
        load_model_file(path, "production")
    assert [(e.line, e.field) for e in caught.value.errors] == [(2, "model")]


def test_load_registry_collects_errors_from_every_file(tmp_path: Path) -> None:
    for category in ("production", "staging"):
        (tmp_path / category).mkdir()
        (tmp_path / category / "a.yaml").write_text("name: a\nmodel: t\nmeasures:\n  - name: x\n    agg: nope\n")
        (tmp_path / category / "b.yaml").write_text("name: B\nmodel: t\n")
    with pytest.raises(ModelErrors) as caught:
        load_registry(tmp_path)
    assert [(Path(e.file).parent.name, Path(e.file).name, e.line) for e in caught.value.errors] == [
        ("production", "a.yaml", 5),
        ("production", "b.yaml", 1),
        ("staging", "a.yaml", 5),
        ("staging", "b.yaml", 1),
    ]
    assert "b.yaml:1: name:" in str(caught.value)


def test_a_category_folder_may_be_empty_and_other_names_are_categories(tmp_path: Path) -> None:
    (tmp_path / "staging").mkdir()
    (tmp_path / "finance").mkdir()
    shutil.copy(ROOT / "production" / "products.yaml", tmp_path / "finance" / "products.yml")
    registry = load_registry(tmp_path)
    assert set(registry.categories) == {"staging", "finance"}
    assert registry.model("finance", "products") is not None
    assert registry.root == tmp_path


def test_yaml_keeps_lines_and_refuses_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b: 1\n  c: [1, 2]\nd:\n  - e\n  - f\n")
    data = read_yaml(path)
    assert data.key_lines == {"a": 1, "d": 4}
    assert data["a"].key_lines == {"b": 2, "c": 3}
    assert data["d"].item_lines == [5, 6]
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(ModelErrors) as caught:
        read_yaml(path)
    assert caught.value.errors[0].line == 3 and "first on line 1" in caught.value.errors[0].message


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ModelErrors) as caught:
        read_yaml(path)
    assert caught.value.errors[0].line == 1


def test_control_characters_are_a_model_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_text("name: a\x00b\n")
    with pytest.raises(ModelErrors) as info:
        read_yaml(path)
    assert "nul.yaml" in str(info.value.errors[0])

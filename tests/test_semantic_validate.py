"""Every validation rule, each with a fixture that breaks it.

A fixture is a models root under fixtures/models_invalid/<case>/; each line that must
be reported carries a trailing `# expect: <field>` comment. The case passes when the
errors are exactly those (file, line, field) triples: no line off by one, no noise.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from semproxy.errors import ModelError
from semproxy.semantic.load import validate_dir
from semproxy.semantic.registry import Category
from semproxy.semantic.validate import LOCAL_RULES, RULES, run_rules

FIXTURES = Path(__file__).parent / "fixtures" / "models_invalid"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")


def expected_errors(root: Path) -> set[tuple[str, int, str]]:
    found: set[tuple[str, int, str]] = set()
    for path in sorted(root.rglob("*.y*ml")):
        for lineno, text in enumerate(path.read_text().splitlines(), start=1):
            if match := EXPECT.search(text):
                found.update((str(path), lineno, f.strip()) for f in match.group(1).split(","))
    return found


def errors_of(root: Path) -> list[ModelError]:
    return validate_dir(root)


@pytest.mark.parametrize("case", CASES)
def test_fixture_reports_exactly_the_marked_lines(case: str) -> None:
    root = FIXTURES / case
    expected = expected_errors(root)
    assert expected, f"fixture {case} marks no expected error"
    errors = errors_of(root)
    assert {(e.file, e.line, e.field) for e in errors} == expected, "\n".join(map(str, errors))
    for error in errors:
        assert error.message.strip() and "Traceback" not in error.message


def message(case: str, field: str) -> str:
    root = FIXTURES / case
    return next(e.message for e in validate_dir(root) if e.field == field)


def test_misspelled_references_suggest_the_close_name() -> None:
    assert "did you mean 'revenue'" in message("metric_type_params", "metrics[1].type_params.measure")
    assert "did you mean 'order_count'" in message("metric_inputs_exist", "metrics[0].type_params.denominator")
    assert "did you mean 'refunded_amount'" in message("metric_inputs_exist", "metrics[1].type_params.metrics[1]")
    assert "did you mean 'order_date'" in message("agg_time_dimension", "defaults.agg_time_dimension")
    assert "did you mean 'customer__region'" in message("filters_reachable", "metrics[1].filter")


def test_messages_name_the_problem() -> None:
    assert "nothing joins through it" in message("filters_reachable", "metrics[2].filter")
    assert "a -> b -> a" in message("derived_cycle", "metrics[0].type_params")
    assert "no agg_time_dimension" in message("time_offsets_have_agg_time", "metrics[0].type_params.measure")
    assert "already defined in" in message("duplicate_model_name", "name")
    assert "'metrics' is reserved" in message("reserved_model_name", "name")
    assert "fortnight" in message("pydantic_types", "dimensions[0].type_params.time_granularity")
    assert "unknown field" in message("pydantic_types", "measures[0].expresion")


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.perf_counter()
    errors = validate_dir(FIXTURES / "billion_laughs")
    assert time.perf_counter() - start < 1.0
    assert "aliases" in errors[0].message


def test_deep_nesting_and_big_files_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "production"
    folder.mkdir()
    (folder / "deep.yaml").write_text("name: " + "[" * 200 + "]" * 200 + "\n")
    (folder / "big.yaml").write_text("name: big\n" + "# padding\n" * 120_000)
    errors = {Path(e.file).name: e for e in validate_dir(tmp_path)}
    assert "nested deeper" in errors["deep.yaml"].message
    assert errors["deep.yaml"].line == 1
    assert "larger than" in errors["big.yaml"].message


def test_folders_other_than_categories(tmp_path: Path) -> None:
    for name in ("templates", "backups", ".git", "finance", "My Models", "pg_temp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.yaml").write_text("not: [valid")
    errors = validate_dir(tmp_path)
    assert sorted(Path(e.file).name for e in errors) == ["My Models", "pg_temp", "x.yaml"]
    assert next(e for e in errors if e.file.endswith("x.yaml")).file == str(tmp_path / "finance" / "x.yaml")


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    assert "does not exist" in validate_dir(tmp_path / "nope")[0].message


def test_rules_are_small_functions_over_a_category() -> None:
    assert set(LOCAL_RULES) <= set(RULES)
    for rule in RULES:
        assert rule.__doc__ and rule(Category("empty")) == []
    assert run_rules(Category("empty")) == []

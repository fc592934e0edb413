"""Rules file validation (contract §5): refusals name the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from scoring.rules import RulesError, rules_from_mapping
from streams.rules_file import load_rules
from tests.bank import DEFAULT_DOC


def refused(mutate: Any) -> str:
    doc = copy.deepcopy(DEFAULT_DOC)
    mutate(doc)
    with pytest.raises(RulesError) as e:
        rules_from_mapping(doc)
    return str(e.value)


def test_default_rules_load() -> None:
    rules = load_rules()
    assert rules.version == "2026-11-01" and rules.windows == (7, 30, 90)
    assert rules.allowed_future_days == 31  # the optional key's default
    assert [t.name for t in rules.segments["retail"].tiers] == ["mass", "gold", "platinum", "diamond", "private"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("own_bank"), "own_bank: required"),
        (lambda d: d["risk"].pop("dormancy"), "risk.dormancy: required"),
        (lambda d: d["segments"].pop("corporate"), "segments.corporate: required"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
        (lambda d: d.update(default_segment="sme"), "default_segment"),
        (lambda d: d.update(allowed_lateness_days=-1), "allowed_lateness_days"),
        (lambda d: d.update(allowed_future_days=0), "allowed_future_days: must be an integer >= 1"),
        (lambda d: d.update(allowed_future_days="31"), "allowed_future_days"),
        (lambda d: d["fx"].update(USD="seven"), "fx.USD"),
        (lambda d: d["segments"]["retail"].update(upgrade_metric="wealth_score"), "segments.retail.upgrade_metric"),
        (lambda d: d["segments"]["retail"]["tiers"][0].update(min="10"), "segments.retail.tiers[0].min"),
        (lambda d: d["segments"]["retail"]["tiers"][2].update(min="50000"), "segments.retail.tiers[2].min"),
        (lambda d: d["segments"]["corporate"].update(downgrade_grace_days="90"), "downgrade_grace_days"),
        (lambda d: d["risk"]["large_outflow"].update(min_amount="1.001"), "risk.large_outflow.min_amount"),
        (lambda d: d["spreads"].pop("loan_spread_bp"), "spreads.loan_spread_bp"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_field(mutate: Any, field: str) -> None:
    assert field in refused(mutate)


def test_an_unquoted_date_version_is_refused_with_a_hint(tmp_path: Path) -> None:
    text = Path("schemas/default_rules.yaml").read_text().replace('version: "2026-11-01"', "version: 2026-11-01")
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=r"version.*quote"):
        load_rules(path)


def test_missing_file_and_bad_yaml_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(bad)


def test_windowed_metrics_of_any_length_are_accepted() -> None:
    doc = copy.deepcopy(DEFAULT_DOC)
    doc["segments"]["corporate"]["upgrade_metric"] = "fee_income_180d"
    rules = rules_from_mapping(doc)
    assert rules.windows == (7, 30, 90, 180) and rules.horizon == 180


def test_the_shipped_file_matches_its_json_schema() -> None:
    import json

    import jsonschema

    schema = json.loads(Path("schemas/json/rules.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(Path("schemas/default_rules.yaml").read_text()), schema)

"""Reading a rules file (YAML) into validated ``scoring.rules.Rules``."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.topics import DEFAULT_RULES
from scoring.rules import Rules, RulesError, rules_from_mapping


def load_rules(path: str | Path | None = None) -> Rules:
    """Load and validate a rules file (the shipped default if ``path`` is None).

    Raises RulesError, naming the file and the field, for anything the rules contract refuses.
    """
    source = Path(path) if path else DEFAULT_RULES
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(f"{source}: cannot read the rules file: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(f"{source}: not valid YAML: {e}") from None
    try:
        return rules_from_mapping(doc)
    except RulesError as e:
        raise RulesError(f"{source}: {e}") from None

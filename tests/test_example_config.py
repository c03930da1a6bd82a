"""The example configuration documents every key and loads as it is."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from optui.config import Settings, load_settings, settings_dict

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "optui.example.toml"


def test_example_lists_every_key_and_loads() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    expected = settings_dict(Settings())
    assert set(data) == set(expected)
    for section, values in expected.items():
        assert set(data[section]) == set(values), section
    loaded = load_settings(EXAMPLE, environ={})
    assert settings_dict(loaded) == expected

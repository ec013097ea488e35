"""Settings: documented in .env.example, validated with messages that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.env_example import render
from services.core.settings import SettingsError
from services.registry import REGISTRY

load_settings = REGISTRY.load_settings

ROOT = Path(__file__).resolve().parents[3]


def test_env_example_documents_every_setting() -> None:
    assert (ROOT / ".env.example").read_text() == render(), "run `python -m scripts.env_example`"
    assert all(field.description for field in REGISTRY.settings_type().model_fields.values())


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AGENT_PORT", "not-a-port"), ("AGENT_PORT", "70000"), ("GRACE_SECONDS", "-1")],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings(_env_file=None)


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURSOR_SECRET", "super-secret-value")
    settings = load_settings(_env_file=None)
    assert "super-secret-value" not in repr(settings)
    assert settings.cursor_secret.get_secret_value() == "super-secret-value"


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    assert load_settings(_env_file=None).cors_allowed_origins == [
        "https://a.example",
        "https://b.example",
    ]


def test_production_refuses_dev_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="CURSOR_SECRET"):
        load_settings(_env_file=None)


def test_cors_origins_accept_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", '["https://a.example"]')
    assert load_settings(_env_file=None).cors_allowed_origins == ["https://a.example"]

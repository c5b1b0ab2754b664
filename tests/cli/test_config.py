"""`hpms config show`: the effective settings, never a password or key."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import ok

KEYS = {
    "home",
    "database_url",
    "backend",
    "config_file",
    "config_file_exists",
    "key_source",
    "default_location",
    "sources",
    "smtp_url",
    "sms_url",
    "public_url",
    "portal_public_url",
    "survey_delay_hours",
    "portal_behind_tls",
    "portal_dev_codes",
    "portal_idle_minutes",
    "portal_session_hours",
    "portal_upload_mb",
    "inbound_email_secret",
    "hl7_sending_app",
    "hl7_sending_facility",
    "hl7_assigning_authority",
}


def test_config_show_json(cli, settings):
    data = ok(cli("config", "show", "--json"))
    assert set(data) == KEYS
    assert data["home"] == str(settings.home)
    assert data["backend"] == ("sqlite" if settings.is_sqlite else "postgresql")
    assert data["sources"]["home"] == "HPMS_HOME"
    assert data["sources"]["database_url"] == ("default" if settings.is_sqlite else "HPMS_DATABASE_URL")
    assert data["key_source"] == str(settings.home / "hpms.key")
    assert data["config_file_exists"] is False
    assert data["smtp_url"] is None and data["sms_url"] is None


def test_messaging_urls_show_without_their_passwords(cli):
    env = {
        "HPMS_SMTP_URL": "smtp+starttls://hpms:s3cret@mail.example.org:587",
        "HPMS_SMS_URL": "https://AC123:tok3n@api.twilio.com",
        "HPMS_PUBLIC_URL": "https://clinic.example.org/",
        "HPMS_INBOUND_EMAIL_SECRET": "hook-s3cret",
    }
    r = cli("config", "show", "--json", env=env)
    data = ok(r)
    assert data["smtp_url"] == "smtp+starttls://hpms:***@mail.example.org:587"
    assert data["sms_url"] == "https://AC123:***@api.twilio.com"
    assert "s3cret" not in r.stdout and "tok3n" not in r.stdout
    assert (
        data["inbound_email_secret"] == "***" and data["sources"]["inbound_email_secret"] == "HPMS_INBOUND_EMAIL_SECRET"
    )
    assert data["sources"]["smtp_url"] == "HPMS_SMTP_URL"
    assert data["public_url"] == "https://clinic.example.org" and data["sources"]["public_url"] == "HPMS_PUBLIC_URL"


def test_config_show_plain(cli, settings):
    r = cli("config", "show")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["home", str(settings.home)]
    assert "source of home: HPMS_HOME" in lines


def test_config_file_values_and_their_source(cli, settings):
    (settings.home / "config.toml").write_text('default_location = "Main"\n', encoding="utf-8")
    data = ok(cli("config", "show", "--json"))
    assert data["default_location"] == "Main"
    assert data["config_file_exists"] is True
    assert data["sources"]["default_location"] == str(settings.home / "config.toml")


def test_config_file_unknown_setting_is_a_usage_error(cli, settings):
    (settings.home / "config.toml").write_text('colour = "blue"\n', encoding="utf-8")
    r = cli("config", "show")
    assert r.exit_code == 2
    assert r.stderr.startswith("hpms: error: ") and "colour" in r.stderr


PASSWORD = "Sup3r-Secret-Pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://hpms:{PASSWORD}@db.example.org:5432/hpms",
        f"postgresql://hpms:{PASSWORD}@db.example.org/hpms",
        f"postgresql+psycopg://hpms@db.example.org/hpms?password={PASSWORD}&sslmode=require",
        f"postgresql+psycopg:///hpms?host=/run/postgresql&password={PASSWORD}",
    ],
    ids=["userinfo", "plain-scheme", "query", "query-no-host"],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["plain", "json"])
def test_config_show_never_prints_password_or_key(fresh_cli, url, as_json):
    from hpms.services.platform.crypto import encode_key, new_key

    key = encode_key(new_key())
    args = ("config", "show", "--json") if as_json else ("config", "show")
    r = fresh_cli(*args, env={"HPMS_DATABASE_URL": url, "HPMS_KEY": key})
    assert r.exit_code == 0, r.stderr
    for secret in (PASSWORD, key):
        assert secret not in r.stdout
        assert secret not in r.stderr
    assert "db.example.org" in r.stdout or "/run/postgresql" in r.stdout
    assert "HPMS_KEY" in r.stdout
    if as_json:
        assert json.loads(r.stdout)["backend"] == "postgresql"


def test_config_file_password_not_printed(cli, settings):
    (settings.home / "config.toml").write_text(
        f'database_url = "postgresql+psycopg://hpms:{PASSWORD}@db.example.org/hpms"\n', encoding="utf-8"
    )
    r = cli("config", "show", "--json", env={"HPMS_DATABASE_URL": ""})
    data = ok(r)
    assert PASSWORD not in r.stdout
    assert data["database_url"] == "postgresql+psycopg://hpms:***@db.example.org/hpms"


@pytest.mark.subprocess
@pytest.mark.parametrize("backend", ["sqlite"])
def test_config_show_subprocess(hpms_proc, settings):
    r = hpms_proc("config", "show", "--json", env={"HPMS_KEY": "c2VjcmV0LWtleS1ub3QtdG8tYmUtcHJpbnRlZC0xMjM="})
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["home"] == str(settings.home)
    assert data["key_source"] == "environment (HPMS_KEY)"
    assert "c2VjcmV0" not in r.stdout

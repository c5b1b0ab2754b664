"""A config file that was named must be there and readable; one holding a password must be private."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import run_subprocess, subprocess_env
from tests.cli.helpers import error_line, ok

PG_WITH_PASSWORD = 'database_url = "postgresql://clinic:s3cret@127.0.0.1:1/hpms"\n'


def nothing_created(home: Path) -> bool:
    return not home.exists() or not any(home.iterdir())


@pytest.mark.parametrize("command", [["patients", "list"], ["init", "--practice", "X", "--yes"], ["whoami"]])
def test_a_missing_config_file_is_an_error_and_nothing_is_created(tmp_path, command):
    home = tmp_path / "home"
    missing = tmp_path / "nope.toml"
    p = run_subprocess(command, subprocess_env(home, HPMS_CONFIG=str(missing)))
    error_line(p, 2, f"config file {missing}", "does not exist")
    assert nothing_created(home)
    assert not missing.exists()


def test_a_directory_is_not_a_config_file(tmp_path):
    home = tmp_path / "home"
    p = run_subprocess(["patients", "list"], subprocess_env(home, HPMS_CONFIG=str(tmp_path)))
    error_line(p, 2, f"config file {tmp_path}", "is a directory")
    assert nothing_created(home)


def test_the_config_option_names_the_file_too(tmp_path):
    home = tmp_path / "home"
    missing = tmp_path / "nope.toml"
    p = run_subprocess(["--config", str(missing), "patients", "list"], subprocess_env(home))
    error_line(p, 2, f"config file {missing}", "does not exist")
    assert nothing_created(home)


def test_the_config_option_is_read(cli, settings, tmp_path):
    config = tmp_path / "chosen.toml"
    config.write_text('default_location = "Main"\n', encoding="utf-8")
    os.chmod(config, 0o600)
    data = ok(cli("--config", str(config), "config", "show", "--json"))
    assert data["config_file"] == str(config)
    assert data["sources"]["default_location"] == str(config)
    # `hpms --config FILE GROUP ...` runs GROUP, not a group named after the file
    env = subprocess_env(settings.home, None if settings.is_sqlite else settings.database_url)
    p = run_subprocess(["--config", str(config), "locations", "list", "--json"], env)
    assert p.exit_code == 0, p.stderr
    assert p.stderr == ""


def test_an_unreadable_config_file_is_an_error(fresh_cli, clean_env, tmp_path, monkeypatch):
    config = tmp_path / "locked.toml"
    config.write_text('default_location = "Main"\n', encoding="utf-8")
    real = Path.read_text

    def denied(self, *args, **kwargs):
        if self == config:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", denied)
    r = fresh_cli("patients", "list", env={"HPMS_CONFIG": str(config)})
    error_line(r, 2, f"config file {config}", "cannot be read", "Permission denied")
    assert nothing_created(clean_env)


def test_a_bad_default_config_file_is_an_error_too(fresh_cli, clean_env):
    clean_env.mkdir()
    (clean_env / "config.toml").mkdir()
    r = fresh_cli("config", "show")
    error_line(r, 2, f"config file {clean_env / 'config.toml'}", "is a directory")
    assert sorted(p.name for p in clean_env.iterdir()) == ["config.toml"]


def test_no_default_config_file_is_fine(fresh_cli, clean_env):
    data = ok(fresh_cli("config", "show", "--json"))
    assert data["config_file_exists"] is False
    assert nothing_created(clean_env)


def warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("hpms: warning:")]


@pytest.mark.parametrize(
    "body",
    [PG_WITH_PASSWORD, 'database_url = "postgresql://clinic@127.0.0.1:1/hpms?password=s3cret"\n'],
)
def test_a_password_readable_by_others_gets_one_warning(fresh_cli, tmp_path, body):
    config = tmp_path / "config.toml"
    config.write_text(body, encoding="utf-8")
    os.chmod(config, 0o644)
    r = fresh_cli("config", "show", "--json", env={"HPMS_CONFIG": str(config)})
    assert r.exit_code == 0, r.stderr
    lines = warnings(r.stderr)
    assert lines == [
        f"hpms: warning: config file {config} holds a password and is readable by others; chmod 600 {config}"
    ]
    assert "s3cret" not in r.stderr + r.stdout


def test_group_readable_is_readable_by_others(fresh_cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(PG_WITH_PASSWORD, encoding="utf-8")
    os.chmod(config, 0o640)
    r = fresh_cli("config", "show", env={"HPMS_CONFIG": str(config)})
    assert r.exit_code == 0, r.stderr
    assert len(warnings(r.stderr)) == 1


def test_a_private_config_file_with_a_password_gets_no_warning(fresh_cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(PG_WITH_PASSWORD, encoding="utf-8")
    os.chmod(config, 0o600)
    r = fresh_cli("config", "show", env={"HPMS_CONFIG": str(config)})
    assert r.exit_code == 0, r.stderr
    assert warnings(r.stderr) == []


def test_a_readable_config_file_without_a_password_gets_no_warning(fresh_cli, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('database_url = "postgresql://clinic@127.0.0.1:1/hpms"\n', encoding="utf-8")
    os.chmod(config, 0o644)
    r = fresh_cli("config", "show", env={"HPMS_CONFIG": str(config)})
    assert r.exit_code == 0, r.stderr
    assert warnings(r.stderr) == []


def test_settings_carry_the_warning_and_print_nothing(tmp_path, capsys):
    from hpms.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(PG_WITH_PASSWORD, encoding="utf-8")
    os.chmod(config, 0o604)
    cfg = load_settings(env={"HPMS_HOME": str(tmp_path / "home"), "HPMS_CONFIG": str(config)})
    assert len(cfg.warnings) == 1 and "readable by others" in cfg.warnings[0]
    assert capsys.readouterr().err == ""

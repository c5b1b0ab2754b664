"""Effective settings: environment first, then the config file, then defaults.

Kept free of heavy imports: every CLI start reads it.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ENV_HOME = "HPMS_HOME"
ENV_DATABASE_URL = "HPMS_DATABASE_URL"
ENV_CONFIG = "HPMS_CONFIG"
ENV_KEY = "HPMS_KEY"
ENV_KEY_FILE = "HPMS_KEY_FILE"
ENV_USER = "HPMS_USER"
ENV_TOKEN = "HPMS_TOKEN"
ENV_SMTP_URL = "HPMS_SMTP_URL"
ENV_SMS_URL = "HPMS_SMS_URL"
ENV_PUBLIC_URL = "HPMS_PUBLIC_URL"
ENV_INBOUND_EMAIL_SECRET = "HPMS_INBOUND_EMAIL_SECRET"

ENV_PORTAL_BEHIND_TLS = "HPMS_PORTAL_BEHIND_TLS"
ENV_PORTAL_DEV_CODES = "HPMS_PORTAL_DEV_CODES"
ENV_PORTAL_PUBLIC_URL = "HPMS_PORTAL_PUBLIC_URL"

CONFIG_KEYS = (
    "database_url",
    "key_file",
    "default_location",
    "smtp_url",
    "sms_url",
    "public_url",
    "portal_behind_tls",
    "portal_dev_codes",
    "portal_idle_minutes",
    "portal_session_hours",
    "portal_upload_mb",
    "portal_public_url",
    "survey_delay_hours",
    "inbound_email_secret",
    "hl7_sending_app",
    "hl7_sending_facility",
    "hl7_assigning_authority",
)


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("hpms", appauthor=False))


def demo_home() -> Path:
    """Where `hpms demo` builds its clinic when told nowhere: beside the default home."""
    base = default_home()
    return base.with_name(base.name + "-demo")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    config_file: Path
    config_file_exists: bool
    key_file: Path
    key_from_env: bool
    default_location: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    # The mail server of outgoing email: smtp://host:25, smtp+starttls://user:pw@host:587 or
    # smtps://user:pw@host:465 (None: email is not set up).
    smtp_url: str | None = None
    # The SMS provider (Twilio's Messages API): https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com
    sms_url: str | None = None
    # Where the providers reach hpms's web server from outside (https://clinic.example.org, the
    # reverse proxy's address): the base of the callback URLs and of their signatures.
    public_url: str | None = None
    # The patient portal: browsers reach it over HTTPS through a reverse proxy (its cookies are
    # then marked Secure); sign-in codes also go to the server log (a development set-up only);
    # a signed-in session ends after this many idle minutes, and this many hours after sign-in.
    portal_behind_tls: bool = False
    portal_dev_codes: bool = False
    portal_idle_minutes: int = 30
    portal_session_hours: int = 12
    # The largest insurance card photo a patient may send with a registration or pre-visit form.
    portal_upload_mb: int = 5
    # Where patients' browsers reach the portal from outside (https://portal.example.org): the
    # base of the links in messages (None: messages carry no links, and no survey is sent).
    portal_public_url: str | None = None
    # Hours after a visit is completed that the satisfaction survey goes (None: no survey).
    survey_delay_hours: int | None = None
    # The shared secret the mail provider's inbound webhook sends (as the password of HTTP basic
    # auth) to POST /hooks/email/inbound (None: that hook refuses every request).
    inbound_email_secret: str | None = None
    # HL7 v2 interfaces: MSH-3 and MSH-4 of the messages hpms sends (the facility: the
    # practice's name when not set), and the assigning authority of its MRNs in PID-3.
    hl7_sending_app: str = "HPMS"
    hl7_sending_facility: str | None = None
    hl7_assigning_authority: str = "HPMS"
    # Problems that do not stop a command (a config file holding a password that others may
    # read); the faces show them.
    warnings: tuple[str, ...] = ()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        return _sqlite_path(self.database_url)

    def public_dict(self) -> dict[str, object]:
        """The settings as a person may see them (`config show`): never a password or a key."""
        return {
            "home": str(self.home),
            "database_url": redact_url(self.database_url),
            "backend": "sqlite" if self.is_sqlite else "postgresql",
            "config_file": str(self.config_file),
            "config_file_exists": self.config_file_exists,
            "key_source": "environment (HPMS_KEY)" if self.key_from_env else str(self.key_file),
            "default_location": self.default_location,
            "smtp_url": redact_url(self.smtp_url) if self.smtp_url else None,
            "sms_url": redact_url(self.sms_url) if self.sms_url else None,
            "public_url": self.public_url,
            "portal_behind_tls": self.portal_behind_tls,
            "portal_dev_codes": self.portal_dev_codes,
            "portal_idle_minutes": self.portal_idle_minutes,
            "portal_session_hours": self.portal_session_hours,
            "portal_upload_mb": self.portal_upload_mb,
            "portal_public_url": self.portal_public_url,
            "survey_delay_hours": self.survey_delay_hours,
            "inbound_email_secret": "***" if self.inbound_email_secret else None,
            "hl7_sending_app": self.hl7_sending_app,
            "hl7_sending_facility": self.hl7_sending_facility,
            "hl7_assigning_authority": self.hl7_assigning_authority,
            "sources": dict(self.sources),
        }


@functools.lru_cache(maxsize=16)
def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database or an in-memory one), worked out
    once per URL: every transaction asks for it."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[1] if "///" in url else ""
    return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def redact_url(url: str) -> str:
    """Hide the password of a database URL, in the user part or a `password=` query parameter."""
    if "://" not in url:
        return url
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def load_settings(env: dict[str, str] | None = None, home: Path | str | None = None) -> Settings:
    """Resolve the settings; a `home` the caller gives beats HPMS_HOME."""
    from hpms.errors import UsageError

    env = dict(os.environ if env is None else env)
    sources: dict[str, str] = {}
    if home is not None:
        home_path, sources["home"] = Path(home), "given"
    elif env.get(ENV_HOME):
        home_path, sources["home"] = Path(env[ENV_HOME]), ENV_HOME
    else:
        home_path, sources["home"] = default_home(), "default"
    home_path = home_path.expanduser()

    named = bool(env.get(ENV_CONFIG))
    if named:
        config_file = Path(env[ENV_CONFIG]).expanduser()
    else:
        config_file = home_path / "config.toml"
    file_values: dict[str, object] = {}
    warnings: list[str] = []
    # A config file that was named must be there: never a silent fallback to a new database.
    # The default one may be absent, but when it is there it must be readable too.
    if named or os.path.lexists(config_file):
        text = _read_config(config_file)
        try:
            file_values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"config file {config_file}: {exc}") from None
        unknown = sorted(set(file_values) - set(CONFIG_KEYS))
        if unknown:
            raise UsageError(f"config file {config_file}: unknown setting {unknown[0]!r}")

    def pick(name: str, env_name: str | None, default: str | None) -> str | None:
        if env_name and env.get(env_name):
            sources[name] = env_name
            return env[env_name]
        if name in file_values:
            sources[name] = str(config_file)
            return str(file_values[name])
        sources[name] = "default"
        return default

    db_default = f"sqlite:///{home_path / 'hpms.db'}"
    database_url = pick("database_url", ENV_DATABASE_URL, db_default) or db_default
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    key_file = Path(pick("key_file", ENV_KEY_FILE, str(home_path / "hpms.key")) or "").expanduser()
    default_location = pick("default_location", None, None)
    smtp_url = pick("smtp_url", ENV_SMTP_URL, None)
    sms_url = pick("sms_url", ENV_SMS_URL, None)
    public_url = pick("public_url", ENV_PUBLIC_URL, None)
    public_url = (public_url.strip().rstrip("/") or None) if public_url else None
    behind_tls = _flag("portal_behind_tls", pick("portal_behind_tls", ENV_PORTAL_BEHIND_TLS, None))
    dev_codes = _flag("portal_dev_codes", pick("portal_dev_codes", ENV_PORTAL_DEV_CODES, None))
    idle_minutes = _count("portal_idle_minutes", pick("portal_idle_minutes", None, None), 30, 1, 24 * 60)
    session_hours = _count("portal_session_hours", pick("portal_session_hours", None, None), 12, 1, 24 * 30)
    upload_mb = _count("portal_upload_mb", pick("portal_upload_mb", None, None), 5, 1, 50)
    portal_url = pick("portal_public_url", ENV_PORTAL_PUBLIC_URL, None)
    portal_url = (portal_url.strip().rstrip("/") or None) if portal_url else None
    if portal_url and not re.match(r"^https?://[^/\s]+(/\S*)?$", portal_url):
        raise UsageError(f"setting portal_public_url: {portal_url!r} is not an http(s):// address")
    delay = pick("survey_delay_hours", None, None)
    survey_delay = _count("survey_delay_hours", delay, 0, 0, 24 * 30) if delay is not None and delay.strip() else None
    inbound_email_secret = pick("inbound_email_secret", ENV_INBOUND_EMAIL_SECRET, None) or None
    hl7_app = _hl7_name("hl7_sending_app", pick("hl7_sending_app", None, None)) or "HPMS"
    hl7_facility = _hl7_name("hl7_sending_facility", pick("hl7_sending_facility", None, None))
    hl7_authority = _hl7_name("hl7_assigning_authority", pick("hl7_assigning_authority", None, None)) or "HPMS"
    if file_values and _holds_password(file_values) and _readable_by_others(config_file):
        warnings.append(
            f"config file {config_file} holds a password and is readable by others; chmod 600 {config_file}"
        )
    return Settings(
        home=home_path,
        database_url=database_url,
        config_file=config_file,
        config_file_exists=config_file.is_file(),
        key_file=key_file,
        key_from_env=bool(env.get(ENV_KEY)),
        default_location=default_location,
        smtp_url=smtp_url,
        sms_url=sms_url,
        public_url=public_url,
        portal_behind_tls=behind_tls,
        portal_dev_codes=dev_codes,
        portal_idle_minutes=idle_minutes,
        portal_session_hours=session_hours,
        portal_upload_mb=upload_mb,
        portal_public_url=portal_url,
        survey_delay_hours=survey_delay,
        inbound_email_secret=inbound_email_secret,
        hl7_sending_app=hl7_app,
        hl7_sending_facility=hl7_facility,
        hl7_assigning_authority=hl7_authority,
        sources=sources,
        warnings=tuple(warnings),
    )


def _flag(name: str, value: str | None) -> bool:
    """A yes/no setting: true/false, yes/no, on/off or 1/0 (absent: no)."""
    from hpms.errors import UsageError

    if value is None:
        return False
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"setting {name}: {value!r} is not true or false")


def _hl7_name(name: str, value: str | None) -> str | None:
    """An HL7 name (an application, a facility): 1 to 20 characters, none of HL7's separators."""
    from hpms.errors import UsageError

    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) > 20 or any(c in text for c in "|^~\\&") or any(ord(c) < 32 for c in text):
        raise UsageError(f"setting {name}: {value!r} must be 1 to 20 characters without | ^ ~ \\ &")
    return text


def _count(name: str, value: str | None, default: int, low: int, high: int) -> int:
    """A whole-number setting from `low` to `high` (absent: `default`)."""
    from hpms.errors import UsageError

    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise UsageError(f"setting {name}: {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise UsageError(f"setting {name}: {number} is not from {low} to {high}")
    return number


def _read_config(path: Path) -> str:
    """The text of a config file; UsageError naming it when it is missing, not a regular file
    or cannot be read."""
    import stat

    from hpms.errors import UsageError

    try:
        st = path.stat()
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UsageError(f"config file {path} is {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"config file {path} cannot be read: {exc.strerror or exc}") from None


def _holds_password(values: dict[str, object]) -> bool:
    url = values.get("database_url")
    if isinstance(url, str) and redact_url(url) != url:
        return True
    return any("password" in str(k).lower() or "secret" in str(k).lower() for k in values)


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & 0o044)
    except OSError:
        return False

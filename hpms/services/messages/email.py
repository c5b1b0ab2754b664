"""Email through SMTP: one recipient per message (never a shared To or Cc), From and Reply-To
from the practice's messaging profile, the server from `smtp_url` in the settings:

    smtp://host:25                       plain (a relay on the same network)
    smtp+starttls://user:password@host:587   STARTTLS, then login
    smtps://user:password@host:465       TLS from the first byte, then login
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from hpms.errors import ValidationError
from hpms.services.messages.transport import Attachment, SendError

SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}
TIMEOUT_S = 30


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # plain, starttls, ssl
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str | None) -> SmtpServer:
    """The server of an `smtp_url`. Raises ValidationError naming `smtp_url`."""
    if not url or not url.strip():
        raise ValidationError("smtp_url", "is not set: email cannot be sent")
    parts = urlsplit(url.strip())
    security = SCHEMES.get(parts.scheme.lower())
    if security is None:
        raise ValidationError("smtp_url", f"scheme {parts.scheme!r} is not one of {', '.join(SCHEMES)}")
    if not parts.hostname:
        raise ValidationError("smtp_url", "names no host")
    try:
        port = parts.port or DEFAULT_PORTS[security]
    except ValueError:
        raise ValidationError("smtp_url", "has a port that is not a number") from None
    return SmtpServer(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpTransport:
    """One SMTP connection, opened on the first message and kept for the next ones."""

    channel = "email"

    def __init__(self, server: SmtpServer, *, sender: str, reply_to: str | None, tls: ssl.SSLContext | None = None):
        self.server = server
        self.sender = sender
        self.reply_to = reply_to
        self._tls = tls
        self._conn: smtplib.SMTP | None = None

    @property
    def tls(self) -> ssl.SSLContext:
        """The TLS settings, made when first needed: loading the system's CA store takes ~30 ms,
        which a plain relay never needs."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        conn: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_S, context=self.tls)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_S)
                if s.security == "starttls":
                    conn.starttls(context=self.tls)
            if s.username:
                conn.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            _drop(conn)
            said = f"the mail server refused the login: {exc.smtp_code} {_text(exc.smtp_error)}"
            raise SendError(said, permanent=False) from None
        except ssl.SSLCertVerificationError as exc:
            _drop(conn)
            said = f"the mail server {s.host}:{s.port} has a certificate that cannot be trusted: {exc.verify_message}"
            raise SendError(said, permanent=False) from None
        except (OSError, smtplib.SMTPException) as exc:
            _drop(conn)
            raise SendError(f"cannot reach the mail server {s.host}:{s.port}: {exc}", permanent=False) from None
        return conn

    def send(
        self,
        *,
        message_id: int,
        recipient: str,
        subject: str | None,
        body: str,
        attachments: tuple[Attachment, ...] = (),
    ) -> str:
        """Hand one message to the server, its files as MIME attachments; returns its
        Message-ID. Raises SendError."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = recipient
        if self.reply_to:
            mail["Reply-To"] = self.reply_to
        mail["Subject"] = subject or ""
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.sender.rpartition("@")[2] or "hpms.invalid"
        mid = make_msgid(idstring=f"hpms-{message_id}", domain=domain)
        mail["Message-ID"] = mid
        mail.set_content(body)
        for a in attachments:
            maintype, _, subtype = a.content_type.partition("/")
            mail.add_attachment(a.data, maintype=maintype, subtype=subtype or "octet-stream", filename=a.filename)
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = self._conn.send_message(mail, from_addr=self.sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self.close()
            said = f"the mail server refused {recipient}: {code} {_text(text)}"
            raise SendError(said, permanent=code >= 500) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            said = f"the mail server answered {exc.smtp_code} {_text(exc.smtp_error)}"
            raise SendError(said, permanent=exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SendError(f"the mail server connection failed: {exc}", permanent=False) from None
        if refused:
            code, text = next(iter(refused.values()))
            raise SendError(f"the mail server refused {recipient}: {code} {_text(text)}", permanent=code >= 500)
        return mid

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None


def _drop(conn: smtplib.SMTP | None) -> None:
    """Close a connection that failed half-way, without a word to the server."""
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

"""SMS through a provider that speaks Twilio's Messages API: `POST
{base}/2010-04-01/Accounts/{sid}/Messages.json` with To, From and Body, basic auth with the
account SID and auth token. The provider is `sms_url` in the settings, the account in its
user part:

    https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com

Refusals that sending again cannot cure (an invalid number, a number that answered STOP) are
permanent; throttling and server errors are retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from hpms.errors import ValidationError
from hpms.services.messages.transport import Attachment, SendError

TIMEOUT_S = 30
# Where hpms's web server takes the provider's reports, under the settings' `public_url`.
STATUS_CALLBACK_PATH = "/hooks/sms/status"
INBOUND_PATH = "/hooks/sms/inbound"
# Twilio error codes after which the same message to the same number can never go.
PERMANENT_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21212,  # invalid 'From' number
        21214,  # 'To' cannot be reached
        21408,  # region not enabled
        21610,  # the recipient unsubscribed (answered STOP)
        21612,  # cannot route to this number
        21614,  # 'To' is not a mobile number
    }
)


@dataclass(frozen=True)
class SmsProvider:
    base: str  # scheme://host[:port]
    account_sid: str
    auth_token: str


def parse_sms_url(url: str | None) -> SmsProvider:
    """The provider of an `sms_url`. Raises ValidationError naming `sms_url`."""
    if not url or not url.strip():
        raise ValidationError("sms_url", "is not set: SMS cannot be sent")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("sms_url", "must be an http(s) URL with the account: https://SID:TOKEN@api.twilio.com")
    if not parts.username or not parts.password:
        raise ValidationError("sms_url", "names no account SID and auth token (https://SID:TOKEN@host)")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise ValidationError("sms_url", "has a port that is not a number") from None
    base = f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
    return SmsProvider(base, urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password))


class TwilioTransport:
    channel = "sms"

    def __init__(self, provider: SmsProvider, *, sender: str, status_callback: str | None = None):
        self.provider = provider
        self.sender = sender
        self.status_callback = status_callback

    def send(
        self,
        *,
        message_id: int,
        recipient: str,
        subject: str | None,
        body: str,
        attachments: tuple[Attachment, ...] = (),
    ) -> str:
        """Post one message; returns its SID. Raises SendError (permanent for an SMS that
        carries files: the outbox takes files for email only)."""
        if attachments:
            raise SendError("an SMS carries no attachments", permanent=True)
        p = self.provider
        url = f"{p.base}/2010-04-01/Accounts/{urllib.parse.quote(p.account_sid)}/Messages.json"
        form = {"To": recipient, "From": self.sender, "Body": body}
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        auth = base64.b64encode(f"{p.account_sid}:{p.auth_token}".encode()).decode()
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the configured provider
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise _refusal(exc) from None
        except (OSError, ValueError) as exc:
            raise SendError(f"cannot reach the SMS provider {p.base}: {exc}", permanent=False) from None
        sid = answer.get("sid") if isinstance(answer, dict) else None
        if not sid:
            raise SendError("the SMS provider answered without a message id", permanent=False)
        return str(sid)

    def close(self) -> None:
        pass


def _refusal(exc: urllib.error.HTTPError) -> SendError:
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        data = {}
    code = data.get("code") if isinstance(data, dict) else None
    text = data.get("message") if isinstance(data, dict) else None
    said = f"the SMS provider refused it: {exc.code}"
    said += (f" error {code}" if code else "") + (f": {text}" if text else "")
    if exc.code == 401:
        return SendError(said + " (check the account SID and auth token)", permanent=False)
    permanent = code in PERMANENT_CODES or (exc.code in (400, 404) and code is None)
    return SendError(said, permanent=bool(permanent))


def status_callback_url(public_url: str | None) -> str | None:
    """The URL the provider is asked to report each message's fate to, or None without a
    `public_url`."""
    return public_url.rstrip("/") + STATUS_CALLBACK_PATH if public_url else None


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64 of the HMAC-SHA1, keyed with the auth token, of the
    full URL followed by each POST parameter's name and value, sorted by name."""
    data = url + "".join(name + value for name, value in sorted(params, key=lambda p: p[0]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_ok(provider: SmsProvider, url: str, params: Iterable[tuple[str, str]], given: str | None) -> bool:
    """Whether `given` (the X-Twilio-Signature header) signs this request with the account's
    auth token; compared in constant time."""
    if not given:
        return False
    return hmac.compare_digest(signature(provider.auth_token, url, params).encode(), given.strip().encode())

"""A loopback HTTP server that speaks Twilio's Messages API as hpms uses it: it checks the
account's basic auth, keeps each request, and answers as Twilio does, with its error codes
(21211 invalid number, 21610 unsubscribed, 20429 too many requests, 20003 bad credentials).
Like Twilio, it can then report a message's fate to the StatusCallback URL it was given, and
hand a patient's SMS to a webhook, both signed with the auth token (X-Twilio-Signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token"


@dataclass
class SmsSink:
    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    sids: list[str] = field(default_factory=list)  # the SID given to each request, in order
    invalid: set[str] = field(default_factory=set)  # 21211
    unsubscribed: set[str] = field(default_factory=set)  # 21610
    throttle: int = 0  # answer 429 to this many requests first
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{SID}:{TOKEN}@127.0.0.1:{self.port}"

    def sent_to(self) -> list[str]:
        with self.lock:
            return [r["To"] for r in self.requests]

    def report(
        self, n: int, status: str, error_code: str | None = None, error_message: str | None = None
    ) -> tuple[int, str]:
        """Post the fate of the `n`-th message taken to the StatusCallback it came with, as
        Twilio does; returns the answer's (status, body)."""
        with self.lock:
            request, sid = self.requests[n], self.sids[n]
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": SID,
            "From": request.get("From", ""),
            "To": request.get("To", ""),
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = error_code
        if error_message is not None:
            form["ErrorMessage"] = error_message
        return post_signed(request["StatusCallback"], form)


def twilio_signature(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + each name and value, sorted by name))."""
    data = url
    for name in sorted(form):
        data += name + form[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post_signed(
    url: str, form: dict[str, str], *, signature: str | None = None, signed_url: str | None = None
) -> tuple[int, str]:
    """POST `form` to `url` as Twilio does, signed for `signed_url` (default: `url`) unless a
    `signature` is given ("" sends none); returns (status, body)."""
    sig = twilio_signature(signed_url or url, form) if signature is None else signature
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sig:
        headers["X-Twilio-Signature"] = sig
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - a loopback test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _error(code: int, message: str, status: int) -> tuple[int, dict[str, object]]:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _handler(sink: SmsSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - the base class's name
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
            expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
            if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
                return self._answer(*_error(20404, "The requested resource was not found", 404))
            if self.headers.get("Authorization") != expected:
                return self._answer(*_error(20003, "Authentication Error - invalid username", 401))
            with sink.lock:
                if sink.throttle > 0:
                    sink.throttle -= 1
                    return self._answer(*_error(20429, "Too Many Requests", 429))
                to = form.get("To", "")
                if to in sink.invalid:
                    return self._answer(*_error(21211, f"The 'To' number {to} is not a valid phone number.", 400))
                if to in sink.unsubscribed:
                    return self._answer(*_error(21610, "Attempt to send to unsubscribed recipient", 400))
                sid = "SM" + secrets.token_hex(16)
                sink.requests.append(form)
                sink.sids.append(sid)
            return self._answer(
                201,
                {
                    "sid": sid,
                    "account_sid": SID,
                    "to": to,
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{SID}/Messages/{sid}.json",
                },
            )

    return Handler


@pytest.fixture
def sms_sink() -> Iterator[SmsSink]:
    sink = SmsSink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(sink))
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()

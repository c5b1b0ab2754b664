"""A real SMTP server on loopback (aiosmtpd) for the tests: it keeps what it receives, refuses
some recipients for good (550) and others for a while (451), and can hold a message before it
answers, so that a sender may be killed while the server has it.

`smtp_tls` starts the same server behind TLS: STARTTLS required before anything else, or TLS
from the first byte (smtps), with a login, and a certificate for 127.0.0.1 and localhost issued
by a private CA made for the test run (`tls_files`, with the `cryptography` package)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # 550 for these recipients
    busy: dict[str, int] = field(default_factory=dict)  # 451 this many times for these
    hold_s: float = 0.0  # wait this long before answering each message
    lock: threading.Lock = field(default_factory=threading.Lock)
    scheme: str = "smtp"  # smtp+starttls, smtps behind TLS
    login: tuple[str, str] | None = None  # the one user and password it accepts
    logins: list[str] = field(default_factory=list)  # who logged in, in order

    @property
    def url(self) -> str:
        return self.url_as(*self.login) if self.login else f"{self.scheme}://{self.host}:{self.port}"

    def url_as(self, user: str, password: str) -> str:
        from urllib.parse import quote

        return f"{self.scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # aiosmtpd's authenticator
        from aiosmtpd.smtp import AuthResult, LoginPassword

        good = (
            self.login is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        if good:
            with self.lock:
                self.logins.append(auth_data.login.decode())
        return AuthResult(success=good, handled=False)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.message["Message-ID"] for r in self.received]

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        if self.busy.get(address, 0) > 0:
            self.busy[address] -= 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        if self.hold_s:
            time.sleep(self.hold_s)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:  # a free port (the controller checks its own with a connection)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    port = _free_port()
    sink = SmtpSink(port=port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the private CA's certificate (PEM): what a client must trust
    cert_file: Path  # the server's certificate for 127.0.0.1 and localhost, issued by that CA
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    """A CA made for this test run and a server certificate it issued (EC keys: quick to make)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hpms test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture
def smtp_tls(tls_files) -> Iterator[Callable[..., SmtpSink]]:
    """smtp_tls("starttls" | "smtps", user=..., password=...) starts a server that takes mail
    only over TLS and after that user's login; its `url` carries the login."""
    from aiosmtpd.controller import Controller

    started: list[Controller] = []

    def start(mode: str = "starttls", *, user: str = "clinic", password: str = "s3cret pw") -> SmtpSink:
        port = _free_port()
        sink = SmtpSink(port=port, scheme="smtp+starttls" if mode == "starttls" else "smtps", login=(user, password))
        common = {"authenticator": sink.authenticate, "auth_required": True, "auth_require_tls": True}
        if mode == "starttls":
            controller = Controller(
                sink,
                hostname="127.0.0.1",
                port=port,
                tls_context=tls_files.server_context(),
                require_starttls=True,
                **common,
            )
        else:
            # TLS from the first byte: aiosmtpd sees no STARTTLS, so it is told the login may go
            common["auth_require_tls"] = False
            controller = Controller(
                sink, hostname="127.0.0.1", port=port, ssl_context=tls_files.server_context(), **common
            )
        controller.start()
        started.append(controller)
        return sink

    try:
        yield start
    finally:
        for controller in started:
            controller.stop()

"""What a sender needs of a channel's provider (SMTP for email, an SMS gateway)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    """A file that goes with an email, decrypted for the send."""

    filename: str
    content_type: str  # e.g. application/pdf
    data: bytes


class SendError(Exception):
    """A message the provider did not take. `permanent`: sending it again cannot help (a bad
    address, an unsubscribed number); otherwise it is retried later."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport(Protocol):
    channel: str

    def send(
        self,
        *,
        message_id: int,
        recipient: str,
        subject: str | None,
        body: str,
        attachments: tuple[Attachment, ...] = (),
    ) -> str:
        """Hand the message over with its files (email only); returns the provider's id of it.
        Raises SendError."""
        ...

    def close(self) -> None: ...

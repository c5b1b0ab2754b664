"""What a sender needs of a channel's provider (SMTP for email, an SMS gateway)."""

from __future__ import annotations

from typing import Protocol


class SendError(Exception):
    """A message the provider did not take. `permanent`: sending it again cannot help (a bad
    address, an unsubscribed number); otherwise it is retried later."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport(Protocol):
    channel: str

    def send(self, *, message_id: int, recipient: str, subject: str | None, body: str) -> str:
        """Hand the message over; returns the provider's id of it. Raises SendError."""
        ...

    def close(self) -> None: ...

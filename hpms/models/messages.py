"""The outbox: every message that leaves hpms (an email, an SMS) is a row written in the same
transaction as the event that causes it, then sent once by the sender; and the practice's
sending identity."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField

CHANNELS = ("email", "sms")
# queued: waiting for its time (or its next attempt); sending: claimed by a sender, not yet
# confirmed; sent: the provider took it; failed: permanently, or out of attempts; cancelled:
# withdrawn before it went; unknown: its sender died between handing it over and recording
# it, so whether it went cannot be known: staff decide (it is never sent again on its own).
# skipped: never to be sent, for the reason in `error` (no consent, no address, too late).
# delivered: the provider reported it reached the handset (an SMS status callback); a message
# the provider reports undelivered after `sent` becomes failed, with the provider's reason.
STATES = ("queued", "sending", "sent", "delivered", "failed", "cancelled", "unknown", "skipped")


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        sa.Index("ix_message_due", "state", "next_attempt_at"),
        sa.Index("ix_message_patient", "patient_id", "created_at"),
        sa.Index("ix_message_appointment", "appointment_id"),
        sa.Index("ix_message_provider", "provider_id"),  # a delivery report finds its message
        sa.UniqueConstraint("org_id", "dedupe_key", name="uq_message_dedupe"),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'unknown', 'skipped')",
            name="ck_message_state",
        ),
        sa.CheckConstraint("channel IN ('email', 'sms')", name="ck_message_channel"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")  # what it reminds of
    channel: str = Field(max_length=8)
    template: str = Field(max_length=64)  # what kind of message: reminder, sign-in code, statement...
    recipient: str = Field(max_length=320)
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(sa_type=sa.Text)
    state: str = Field(default="queued", max_length=16)
    due_at: dt.datetime = UTCField()
    next_attempt_at: dt.datetime = UTCField()
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)  # host:pid of the sender
    claimed_at: dt.datetime | None = UTCField(nullable=True)
    sent_at: dt.datetime | None = UTCField(nullable=True)
    delivered_at: dt.datetime | None = UTCField(nullable=True)  # the provider's delivery report
    provider_id: str | None = Field(default=None, max_length=200)  # the provider's id (Message-ID, SID)
    error: str | None = Field(default=None, max_length=500)
    dedupe_key: str | None = Field(default=None, max_length=200)  # one message per event
    created_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")


ATTACHMENT_KIND = "attachment"  # what the field encryption of an attachment is bound to


class MessageAttachment(SQLModel, table=True):
    """A file that goes with an email (a statement's PDF), kept encrypted until it is sent."""

    __tablename__ = "message_attachment"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)  # application/pdf, text/html
    size: int = 0  # bytes before encryption
    data_enc: str = Field(sa_type=sa.Text)  # the file, base64 then field-encrypted


class MessagingProfile(SQLModel, table=True):
    """The practice's sending identity: the From and Reply-To of its emails."""

    __tablename__ = "messaging_profile"
    org_id: int = Field(foreign_key="organization.id", primary_key=True)
    email_from: str | None = Field(default=None, max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    sms_from: str | None = Field(default=None, max_length=32)  # the practice's SMS number
    # Reminders go only between these local times (the patient's zone, else the location's).
    quiet_until: str = Field(default="08:00", max_length=5, sa_column_kwargs={"server_default": "08:00"})
    quiet_from: str = Field(default="20:00", max_length=5, sa_column_kwargs={"server_default": "20:00"})
    updated_at: dt.datetime = UTCField()


class MessageTemplate(SQLModel, table=True):
    """The practice's wording of one kind of message on one channel, with placeholders such as
    {first_name} and {date} (checked when saved, filled in when queued)."""

    __tablename__ = "message_template"
    org_id: int = Field(foreign_key="organization.id", primary_key=True)
    name: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=8)
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(sa_type=sa.Text)
    updated_at: dt.datetime = UTCField()


class ReminderRule(SQLModel, table=True):
    """Remind `hours_before` a visit by `channel` (email, sms, or the patient's preferred one).
    Rules without a type are the practice's; a type with rules of its own uses only those, and
    a type with a rule of channel `none` gets no reminders."""

    __tablename__ = "reminder_rule"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "type_id", "hours_before", "channel", name="uq_reminder_rule"),
        sa.CheckConstraint("channel IN ('email', 'sms', 'preferred', 'none')", name="ck_reminder_rule_channel"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField()
    type_id: int | None = Field(default=None, foreign_key="appointment_type.id")
    hours_before: int = 0
    channel: str = Field(max_length=16)
    created_at: dt.datetime = UTCField()


class CommEntry(SQLModel, table=True):
    """Something staff record of their contact with a patient: a call, a letter, a note."""

    __tablename__ = "comm_entry"
    __table_args__ = (
        sa.Index("ix_comm_entry_patient", "patient_id", "at"),
        sa.CheckConstraint("kind IN ('call', 'letter', 'note', 'visit')", name="ck_comm_entry_kind"),
        sa.CheckConstraint("direction IN ('in', 'out', 'none')", name="ck_comm_entry_direction"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    patient_id: int = Field(foreign_key="patient.id")
    kind: str = Field(max_length=8)
    direction: str = Field(default="none", max_length=4)
    text: str = Field(max_length=2000)
    at: dt.datetime = UTCField()
    user_id: int | None = Field(default=None, foreign_key="hpms_user.id")


class InboundMessage(SQLModel, table=True):
    """A reply or message from a patient (SMS or email), recorded before it is acted on; the
    provider's id makes a second delivery of the same message change nothing."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "provider_id", name="uq_inbound_provider_id"),
        sa.Index("ix_inbound_open", "org_id", "outcome", "handled_at"),
        sa.Index("ix_inbound_appointment", "appointment_id"),
        sa.Index("ix_inbound_patient", "patient_id", "received_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    channel: str = Field(max_length=8)
    sender: str = Field(max_length=320)
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(sa_type=sa.Text)
    provider_id: str = Field(max_length=200)  # MessageSid, Message-ID
    received_at: dt.datetime = UTCField()
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    reply_to_id: int | None = Field(default=None, foreign_key="message.id")  # the message it answers
    # confirmed, cancelled, unsubscribed, no_change (already so), for_staff, unknown_sender
    outcome: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=500)
    handled_at: dt.datetime | None = UTCField(nullable=True)  # staff looked at it
    handled_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class MessageOut(SQLModel):
    model_config = DEFERRED
    id: int
    patient_id: int | None
    appointment_id: int | None = None
    mrn: str | None = None
    channel: str
    template: str
    recipient: str
    subject: str | None
    state: str
    due_at: dt.datetime
    next_attempt_at: dt.datetime
    attempts: int
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None = None
    provider_id: str | None
    error: str | None
    created_at: dt.datetime

"""HL7 v2 interfaces: the systems hpms sends SIU/ADT messages to (over MLLP or into a folder),
the outbox of those messages (the states of the message outbox), and the ADT messages received
(recorded first, then applied or staged for review)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from hpms.models.base import DEFERRED, OrgField, UTCField

RECEIVER_KINDS = ("mllp", "folder")
EVENT_GROUPS = ("siu", "adt")
# queued: waiting for its time (or its next attempt); sending: a sender holds it; sent: the
# receiver acknowledged it (AA), or it was written to the folder; failed: refused by the
# receiver (AE, AR: the reason in `error`), or out of attempts; cancelled: withdrawn (its
# receiver removed); unknown: the sender stopped after handing it over and before recording
# the answer.
HL7_STATES = ("queued", "sending", "sent", "failed", "cancelled", "unknown")
# received: recorded, not applied yet; created, updated: applied to a patient; staged: waits
# for staff (the match was uncertain); refused: answered AE (nothing applied); dismissed: staff
# let a staged one go.
INBOUND_KIND = "hl7_inbound"  # what the field encryption of a received message is bound to
INBOUND_OUTCOMES = ("received", "created", "updated", "staged", "refused", "dismissed")


class Hl7Receiver(SQLModel, table=True):
    """A system that gets hpms's HL7 messages: an MLLP listener (host, port) or a folder."""

    __tablename__ = "hl7_receiver"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "name", name="uq_hl7_receiver_name"),
        sa.CheckConstraint("kind IN ('mllp', 'folder')", name="ck_hl7_receiver_kind"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=8)
    host: str | None = Field(default=None, max_length=255)
    port: int | None = None
    folder: str | None = Field(default=None, max_length=1000)
    events: str = Field(default="siu,adt", max_length=32)  # the groups it gets: siu, adt
    receiving_app: str = Field(max_length=64)  # MSH-5
    receiving_facility: str = Field(max_length=64)  # MSH-6
    active: bool = True
    created_at: dt.datetime = UTCField()
    last_ack_at: dt.datetime | None = UTCField(nullable=True)
    last_ack_code: str | None = Field(default=None, max_length=2)


class Hl7Message(SQLModel, table=True):
    """One HL7 message for one receiver, written in the transaction of its event; a patient's
    messages to one receiver go in the order they were written."""

    __tablename__ = "hl7_message"
    __table_args__ = (
        sa.Index("ix_hl7_message_due", "state", "next_attempt_at"),
        sa.Index("ix_hl7_message_order", "receiver_id", "patient_id", "id"),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed', 'cancelled', 'unknown')", name="ck_hl7_message_state"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    receiver_id: int = Field(foreign_key="hl7_receiver.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    appointment_id: int | None = Field(default=None, foreign_key="appointment.id")
    event: str = Field(max_length=8)  # S12, S13, S14, S15, S26, A04, A08, A40
    control_id: str = Field(max_length=20)  # MSH-10
    body: str = Field(sa_type=sa.Text)
    state: str = Field(default="queued", max_length=16)
    next_attempt_at: dt.datetime = UTCField()
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)  # host:pid of the sender
    claimed_at: dt.datetime | None = UTCField(nullable=True)
    sent_at: dt.datetime | None = UTCField(nullable=True)
    ack_code: str | None = Field(default=None, max_length=2)  # MSA-1 of the receiver's answer
    ack_at: dt.datetime | None = UTCField(nullable=True)
    error: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = UTCField()
    created_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class Hl7Inbound(SQLModel, table=True):
    """An ADT message received, kept (encrypted: it carries demographics) before it is applied;
    the sender's control id makes a second delivery change nothing."""

    __tablename__ = "hl7_inbound"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "sending_app", "sending_facility", "control_id", name="uq_hl7_inbound_control"),
        sa.Index("ix_hl7_inbound_open", "org_id", "outcome", "handled_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org_id: int = OrgField(index=False)
    sending_app: str = Field(max_length=64)
    sending_facility: str = Field(max_length=64)
    control_id: str = Field(max_length=64)
    event: str = Field(max_length=8)
    raw_enc: str = Field(sa_type=sa.Text)
    received_at: dt.datetime = UTCField()
    outcome: str = Field(max_length=16)
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    note: str | None = Field(default=None, max_length=500)
    handled_at: dt.datetime | None = UTCField(nullable=True)
    handled_by: int | None = Field(default=None, foreign_key="hpms_user.id")


class Hl7ReceiverOut(SQLModel):
    model_config = DEFERRED
    id: int
    name: str
    kind: str
    host: str | None
    port: int | None
    folder: str | None
    events: str
    receiving_app: str
    receiving_facility: str
    active: bool
    last_ack_at: dt.datetime | None


class Hl7MessageOut(SQLModel):
    model_config = DEFERRED
    id: int
    receiver: str | None = None
    receiver_active: bool | None = None  # False: its receiver was removed
    mrn: str | None = None
    event: str
    message_type: str | None = None  # SIU^S12, ADT^A04
    control_id: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    ack_code: str | None
    ack_at: dt.datetime | None
    error: str | None
    created_at: dt.datetime


class Hl7InboundOut(SQLModel):
    model_config = DEFERRED
    id: int
    received_at: dt.datetime
    sending_app: str
    sending_facility: str
    control_id: str
    event: str
    message_type: str | None = None  # ADT^A04
    outcome: str
    patient_id: int | None
    mrn: str | None = None
    note: str | None
    handled_at: dt.datetime | None

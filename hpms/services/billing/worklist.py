"""The billing work list's bookkeeping: a scrubber finding that is still there keeps its open
item (and its age), one that is gone is resolved, a new one gets an item. The billing run keeps
it for the encounters it scrubs, the file writer for the claims it holds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from hpms.db import bulk_insert
from hpms.models import WorklistItem
from hpms.services.billing.scrubber import Finding

# A finding's key: (encounter or claim id, rule id, field, message as stored)
Key = tuple[int, str, str | None, str]
MESSAGE_LENGTH = 500


class Owned(NamedTuple):
    """A finding and what it is about: an encounter not yet billed, or a claim (and its visit)."""

    encounter_id: int | None
    claim_id: int | None
    finding: Finding


def key_of(owner: int, f: Finding) -> Key:
    return (owner, f.rule_id, f.field, f.message[:MESSAGE_LENGTH])


def reconcile(
    session: Session,
    org_id: int,
    now: dt.datetime,
    current: Mapping[Key, Owned],
    kept: set[Key] | Mapping[Key, int],
    gone: list[int],
) -> None:
    """Resolve the items `gone` (ids) and open one for every finding in `current` not `kept`."""
    if gone:
        session.execute(sa.update(WorklistItem).where(col(WorklistItem.id).in_(gone)).values(resolved_at=now))
    rows = [
        dict(
            org_id=org_id,
            encounter_id=owned.encounter_id,
            claim_id=owned.claim_id,
            rule_id=owned.finding.rule_id,
            severity=owned.finding.severity,
            field=owned.finding.field,
            message=key[3],
            created_at=now,
            resolved_at=None,
        )
        for key, owned in current.items()
        if key not in kept
    ]
    if rows:
        bulk_insert(session, WorklistItem.__table__, rows)

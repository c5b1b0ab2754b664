"""The billing run (services, SQLite and PostgreSQL): claims, 837P files that pyx12 accepts,
idempotence, the work list, filters, dry runs, the lock, refusals that bill nothing, and what
happens after the run (resubmission, void, mark submitted)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hpms.errors import LockHeldError, NotFoundError, PermissionDenied, ValidationError
from tests.billing_fixtures import (
    DOS,
    DOS_EARLY,
    GROUP_NPI,
    PROVIDER_NPI,
    assert_valid_837,
    claim_numbers,
    leftovers,
    segments,
    setup_practice,
    signed,
    x12_files,
)
from tests.services.helpers import audit_rows, counts, last_seq, query, scalar

TABLES = ("claim", "claim_line", "claim_event", "x12_file", "billing_run", "worklist_item", "job_lock")


@pytest.fixture
def practice(settings, ctx_for):
    return setup_practice(ctx_for)


@pytest.fixture
def out(tmp_path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def bill(settings, out, **kw):
    from hpms.services.billing import runner as billing

    return billing.run(settings, out_dir=str(out), **kw)


def statuses(settings) -> dict[int, str]:
    return {r["id"]: r["status"] for r in query(settings, "SELECT id, status FROM encounter")}


def state(settings) -> dict:
    """Everything a run may write: row counts, encounter statuses, counters."""
    return {
        **counts(settings, *TABLES),
        "encounters": statuses(settings),
        "counters": query(settings, "SELECT name, value FROM counter ORDER BY name"),
    }


def claims_of(settings, encounter_id: int) -> list[dict]:
    return query(settings, "SELECT * FROM claim WHERE encounter_id = :e ORDER BY id", e=encounter_id)


def lines_of(settings, claim_id: int) -> list[tuple]:
    return [
        (r["seq"], r["code"], r["modifiers"], r["units"], r["pointers"], r["charge_cents"])
        for r in query(settings, "SELECT * FROM claim_line WHERE claim_id = :c ORDER BY seq", c=claim_id)
    ]


def by_payer(files: list[dict]) -> dict[str, dict]:
    return {f["payer"]: f for f in files}


# ---- the happy path ----------------------------------------------------------------------------


def test_a_run_bills_every_signed_encounter_one_file_per_payer(settings, ctx_for, practice, out):
    p = practice
    e1 = signed(ctx_for, p.bob, "E11.9,I10", "99213:25x1:1,2", "36415::1")
    e2 = signed(ctx_for, p.kid, "J06.9", "99214:1")
    e3 = signed(ctx_for, p.bob, "I10,E78.5,R05.9,E11.9,J06.9", "99214:25:1,2,3,4", "93000:59x2:5", "36415:2")
    draft = signed(ctx_for, p.bob, "I10", "99213", sign=False)
    seq0 = last_seq(settings)

    s = bill(settings, out)

    assert (s.encounters, s.claims, s.failed, s.skipped, s.recovered_files) == (3, 3, 0, 0, 0)
    # ACME1 prices 99213 at 100.00 (its own schedule); the rest comes from the default schedule
    assert s.total == Decimal("115.00") + Decimal("180.00") + Decimal("286.00")
    files = by_payer(s.files)
    assert set(files) == {"ACME1", "BETA2"}
    assert (files["ACME1"]["claims"], files["ACME1"]["total"]) == (2, Decimal("401.00"))
    assert (files["BETA2"]["claims"], files["BETA2"]["total"]) == (1, Decimal("180.00"))
    assert [p_.name for p_ in x12_files(out)] == sorted(Path(f["path"]).name for f in s.files)
    assert leftovers(out) == []

    # the database: one original claim per encounter, lines as on the encounter, priced for the payer
    assert statuses(settings) == {e1: "billed", e2: "billed", e3: "billed", draft: "draft"}
    assert scalar(settings, "SELECT count(*) FROM encounter WHERE billed_at IS NOT NULL") == 3
    (c1,), (c2,), (c3,) = claims_of(settings, e1), claims_of(settings, e2), claims_of(settings, e3)
    for c, payer in ((c1, p.acme), (c2, p.beta), (c3, p.acme)):
        assert (c["frequency"], c["status"], c["payer_id"], c["billing_run_id"]) == ("1", "ready", payer, s.run_id)
        assert c["x12_file_id"] is not None and c["coverage_id"] is not None
    assert lines_of(settings, c1["id"]) == [(1, "99213", "25", 1, "1,2", 10000), (2, "36415", "", 1, "1", 1500)]
    assert lines_of(settings, c2["id"]) == [(1, "99214", "", 1, "1", 18000)]
    assert lines_of(settings, c3["id"]) == [
        (1, "99214", "25", 1, "1,2,3,4", 18000),
        (2, "93000", "59", 2, "5", 9100),
        (3, "36415", "", 1, "2", 1500),
    ]
    assert (c1["total_cents"], c2["total_cents"], c3["total_cents"]) == (11500, 18000, 28600)
    assert scalar(settings, "SELECT count(*) FROM claim_event WHERE status = 'ready'") == 3
    assert query(
        settings,
        "SELECT status, claims, encounters, failed, total_cents, finished_at IS NOT NULL AS fin FROM billing_run",
    )[0] == {"status": "done", "claims": 3, "encounters": 3, "failed": 0, "total_cents": 58100, "fin": True}
    assert query(settings, "SELECT count(*) AS n FROM job_lock")[0]["n"] == 0  # released
    assert {r["status"] for r in query(settings, "SELECT status FROM x12_file")} == {"written"}

    # the files: valid for pyx12, and carrying what the scrubber vouched for
    acme = assert_valid_837(files["ACME1"]["path"])
    beta = assert_valid_837(files["BETA2"]["path"])
    assert claim_numbers(acme) == [c1["control_number"], c3["control_number"]]
    assert claim_numbers(beta) == [c2["control_number"]]
    seg = segments(acme)
    assert ["NM1", "85", "2", "TEST CLINIC", "", "", "", "", "XX", GROUP_NPI] in seg
    assert ["N4", "SPRINGFIELD", "NY", "123456789"] in seg
    assert ["REF", "EI", "123456789"] in seg
    assert ["NM1", "82", "1", "SMITH", "ANN", "", "", "", "XX", PROVIDER_NPI] in seg
    clms = [s_ for s_ in seg if s_[0] == "CLM"]
    assert [c[2] for c in clms] == ["115", "286"]
    assert all(c[5] == "11:B:1" for c in clms)
    assert ["HI", "ABK:E119", "ABF:I10"] in seg
    assert ["HI", "ABK:I10", "ABF:E785", "ABF:R059", "ABF:E119", "ABF:J069"] in seg
    sv1 = [s_ for s_ in seg if s_[0] == "SV1"]
    assert [s_[1] for s_ in sv1] == ["HC:99213:25", "HC:36415", "HC:99214:25", "HC:93000:59", "HC:36415"]
    assert [s_[7] for s_ in sv1] == ["1:2", "1", "1:2:3:4", "5", "2"]
    assert sv1[3][2:5] == ["91", "UN", "2"]
    # the dependent child: subscriber Bob (2000B), patient Kid in a 2000C loop
    bseg = segments(beta)
    assert ["HL", "3", "2", "23", "0"] in bseg
    assert any(s_[:5] == ["NM1", "QC", "1", "JONES", "KID"] for s_ in bseg)
    assert any(s_[:5] == ["NM1", "IL", "1", "JONES", "BOB"] for s_ in bseg)
    assert ["PAT", "19"] in bseg

    # audit: the billing of the encounters, the export of each file, the run
    events = audit_rows(settings, seq0)
    bills = [e for e in events if e["action"] == "bill"]
    assert len(bills) == 1 and sorted(int(i) for i in bills[0]["patient_ids_list"]) == sorted(
        {c1["patient_id"], c2["patient_id"]}
    )
    assert sorted(
        int(e["entity_id"]) for e in events if e["action"] == "export" and e["entity"] == "x12_file"
    ) == sorted(f["id"] for f in s.files)
    assert [e["detail"] for e in events if e["action"] == "run"] == [
        "done: 3 claims, 0 failed, 3 written (0 secondary, 0 held), 2 files"
    ]
    assert (s.written, s.secondary, s.held) == (3, 0, 0)

    # a rerun creates nothing twice and leaves the files alone
    before = state(settings)
    texts = {f: f.read_bytes() for f in x12_files(out)}
    again = bill(settings, out)
    assert (again.encounters, again.claims, again.failed, again.files, again.recovered_files) == (0, 0, 0, [], 0)
    after = state(settings)
    assert after["billing_run"] == before["billing_run"] + 1
    assert {k: v for k, v in after.items() if k != "billing_run"} == {
        k: v for k, v in before.items() if k != "billing_run"
    }
    assert {f: f.read_bytes() for f in x12_files(out)} == texts


def test_failures_go_to_the_work_list_and_are_billed_once_fixed(settings, ctx_for, practice, out):
    from hpms.services.billing import claims
    from hpms.services.people import coverage

    p = practice
    ok = signed(ctx_for, p.bob, "I10", "99213:1")
    bad = signed(ctx_for, p.nora, "J06.9", "99214:1")

    s = bill(settings, out)
    assert (s.encounters, s.claims, s.failed) == (2, 1, 1)
    assert statuses(settings) == {ok: "billed", bad: "signed"}
    assert claims_of(settings, bad) == []
    with ctx_for() as ctx:
        items = claims.worklist(ctx)
    assert [(w.encounter_id, w.rule_id, w.field) for w in items] == [(bad, "PAYER-ID", "coverage")]
    assert items[0].patient == "Nora Cover" and items[0].service_date == DOS

    # a rerun without a fix: still failing, still the same open item (it keeps its age)
    item = query(settings, "SELECT id, created_at FROM worklist_item")
    s = bill(settings, out)
    assert (s.encounters, s.claims, s.failed) == (1, 0, 1)
    assert query(settings, "SELECT id, created_at FROM worklist_item WHERE resolved_at IS NULL") == item

    with ctx_for() as ctx:
        coverage.add_coverage(ctx, patient=p.nora, payer="BETA2", member_id="N-777")
    s = bill(settings, out)
    assert (s.encounters, s.claims, s.failed) == (1, 1, 0)
    assert [f["payer"] for f in s.files] == ["BETA2"]
    assert_valid_837(s.files[0]["path"])
    assert statuses(settings)[bad] == "billed"
    assert len(claims_of(settings, bad)) == 1
    assert scalar(settings, "SELECT count(*) FROM worklist_item WHERE resolved_at IS NULL") == 0
    with ctx_for() as ctx:
        assert claims.worklist(ctx) == []


def test_scrub_errors_of_several_rules_are_listed_with_their_ids(settings, ctx_for, practice, out):
    import sqlalchemy as sa

    from hpms.services.billing import claims, drafts, fees

    p = practice
    e = signed(ctx_for, p.bob, "I10", "99214:1")
    # no fee on any schedule for the code: priced at signing, removed afterwards
    with ctx_for() as ctx:
        ctx.session.execute(sa.text("DELETE FROM fee WHERE code = '99214'"))
    s = bill(settings, out)
    assert (s.claims, s.failed) == (0, 1)
    with ctx_for() as ctx:
        rule_ids = sorted(w.rule_id for w in claims.worklist(ctx))
        scrubbed = drafts.scrub_encounters(ctx, [e])
    assert rule_ids == ["FEE-PRESENT"]
    assert [f.rule_id for f in scrubbed[0][1]] == ["FEE-PRESENT"]
    assert statuses(settings)[e] == "signed"
    with ctx_for() as ctx:
        fees.set_fee(ctx, "99214", "150.00")
    s = bill(settings, out)
    assert (s.claims, s.failed, s.total) == (1, 0, Decimal("150.00"))


def _find(segs, tag, *first):
    return [s_ for s_ in segs if s_[0] == tag and tuple(s_[1 : 1 + len(first)]) == first]


def test_payer_rules_filing_indicator_and_the_secondary_coverage_on_primary_claims(settings, ctx_for, practice, out):
    """SBR09 is the payer's claim filing indicator; a primary claim names the patient's secondary
    coverage on the date of service (2320 SBR S + OI, 2330A, 2330B; no AMT or CAS: that payer has
    not adjudicated it), with SBR05 when the secondary payer is Medicare; the subscriber who is
    the patient has the patient's address (2010BA N3/N4)."""
    import datetime as dt

    from hpms.services.people import coverage

    p = practice
    with ctx_for() as ctx:
        coverage.add_payer(ctx, name="Medicare Part B", payer_id="MCRB1", claim_filing="MB")
        coverage.update_payer(ctx, "BETA2", claim_filing="hmo")
        coverage.add_coverage(
            ctx,
            patient=p.bob,
            payer="MCRB1",
            member_id="1EG4TE5MK73",
            priority="secondary",
            medicare_secondary_type="43",
        )
        coverage.add_coverage(
            ctx,
            patient=p.kid,
            payer="ACME1",
            member_id="A777",
            priority="secondary",
            relationship="child",
            subscriber="Jones, Ann",
            group_number="G5",
        )
        coverage.add_coverage(ctx, patient=p.nora, payer="BETA2", member_id="N1")
        coverage.add_coverage(
            ctx,
            patient=p.nora,
            payer="ACME1",
            member_id="N2",
            priority="secondary",
            valid_to=(DOS - dt.timedelta(days=1)).isoformat(),
        )  # ended before the visit
    signed(ctx_for, p.bob, "I10", "99213:1")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    signed(ctx_for, p.nora, "J06.9", "99214:1")
    s = bill(settings, out)
    assert (s.claims, s.written, s.failed) == (3, 3, 0)
    files = by_payer(s.files)

    acme = segments(assert_valid_837(files["ACME1"]["path"]))
    assert _find(acme, "SBR") == [
        ["SBR", "P", "18", "", "", "", "", "", "", "CI"],
        ["SBR", "S", "18", "", "", "43", "", "", "", "MB"],
    ]
    assert _find(acme, "OI") == [["OI", "", "", "Y", "", "", "Y"]]
    assert _find(acme, "NM1", "IL") == [
        ["NM1", "IL", "1", "JONES", "BOB", "", "", "", "MI", "M123456"],
        ["NM1", "IL", "1", "JONES", "BOB", "", "", "", "MI", "1EG4TE5MK73"],
    ]
    assert [s_[-1] for s_ in _find(acme, "NM1", "PR")] == ["ACME1", "MCRB1"]
    assert not _find(acme, "AMT") and not _find(acme, "CAS") and not _find(acme, "SVD")
    i = acme.index(_find(acme, "NM1", "IL")[0])
    assert acme[i + 1] == ["N3", "5 ELM"] and acme[i + 2] == ["N4", "SPRINGFIELD", "NY", "12345"]
    tags = [s_[0] for s_ in acme]
    assert tags.index("CLM") < acme.index(_find(acme, "SBR", "S")[0]) < tags.index("OI") < tags.index("LX")

    beta = segments(assert_valid_837(files["BETA2"]["path"]))
    assert _find(beta, "SBR") == [
        ["SBR", "P", "", "", "", "", "", "", "", "HM"],  # Kid, a dependent
        ["SBR", "S", "19", "G5", "", "", "", "", "", "CI"],
        ["SBR", "P", "18", "", "", "", "", "", "", "HM"],
    ]  # Nora: no secondary then
    assert _find(beta, "NM1", "IL")[1] == ["NM1", "IL", "1", "JONES", "ANN", "", "", "", "MI", "A777"]
    assert [s_[-1] for s_ in _find(beta, "NM1", "PR")] == ["BETA2", "ACME1", "BETA2"]
    assert len(_find(beta, "OI")) == 1 and not _find(beta, "AMT")


def test_an_incomplete_address_holds_the_claim_not_the_file(settings, ctx_for, practice, out):
    from hpms.services.billing import claims
    from hpms.services.people import coverage, patients

    p = practice
    with ctx_for() as ctx:
        una = patients.register(
            ctx,
            first_name="Una",
            last_name="Street",
            dob="1975-03-03",
            sex_at_birth="female",
            address_line1="9 Pine",
            state="Ohio",
            postal_code="1234",
        )
        coverage.add_coverage(ctx, patient=una.mrn, payer="ACME1", member_id="U-1")
    bob = signed(ctx_for, p.bob, "I10", "99213:1")
    bad = signed(ctx_for, una.mrn, "I10", "99213:1")
    dry = bill(settings, out, dry_run=True)
    assert sorted((f["encounter_id"], f["rule_id"], f["field"]) for f in dry.findings) == [
        (bad, "ADDR-PATIENT", "patient.city"),
        (bad, "ADDR-STATE", "patient.state"),
        (bad, "ADDR-ZIP", "patient.postal_code"),
    ]

    s = bill(settings, out)
    assert (s.claims, s.failed, s.written) == (1, 1, 1)
    assert statuses(settings) == {bob: "billed", bad: "signed"}
    [f] = s.files
    assert claim_numbers(assert_valid_837(f["path"])) == [claims_of(settings, bob)[0]["control_number"]]
    with ctx_for() as ctx:
        items = claims.worklist(ctx)
    assert sorted((w.encounter_id, w.claim_id, w.rule_id) for w in items) == [
        (bad, None, "ADDR-PATIENT"),
        (bad, None, "ADDR-STATE"),
        (bad, None, "ADDR-ZIP"),
    ]
    assert all("hpms" not in w.message for w in items)

    with ctx_for() as ctx:
        patients.update(ctx, una.mrn, city="Columbus", state="OH", postal_code="43004-1234")
    s = bill(settings, out)
    assert (s.claims, s.failed, s.written) == (1, 0, 1)
    seg = segments(assert_valid_837(s.files[0]["path"]))
    assert ["N3", "9 PINE"] in seg and ["N4", "COLUMBUS", "OH", "430041234"] in seg
    assert statuses(settings)[bad] == "billed"
    with ctx_for() as ctx:
        assert claims.worklist(ctx) == []


def test_scrubbing_an_unknown_encounter_is_not_found(settings, ctx_for, practice):
    from hpms.errors import Action
    from hpms.services.billing import drafts

    with ctx_for() as ctx, pytest.raises(NotFoundError, match="no encounter 999999") as exc:
        drafts.scrub_encounters(ctx, [999999])
    assert exc.value.action == Action("encounters", "list")


def test_a_billing_location_without_its_address_bills_nothing_from_it(settings, ctx_for, practice, out):
    import sqlalchemy as sa

    from hpms.db import get_engine

    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    with get_engine(settings).begin() as conn:
        conn.execute(sa.text("UPDATE location SET address_line1 = NULL, state = 'N.Y.'"))
    s = bill(settings, out)
    assert (s.claims, s.failed, s.files) == (0, 1, [])
    assert sorted((r["rule_id"], r["field"]) for r in query(settings, "SELECT rule_id, field FROM worklist_item")) == [
        ("ADDR-BILLING", "location.address_line1"),
        ("ADDR-STATE", "location.state"),
    ]
    assert statuses(settings)[e] == "signed"


# ---- options -----------------------------------------------------------------------------------


def test_payer_filter(settings, ctx_for, practice, out):
    p = practice
    eb = signed(ctx_for, p.bob, "I10", "99213:1")
    ek = signed(ctx_for, p.kid, "J06.9", "99214:1")
    s = bill(settings, out, payer="BETA2")
    assert (s.encounters, s.claims, s.skipped) == (1, 1, 1)
    assert [f["payer"] for f in s.files] == ["BETA2"]
    assert statuses(settings) == {eb: "signed", ek: "billed"}
    assert query(settings, "SELECT payer_id FROM billing_run")[0]["payer_id"] == p.beta
    s = bill(settings, out, payer="Acme Health")
    assert (s.encounters, s.claims, s.skipped) == (1, 1, 0)
    assert [f["payer"] for f in s.files] == ["ACME1"]
    assert statuses(settings) == {eb: "billed", ek: "billed"}
    for f in x12_files(out):
        assert_valid_837(f)
    before = state(settings)
    with pytest.raises(NotFoundError, match="no payer 'NOPE9'") as exc:
        bill(settings, out, payer="NOPE9")
    assert exc.value.field == "payer"
    assert state(settings) == before


def test_through(settings, ctx_for, practice, out):
    p = practice
    early = signed(ctx_for, p.bob, "I10", "99213:1", date=DOS_EARLY)
    late = signed(ctx_for, p.bob, "I10", "99213:1")
    s = bill(settings, out, through=DOS_EARLY.isoformat())
    assert (s.encounters, s.claims) == (1, 1)
    assert statuses(settings) == {early: "billed", late: "signed"}
    assert query(settings, "SELECT through FROM billing_run")[0]["through"] in (DOS_EARLY, DOS_EARLY.isoformat())
    s = bill(settings, out)
    assert (s.encounters, s.claims) == (1, 1)
    assert statuses(settings) == {early: "billed", late: "billed"}
    before = state(settings)
    with pytest.raises(ValidationError) as exc:
        bill(settings, out, through="not-a-date")
    assert exc.value.field == "through"
    assert state(settings) == before


def test_dry_run_writes_nothing_and_reports_findings(settings, ctx_for, practice, out):
    p = practice
    signed(ctx_for, p.bob, "I10", "99213:1")
    signed(ctx_for, p.kid, "J06.9", "99214:1")
    bad = signed(ctx_for, p.nora, "J06.9", "99214:1")
    before = state(settings)
    s = bill(settings, out, dry_run=True)
    assert (s.run_id, s.dry_run, s.encounters, s.claims, s.failed, s.files) == (None, True, 3, 2, 1, [])
    assert s.total == Decimal("280.00")
    assert s.findings == [
        {
            "encounter_id": bad,
            "rule_id": "PAYER-ID",
            "field": "coverage",
            "message": "no active insurance coverage on the date of service",
        }
    ]
    assert state(settings) == before
    assert list(out.iterdir()) == []
    # a dry run needs no output directory
    from hpms.services.billing import runner as billing

    assert billing.run(settings, dry_run=True).claims == 2
    assert state(settings) == before


# ---- the lock ----------------------------------------------------------------------------------


def _hold_lock(settings, *, host: str, pid: int, age_minutes: float = 0) -> None:
    import datetime as dt

    from hpms.db import get_engine, session_scope
    from hpms.models import JobLock

    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=age_minutes)
    with session_scope(get_engine(settings)) as session:
        session.add(JobLock(name="billing_run", holder="cron", host=host, pid=pid, acquired_at=at, heartbeat_at=at))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_lock_refuses_the_run(settings, ctx_for, practice, out):
    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    _hold_lock(settings, host=socket.gethostname(), pid=os.getppid())
    before = state(settings)
    with pytest.raises(LockHeldError, match="another billing run holds the lock") as exc:
        bill(settings, out)
    assert exc.value.exit_code == 75
    assert state(settings) == before and statuses(settings)[e] == "signed"
    # another host that renewed its heartbeat 5 minutes ago is alive too
    import sqlalchemy as sa

    from hpms.db import get_engine

    with get_engine(settings).begin() as conn:
        conn.execute(sa.text("DELETE FROM job_lock"))
    _hold_lock(settings, host="elsewhere.example", pid=1, age_minutes=5)
    with pytest.raises(LockHeldError):
        bill(settings, out)
    assert statuses(settings)[e] == "signed"
    # a dry run takes no lock
    assert bill(settings, out, dry_run=True).claims == 1


@pytest.mark.parametrize("holder", ["dead_pid_here", "old_heartbeat_elsewhere"])
def test_a_stale_lock_is_taken_over(settings, ctx_for, practice, out, holder):
    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    if holder == "dead_pid_here":
        _hold_lock(settings, host=socket.gethostname(), pid=_dead_pid())
    else:
        _hold_lock(settings, host="elsewhere.example", pid=os.getpid(), age_minutes=11)
    s = bill(settings, out)
    assert s.claims == 1 and statuses(settings)[e] == "billed"
    assert scalar(settings, "SELECT count(*) FROM job_lock") == 0


# ---- refusals that bill nothing ----------------------------------------------------------------


def _unwritable_dir(tmp_path) -> Path:
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o500)
    try:
        (path / "probe").write_bytes(b"")
    except OSError:
        return path
    (path / "probe").unlink()
    if Path("/sys").is_dir() and not os.access("/sys", os.W_OK | os.X_OK) or _cannot_write("/sys"):
        return Path("/sys")  # running as root: a read-only file system stands in
    pytest.skip("no unwritable directory available (running as root)")


def _cannot_write(directory: str) -> bool:
    try:
        (Path(directory) / f".hpms-probe-{os.getpid()}").write_bytes(b"")
    except OSError:
        return True
    (Path(directory) / f".hpms-probe-{os.getpid()}").unlink()
    return False


@pytest.mark.parametrize("where", ["missing", "a_file", "not_writable", "empty"])
def test_a_bad_output_directory_bills_nothing(settings, ctx_for, practice, tmp_path, where):
    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    target = {
        "missing": lambda: tmp_path / "nope",
        "a_file": lambda: (tmp_path / "f.txt").write_text("x") and tmp_path / "f.txt",
        "not_writable": lambda: _unwritable_dir(tmp_path),
        "empty": lambda: " ",
    }[where]()
    before = state(settings)
    with pytest.raises(ValidationError) as exc:
        bill(settings, target)
    assert exc.value.field == "out"
    assert state(settings) == before
    assert statuses(settings)[e] == "signed"


def test_no_billing_profile(settings, ctx_for, out):
    p = setup_practice(ctx_for, profile=False)
    e = signed(ctx_for, p.bob, "I10", "99213:1")
    before = state(settings)
    with pytest.raises(ValidationError, match="no submitter and receiver") as exc:
        bill(settings, out)
    assert (exc.value.action.noun, exc.value.action.verb) == ("billing", "setup")
    assert state(settings) == before and statuses(settings)[e] == "signed"
    assert list(out.iterdir()) == []
    # the dry run still scrubs, and names the missing tax id
    s = bill(settings, out, dry_run=True)
    assert {f["rule_id"] for f in s.findings} == {"TAX-ID"}


# ---- permissions -------------------------------------------------------------------------------


def test_who_may_run_billing(settings, ctx_for, practice, out, make_user, token_for):
    from hpms.services.billing import claims

    e = signed(ctx_for, practice.bob, "I10", "99213:1")
    make_user("desk", "front_desk")
    make_user("robot", "service")
    desk = {"HPMS_USER": "desk", "HPMS_TOKEN": token_for("desk")}
    robot = {"HPMS_USER": "robot", "HPMS_TOKEN": token_for("robot")}
    before = state(settings)
    with pytest.raises(PermissionDenied):
        bill(settings, out, env=desk)
    with pytest.raises(PermissionDenied):
        bill(settings, out, env=desk, dry_run=True)
    assert state(settings) == before
    with ctx_for("desk") as ctx, pytest.raises(PermissionDenied):
        claims.list_claims(ctx)
    with ctx_for("desk") as ctx, pytest.raises(PermissionDenied):
        claims.worklist(ctx)
    s = bill(settings, out, env=robot)
    assert s.claims == 1 and statuses(settings)[e] == "billed"
    assert_valid_837(s.files[0]["path"])
    run_user = scalar(settings, "SELECT user_id FROM billing_run")
    assert run_user == scalar(settings, "SELECT id FROM hpms_user WHERE username = 'robot'")
    with ctx_for("robot") as ctx, pytest.raises(PermissionDenied):
        claims.show(ctx, 1)


# ---- recovery of files a crashed run left ------------------------------------------------------


def test_files_left_pending_by_a_crash_are_finished(settings, ctx_for, practice, out):
    """The two crash states between recording a file and marking it written, set up by hand:
    not renamed yet (a half-written temp file of the dead process) and renamed but not marked."""
    import sqlalchemy as sa

    from hpms.db import get_engine

    signed(ctx_for, practice.bob, "I10", "99213:1")
    signed(ctx_for, practice.kid, "J06.9", "99214:1")
    s = bill(settings, out)
    files = by_payer(s.files)
    lost, renamed = Path(files["ACME1"]["path"]), Path(files["BETA2"]["path"])
    original = lost.read_bytes()
    lost.unlink()
    stale = out / f".{lost.name}.999999.tmp"
    stale.write_bytes(original[:100])
    with get_engine(settings).begin() as conn:
        conn.execute(sa.text("UPDATE x12_file SET status = 'pending', total_cents = 0"))
    before = {k: v for k, v in state(settings).items() if k != "billing_run"}

    again = bill(settings, out)
    assert (again.claims, again.recovered_files) == (0, 2)
    assert [(f["payer"], f.get("recovered")) for f in again.files] == [("ACME1", True)]
    assert lost.read_bytes() == original  # the same file again: same control numbers, same claims
    assert renamed.exists() and leftovers(out) == []
    assert query(settings, "SELECT status, claims, total_cents FROM x12_file ORDER BY id") == [
        {"status": "written", "claims": 1, "total_cents": 10000},
        {"status": "written", "claims": 1, "total_cents": 18000},
    ]
    assert {k: v for k, v in state(settings).items() if k != "billing_run"} == before
    assert_valid_837(lost)

"""The practice's wording of its messages: placeholders from a fixed list, checked on save."""

from __future__ import annotations

import pytest

from tests.cli.helpers import error_line, ok


def test_built_in_wording_until_the_practice_saves_its_own(cli, counts):
    data = ok(cli("messages", "templates", "--json"))
    rows = {(t["name"], t["channel"]): t for t in data["templates"]}
    assert set(rows) == {
        ("reminder", "email"),
        ("reminder", "sms"),
        ("statement", "email"),
        ("survey", "email"),
        ("survey", "sms"),
    }
    assert "{survey_link}" in rows["survey", "sms"]["body"] and "manage_link" in data["placeholders"]["reminder"]
    assert "manage_link" not in data["placeholders"]["survey"]
    assert not any(t["custom"] for t in rows.values())
    assert "{date}" in rows["reminder", "sms"]["body"] and "first_name" in data["placeholders"]["reminder"]
    assert "{amount_due}" in rows["statement", "email"]["body"]
    assert "amount_due" in data["placeholders"]["statement"] and "amount_due" not in data["placeholders"]["reminder"]
    body = "{practice}: see you {date} at {time}. Reply C to confirm."
    saved = ok(cli("messages", "template", "reminder", "sms", "--body", body, "--json"))
    assert saved == {"name": "reminder", "channel": "sms", "subject": None, "body": body, "custom": True}
    assert ok(cli("messages", "templates", "--json"))["templates"][1]["body"] == body
    back = ok(cli("messages", "template", "reminder", "sms", "--reset", "--json"))
    assert back["custom"] is False
    error_line(cli("messages", "template", "reminder", "sms", "--reset"), 3, "no reminder template of its own")


def test_an_email_template_from_a_file(cli, tmp_path):
    f = tmp_path / "reminder.txt"
    f.write_text("Dear {first_name},\nsee you on {date} at {time} with {provider}.\n", encoding="utf-8")
    out = ok(
        cli("messages", "template", "reminder", "email", "--body-file", str(f), "--subject", "Visit {date}", "--json")
    )
    assert out["subject"] == "Visit {date}" and out["body"].startswith("Dear {first_name},")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--body", "Your {diagnosis} visit"), ["--body", "unknown placeholder {diagnosis}", "{first_name}"]),
        (("--body", "Visit {date:%d}"), ["--body", "takes no format"]),
        (("--body", "Visit {date"), ["--body", "brace"]),
        (("--body", "   "), ["--body", "is empty"]),
        (("--body", "x" * 321), ["--body", "at most 320"]),
        (("--body", "Visit {date}", "--subject", "Hi"), ["--subject", "no subject"]),
    ],
)
def test_bad_sms_templates_are_refused_naming_the_field(cli, counts, args, words):
    before = counts("message_template", "audit_event")
    error_line(cli("messages", "template", "reminder", "sms", *args), 2, *words)
    assert counts("message_template", "audit_event") == before


def test_a_bad_subject_placeholder_and_unknown_kind(cli, counts):
    before = counts("message_template")
    error_line(
        cli("messages", "template", "reminder", "email", "--body", "x", "--subject", "{amount} due"),
        2,
        "--subject",
        "unknown placeholder {amount}",
    )
    error_line(cli("messages", "template", "invoice", "email", "--body", "x"), 2, "KIND", "'invoice'")
    error_line(cli("messages", "template", "reminder", "fax", "--body", "x"), 2, "CHANNEL", "'fax'")
    error_line(cli("messages", "template", "reminder", "sms"), 2, "one of --body, --body-file and --reset")
    assert counts("message_template") == before


def test_only_the_admin_sets_the_wording(cli, as_user):
    error_line(
        cli("messages", "template", "reminder", "sms", "--body", "x", env=as_user("desk", "front_desk")),
        5,
        "set up messaging",
    )


def test_render_fills_every_placeholder():
    from hpms.services.messages.templates import DEFAULTS, PLACEHOLDERS, Template, render

    subject, body = DEFAULTS["reminder", "email"]
    values = {name: f"<{name}>" for name in PLACEHOLDERS}
    got_subject, got_body = render(Template("reminder", "email", subject, body, False), values)
    assert got_subject == "Your visit on <date> at <time>"
    assert "{" not in got_body and "<provider>" in got_body
    assert render(Template("reminder", "sms", None, "{first_name}!", True), {})[1] == "!"

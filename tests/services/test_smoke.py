from tests.conftest import count_rows


def test_register_and_show(ctx_for, settings):
    from hpms.services.people import patients

    with ctx_for() as ctx:
        p = patients.register(ctx, first_name="Ana", last_name="Müller", dob="1985-03-14", ssn="123-45-6789")
    with ctx_for() as ctx:
        out = patients.show(ctx, p.mrn)
    assert out.last_name == "Müller"
    assert out.ssn_masked == "***-**-6789"
    assert count_rows(settings, "patient") == 1


def test_cli_register(cli):
    r = cli("patients", "register", "--first-name", "A", "--last-name", "B", "--dob", "2000-01-01", "--json")
    assert r.exit_code == 0, r.output
    r = cli("patients", "register", "--first-name", "A", "--last-name", "B", "--dob", "2026-02-30")
    assert r.exit_code == 2
    assert "dob" in r.stderr

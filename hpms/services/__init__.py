"""The one place for rules, queries, permissions and audit. Faces (CLI, TUI, portal, workers)
call these.

Service functions take a `Ctx` (session + acting user + clock + settings) and keyword
arguments, never commit, and return plain output models. They speak facts: errors are
`hpms.errors` exceptions with a kind, the field at fault, a plain message and, where there is
one, the next step as an `Action`; never a face's words (no option names, no commands).

By domain, lower layers first (a package imports only those before it, and `lookups`):

- `platform`: context, authentication, permissions, audit, crypto, counters, validation, local
  time, the organization and its locations, users, set-up and backups;
- `lookups`: finding the things a request names (patient, provider, location, payer, claim...);
- `people`: patients, their import, payers and coverage, surveys;
- `scheduling`: resources, hours, booking, series, the waitlist, views of the calendar;
- `billing`: codes, fees, encounters, the scrubber, the billing run, claims, eligibility;
- `payments`: the ledger, remittances, denials, patient payments, statements;
- `reports`: the report registry and its reports;
- `demo`: a demo clinic built through all of the above.
"""

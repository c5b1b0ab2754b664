"""The patient portal's rules: passwordless sign-in with one-time codes, signed-in sessions and
their expiry, the sign-in throttle, what a signed-in patient sees, and the guardians who may
act for other patients (access.py, proxies.py); the patient's balance, statements and past
visits (account.py); signed, expiring links in messages (links.py) and what they open without
a sign-in: one visit to cancel or move, one visit's survey (linked.py)."""

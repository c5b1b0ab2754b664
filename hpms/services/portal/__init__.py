"""The patient portal's rules: passwordless sign-in with one-time codes, signed-in sessions and
their expiry, the sign-in throttle, what a signed-in patient sees, and the guardians who may
act for other patients (access.py, proxies.py)."""

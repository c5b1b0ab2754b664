"""National Provider Identifier check digit: Luhn over the number prefixed with 80840."""

from __future__ import annotations


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_npi(value: str) -> bool:
    return len(value) == 10 and value.isdigit() and luhn_ok("80840" + value)

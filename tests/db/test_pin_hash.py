"""Stored PINs: salted PBKDF2, constant-time comparison, malformed values never match."""

from __future__ import annotations

import pytest

from db.pin_hash import MAX_ITERATIONS, hash_pin, pin_matches
from db.seed import DEMO_CUSTOMERS, DEMO_PINS


def test_a_pin_matches_its_hash_and_nothing_else() -> None:
    stored = hash_pin("1234", iterations=1000)
    assert pin_matches("1234", stored)
    assert not pin_matches("1235", stored) and not pin_matches("12345", stored) and not pin_matches("", stored)
    assert "1234" not in stored


def test_the_same_pin_gets_a_different_salt_each_time() -> None:
    assert hash_pin("1234", iterations=1000) != hash_pin("1234", iterations=1000)


@pytest.mark.parametrize(
    "stored",
    [None, 1234, "", "1234", "md5$1$00$00", "pbkdf2_sha256$x$00$00", "pbkdf2_sha256$1000$zz$00",
     f"pbkdf2_sha256${MAX_ITERATIONS + 1}$00$00", "pbkdf2_sha256$1000$00$"],
)  # fmt: skip
def test_malformed_stored_values_never_match(stored: object) -> None:
    assert not pin_matches("1234", stored)


@pytest.mark.parametrize("pin", ["123", "12a4", "1" * 13, "١٢٣٤"])
def test_only_digit_pins_can_be_hashed(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 12 digits"):
        hash_pin(pin)


def test_the_demo_customers_pins_are_stored_hashed() -> None:
    for customer in DEMO_CUSTOMERS:
        pin = DEMO_PINS[str(customer["customer_id"])]
        assert pin_matches(pin, customer["pin_hash"]) and pin not in str(customer["pin_hash"])

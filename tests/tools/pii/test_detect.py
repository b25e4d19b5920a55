"""Finding card numbers, social security numbers and declared patterns, written or spoken."""

from __future__ import annotations

import pytest

from tools.pii import CARD_NUMBER, SOCIAL_SECURITY_NUMBER, PiiPattern, Redactor, digit_runs, luhn_valid
from tools.pii.detect import MAX_SCAN_CHARS

VISA = "4111111111111111"
MASTERCARD = "5500000000000004"
AMEX = "378282246310005"


def found(text: str, redactor: Redactor | None = None) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in (redactor or Redactor()).find(text)]


@pytest.mark.parametrize("number", [VISA, MASTERCARD, AMEX, "6011111111111117", "4222222222222"])
def test_luhn_accepts_real_test_card_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "", "4111-1111"])
def test_luhn_refuses_other_digits(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "text",
    [
        "My card number is 4111 1111 1111 1111.",
        "it's 4111-1111-1111-1111",
        "4111111111111111",
        "four one one one, one one one one, one one one one, one one one one",
        "Four one one one one one one one one one one one one one one one.",
        "4111 one one one one 1111 one one one one",
        "four one double one, double one double one, one one one one, one one one one",
    ],
)
def test_a_card_number_is_found_however_whisper_writes_it(text: str) -> None:
    assert found(text) == [(CARD_NUMBER, VISA)]


def test_the_span_covers_only_the_number() -> None:
    text = "My card number is 4111 1111 1111 1111, expiry next year."
    [finding] = Redactor().find(text)
    assert text[finding.start : finding.end] == "4111 1111 1111 1111"


def test_two_cards_in_one_breath_are_two_findings() -> None:
    assert found(f"{VISA} and {MASTERCARD}") == [(CARD_NUMBER, VISA), (CARD_NUMBER, MASTERCARD)]


def test_a_card_followed_by_more_digits_is_still_found() -> None:
    assert found("4111 1111 1111 1111, 12 29") == [(CARD_NUMBER, VISA)]


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("My car number is 4539148 803 43646", "453914880343646"),  # tiny.en on Kokoro: a digit lost
        ("My card number is 4111 1111 1111 11112.", "41111111111111112"),  # one digit heard twice
        ("The Visa is four one one one one one one one", "41111111"),  # the first half of a card
        ("credit card, um, 45391", "45391"),
        ("Mastercard: 5500 0000 0000 0005", "5500000000000005"),
        ("my credit card, I have 4539 1488 0343 6468 0427", "45391488034364680427"),  # and its expiry
    ],
)
def test_digits_after_a_card_cue_are_a_card_whatever_their_check_digit(text: str, digits: str) -> None:
    """Whisper drops or doubles a digit of a card read aloud, and a caller who pauses mid-card says
    part of it in one turn: neither passes the Luhn check, and neither may reach the model."""
    assert found(text) == [(CARD_NUMBER, digits)]


def test_a_valid_card_after_a_cue_keeps_its_own_digits() -> None:
    assert found("My card number is 4111 1111 1111 1111, 12 29") == [(CARD_NUMBER, VISA)]


@pytest.mark.parametrize(
    "text",
    [
        "My card ends in 4467.",  # the last four, as a receipt shows them
        "Card declined at 1230 today, and my order number is 453914880343646",  # no cue near the run
        "My social security number is 123 45 6789, and my card is in my wallet",
    ],
)
def test_card_cues_take_only_card_sized_runs_close_behind_them(text: str) -> None:
    assert CARD_NUMBER not in [kind for kind, _ in found(text)]


@pytest.mark.parametrize(
    "text",
    [
        "My order number is 50004.",
        "4111 1111 1111 1112",  # fails the check digit
        "call me on 555 0101",
        "one two three four five",
        "it is 12:30 on 2026-11-30",
        "Oh, I see. One moment.",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "my ssn is 123-45-6789",
        "123-45-6789",
        "My social security number is 123 45 6789.",
        "my social is one two three four five six seven eight nine",
        "Social security: 123456789",
    ],
)
def test_a_social_security_number_is_found(text: str) -> None:
    assert found(text) == [(SOCIAL_SECURITY_NUMBER, "123456789")]


def test_nine_digits_without_the_words_are_not_an_ssn() -> None:
    assert found("my account is 123 45 6789") == []


def test_declared_patterns_find_their_label() -> None:
    redactor = Redactor([PiiPattern(label="member id", pattern=r"M-\d{6}")])
    assert found("I'm member M-123456, card 4111111111111111", redactor) == [
        ("member id", "M-123456"),
        (CARD_NUMBER, VISA),
    ]


def test_overlapping_findings_keep_the_earliest() -> None:
    redactor = Redactor([PiiPattern(label="long number", pattern=r"\d{16}")])
    assert found(VISA, redactor) == [(CARD_NUMBER, VISA)]  # same span: one finding


def test_scrub_names_the_kind_without_a_vault() -> None:
    assert Redactor().scrub("card 4111 1111 1111 1111 ok") == "card [card number] ok"


def test_text_past_the_scan_bound_is_withheld_whole() -> None:
    assert "4111" not in Redactor().scrub("x" * MAX_SCAN_CHARS + VISA)


def test_digit_runs_break_at_words() -> None:
    assert [run.digits for run in digit_runs("order 123 and 4-5-6, seven eight")] == ["123", "45678"]

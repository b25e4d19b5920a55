"""One call's secrets: placeholders for the model, the values for the tools, a bound on how many."""

from __future__ import annotations

import json

from tools.pii import KEYPAD_ENTRY, PiiPattern, Redactor, SecretVault, active_vault, mask_for_logs

VISA = "4111111111111111"


def test_a_value_becomes_a_numbered_placeholder_and_comes_back_the_same() -> None:
    vault = SecretVault()
    first = vault.redact("my card is 4111 1111 1111 1111")
    again = vault.redact("again: four one one one one one one one one one one one one one one one")
    assert first == "my card is [card number 1]"
    assert again == "again: [card number 1]"
    assert len(vault) == 1


def test_kinds_are_numbered_apart() -> None:
    vault = SecretVault()
    assert vault.keep(KEYPAD_ENTRY, "12345") == "[keypad entry 1]"
    assert vault.redact("5500 0000 0000 0004") == "[card number 1]"
    assert vault.keep(KEYPAD_ENTRY, "9876") == "[keypad entry 2]"


def test_reveal_gives_the_values_and_leaves_unknown_placeholders() -> None:
    vault = SecretVault()
    vault.redact(VISA)
    assert vault.reveal("charge [card number 1], not [card number 7]") == f"charge {VISA}, not [card number 7]"


def test_reveal_json_escapes_what_it_puts_in() -> None:
    vault = SecretVault(Redactor([PiiPattern(label="note", pattern=r'say ".*?"')]))
    vault.redact('he said: say "hi\\there"')
    raw = json.dumps({"text": "[note 1]"})
    assert json.loads(vault.reveal_json(raw)) == {"text": 'say "hi\\there"'}


def test_a_held_value_is_redacted_wherever_it_shows_up_again() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "12345")
    assert vault.redact('{"order": "12345", "other": "123456"}') == '{"order": "[keypad entry 1]", "other": "123456"}'


def test_a_short_keypad_entry_does_not_blank_every_digit() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "1")
    assert vault.redact("press 1 for sales") == "press 1 for sales"


def test_past_the_bound_values_are_still_hidden_but_not_kept() -> None:
    vault = SecretVault(max_secrets=1)
    assert vault.keep(KEYPAD_ENTRY, "1111") == "[keypad entry 1]"
    assert vault.redact(f"card {VISA}") == "card [card number]"
    assert len(vault) == 1 and vault.overflowed == 1
    assert vault.reveal("[card number]") == "[card number]"


def test_mask_keeps_nothing_new() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "24680")
    assert vault.mask(f"typed 24680 and {VISA}") == "typed [keypad entry 1] and [card number]"
    assert len(vault) == 1


def test_logs_mask_the_current_calls_secrets() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "24680")
    assert mask_for_logs("typed 24680") == "typed 24680"  # no call here: only the detectors run
    token = active_vault.set(vault)
    try:
        assert mask_for_logs(f"typed 24680, card {VISA}") == "typed [keypad entry 1], card [card number]"
    finally:
        active_vault.reset(token)


# -- a card read out over two turns -------------------------------------------------------------

CARD = "4539148803436467"


def caller_turns(vault: SecretVault, *turns: str) -> list[str]:
    """Each caller turn redacted as the session does: knowing the turn before it."""
    redacted: list[str] = []
    for text in turns:
        redacted.append(vault.redact(text, follows=redacted[-1] if redacted else None))
    return redacted


def test_the_rest_of_a_card_in_the_next_turn_is_kept_with_its_first_part() -> None:
    vault = SecretVault()
    first, second = caller_turns(vault, "My card number is 4539 1488.", "0343 6467.")
    assert (first, second) == ("My card number is [card number 1].", "[card number 2].")
    assert vault.reveal("[card number 2]") == CARD
    assert vault.reveal("[card number 1]") == "45391488"


def test_a_card_read_in_three_parts_is_put_together() -> None:
    vault = SecretVault()
    turns = caller_turns(vault, "My visa is four five three nine", "one four eight eight, oh three", "and 436467")
    assert turns == ["My visa is four five three nine", "[card number 1]", "and [card number 2]"]
    assert vault.reveal("[card number 2]") == CARD


def test_a_turn_that_does_not_open_with_digits_is_not_the_rest_of_a_card() -> None:
    vault = SecretVault()
    turns = caller_turns(vault, "My card ends in 4467.", "And my zip code is 77401.")
    assert turns == ["My card ends in 4467.", "And my zip code is 77401."]


def test_a_whole_card_is_not_continued() -> None:
    vault = SecretVault()
    turns = caller_turns(vault, f"My card number is {CARD}.", "1229")
    assert turns == ["My card number is [card number 1].", "1229"]  # its expiry date, say


def test_digits_past_what_a_card_holds_are_not_its_rest() -> None:
    vault = SecretVault()
    turns = caller_turns(vault, "My card number is 4539 1488 0343", "1234 5678")
    assert turns == ["My card number is [card number 1]", "1234 5678"]

"""The end-of-turn decision: the model's probability moved by what the early transcript's words say."""

from __future__ import annotations

import math

import pytest

from agents.conversation.end_of_turn import (
    RULE,
    Hint,
    Rule,
    completion,
    dictating_number,
    ends_in_number,
    known_lengths,
    trailing_number,
    transcript_hint,
    turn_is_over,
    words_of,
)


@pytest.mark.parametrize(
    "text",
    [
        "I ordered a blue jacket and",
        "I can't make it on Monday because",
        "Um,",
        "uh",
        "My account number is",
        "I'd like to book an appointment for",
        "My account number is 774.",
        "My account number is seven seven four.",
        "You can reach me at 555,",
        "The card ends in 6 1",
        "I'd like to pay my bill, but the",
        "Let me see,",
        "Let me see.",
        "My zip code is 941.",
        "I'm calling about",
    ],
)
def test_unfinished_words_say_wait(text: str) -> None:
    assert transcript_hint(text) is Hint.INCOMPLETE


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("What time do you open tomorrow?", Hint.COMPLETE),
        ("Yes, that's correct.", Hint.COMPLETE),
        ("What are you looking for?", Hint.COMPLETE),
        ("The package was left at the door.", Hint.STATEMENT),
        ("Yes.", Hint.COMPLETE),
        ("Okay, sounds good.", Hint.STATEMENT),
        ("No, no.", Hint.COMPLETE),
        ("I received the wrong item in my package.", Hint.STATEMENT),
        ("I received the wrong item in my package", Hint.NEUTRAL),
        ("", Hint.NEUTRAL),
        ("  ...  ", Hint.NEUTRAL),
        ("I have 2 dogs.", Hint.STATEMENT),  # digits without a number context are not dictation
        ("I forgot my password and can't log in.", Hint.STATEMENT),  # "in" finishes "log in"
        ("My zip code is 941-07.", Hint.STATEMENT),  # a zip code of five digits is finished
        ("The card ends in 6188.", Hint.STATEMENT),
        ("Mm-hmm.", Hint.COMPLETE),  # a yes, though "hmm" alone is a caller thinking
        ("Uh-huh", Hint.COMPLETE),
        ("Mhm.", Hint.COMPLETE),
        ("Mm-hmm,", Hint.INCOMPLETE),
        ("Hmm.", Hint.INCOMPLETE),
    ],
)
def test_finished_words(text: str, hint: Hint) -> None:
    assert transcript_hint(text) is hint


def test_words_and_number_dictation() -> None:
    assert words_of("I\u2019m at 555-812, OK?") == ["i'm", "at", "555", "812", "ok"]
    assert dictating_number(words_of("my zip code is nine four one"))
    assert not dictating_number(words_of("nine four one"))  # no context: an answer, maybe complete
    assert not dictating_number(words_of("my number is nine four one, thanks"))
    assert dictating_number(words_of("the card ends in six one"))
    assert not dictating_number(words_of("the card ends in six one eight eight"))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("My car number is 4539148 803 43646", True),  # Whisper's words for a card read out, cut in a pause
        ("4539 1488", True),  # no cue word, but too many digits for an answer
        ("four five three nine", True),
        ("my zip code is nine four", True),
        ("my zip code is 94107.", False),  # a zip code's known length: finished
        ("My card number is 4111 1111 1111 1111.", False),  # a whole card (Luhn-valid): finished
        ("four one one one one one one one one one one one one one one one", False),
        ("My card number is 4111 1111 1111 111", True),  # one digit short
        ("I'd like two.", False),
        ("Room 12", False),
        ("It costs 500 dollars", False),
        ("", False),
    ],
)
def test_a_transcript_ends_in_a_number_still_being_read_out(text: str, number: bool) -> None:
    assert ends_in_number(text) is number


def test_words_move_the_probability_both_ways() -> None:
    trusting = Rule(model_weight=1.0)
    assert trusting.completion(0.5, None) == trusting.completion(0.5, "It arrived")  # no words: neutral ones
    assert trusting.completion(0.9, "My account number is seven seven four") < 0.5
    question, statement, unpunctuated, joined = (
        trusting.completion(0.5, text)
        for text in ("What is the status of my order?", "It arrived.", "It arrived", "It arrived and")
    )
    assert question > statement > unpunctuated > joined
    assert trusting.completion(0.5, "Sure.") == question  # a short answer is as sure as a question
    assert completion(0.5, "It arrived.") > completion(0.5, "It arrived") > completion(0.5, "It arrived and")
    # extreme probabilities stay finite
    assert 0.0 < trusting.completion(0.0, "and") < trusting.completion(1.0, "and") < 1.0


def test_silence_adds_evidence_until_the_threshold() -> None:
    """A question ends sooner than a statement, a statement sooner than nothing, "and" never early."""
    question, statement, nothing = (RULE.end_after_ms(None, text, 0.9) for text in ("Is it open?", "It arrived.", ""))
    assert 0 < question <= statement < nothing < math.inf
    assert RULE.end_after_ms(None, "and", 0.9) > 2_000  # beyond the pod's 750 ms bound: at the bound, not before
    assert not turn_is_over(None, "It arrived.", 0.9, silence_ms=int(statement) - 20)
    assert turn_is_over(None, "It arrived.", 0.9, silence_ms=int(statement) + 20)
    assert Rule(model_weight=1.0).end_after_ms(0.999, "Is it open?", 0.9) == 0  # sure at once
    assert Rule(patience_per_s=0.0).end_after_ms(None, "", 0.9) == math.inf  # never, without patience


def test_the_calibrated_rule_ignores_the_model() -> None:
    """The turn set calibration found Smart Turn's probability no help there (see the module)."""
    assert RULE.model_weight == 0.0
    assert completion(0.01, "Is it open?", 500) == completion(0.99, "Is it open?", 500)


@pytest.mark.parametrize(
    ("text", "finished"),
    [
        ("My order number is 12345678.", True),
        ("My order number is 1234 5678", True),  # read out in groups: the digits count
        ("My order number is one two three four five six seven eight.", True),
        ("My order number is 1234.", False),  # half of it: still being read out
        ("My order number is 123456789.", False),  # too long for an order number: not finished either
        ("My account number is 12345678.", False),  # another cue: no known length
        ("My zip code is 94107.", True),  # the built-in lengths stay
    ],
)
def test_a_number_of_the_agents_known_length_is_finished(text: str, finished: bool) -> None:
    lengths = known_lengths({"order number": 8})
    assert ends_in_number(text, lengths) is not finished
    assert (transcript_hint(text, lengths) is not Hint.INCOMPLETE) is finished
    assert (Rule(number_lengths=lengths).end_after_ms(None, text, 0.8) < 750) is finished


def test_the_cue_said_last_gives_the_length() -> None:
    lengths = known_lengths({"order number": 8, "number": 10})
    assert trailing_number(words_of("my order number is 12345678"), lengths).known_length == 8  # the longer cue
    assert trailing_number(words_of("my zip code is fine, my order number is 1"), lengths).known_length == 8
    assert trailing_number(words_of("my order number, no, my zip is 94107"), lengths).complete
    assert trailing_number(words_of("my order number is"), lengths).words == 0

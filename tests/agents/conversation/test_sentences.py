"""The sentence chunker: where it cuts, where it must not, markdown, the length bound, and that
the text survives whatever way the stream splits it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.conversation.sentences import SentenceChunker, speakable


def chunk_all(text: str, deltas: list[int] | None = None, **options: object) -> list[str]:
    """Feed `text` in pieces of the given sizes (one piece when None) and flush."""
    chunker = SentenceChunker(**options)  # type: ignore[arg-type]
    chunks: list[str] = []
    start = 0
    for size in deltas or []:
        chunks += chunker.feed(text[start : start + size])
        start += size
    chunks += chunker.feed(text[start:])
    return chunks + chunker.flush()


def test_sentences_come_out_as_soon_as_they_end() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("Hello there") == []
    assert chunker.feed("! How are") == ["Hello there!"]
    assert chunker.feed(" you? I am") == ["How are you?"]
    assert chunker.feed(" fine.") == []  # the end is not certain until what follows arrives
    assert chunker.flush() == ["I am fine."]
    assert chunker.flush() == []


def test_a_full_stop_waits_for_the_next_character() -> None:
    chunker = SentenceChunker()
    assert chunker.feed("It costs 3.") == []
    assert chunker.feed("50 a month. Anything else?") == ["It costs 3.50 a month."]
    assert chunker.flush() == ["Anything else?"]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith will call you back.",
        "Mrs. Jones and Dr. Patel are in.",
        "Bring a document, e.g. a passport.",
        "That is, i.e. the blue one.",
        "We open at 9 a.m. on weekdays.",
        "Ask J. Smith at the desk.",
        "It shipped via the U.S. postal service.",
        "The total is 1,250.75 dollars.",
        "Visit switchboard.example.com for more.",
    ],
)
def test_no_cut_inside_abbreviations_numbers_or_names(text: str) -> None:
    assert chunk_all(text) == [text]


def test_exclamations_questions_ellipses_and_quotes() -> None:
    text = 'Really?! Yes... I think so. She said "done." Then left.'
    assert chunk_all(text) == ["Really?!", "Yes...", "I think so.", 'She said "done."', "Then left."]


def test_a_line_break_ends_a_chunk() -> None:
    assert chunk_all("Your options\nRefund\nReplacement") == ["Your options", "Refund", "Replacement"]


def test_clause_breaks_only_once_enough_text_waits() -> None:
    text = "Yes, it is. Well, I checked your account and the order you placed, the blue one, is on its way."
    assert chunk_all(text, clause_min_chars=40) == [
        "Yes, it is.",
        "Well, I checked your account and the order you placed,",
        "the blue one, is on its way.",
    ]
    assert chunk_all(text, clause_min_chars=None) == [
        "Yes, it is.",
        "Well, I checked your account and the order you placed, the blue one, is on its way.",
    ]


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("Your package left our warehouse this morning; it arrives Tuesday.", 2),
        ("Your package left our warehouse this morning: it arrives Tuesday.", 2),
        ("Your package left our warehouse this morning - it arrives Tuesday.", 2),
        ("Your package left our warehouse this morning—it arrives Tuesday.", 2),
        ("Our warehouse opens 9-5 and this follow-up to the 10:30 call covers 1,250 parcels.", 1),
    ],
)
def test_clause_marks(text: str, chunks: int) -> None:
    assert len(chunk_all(text, clause_min_chars=20)) == chunks


def test_markdown_is_not_spoken() -> None:
    text = (
        "## Your order\n"
        "Here is what I found:\n\n"
        "- **Status**: shipped\n"
        "* Carrier: `UPS`\n"
        "---\n"
        "1. Track it online.\n"
        "2. Call us back.\n"
        "Anything *else*?"
    )
    assert chunk_all(text, clause_min_chars=None) == [
        "Your order",
        "Here is what I found:",
        "Status: shipped",
        "Carrier: UPS",
        "1. Track it online.",
        "2. Call us back.",
        "Anything else?",
    ]


def test_speakable_keeps_hyphens_and_signs_inside_text() -> None:
    assert speakable("  a follow-up at +1 555 0100,\n  *really*  ") == "a follow-up at +1 555 0100, really"


def test_overlong_text_is_cut_at_a_clause_or_word_within_the_bound() -> None:
    words = " ".join(["word"] * 100)
    chunks = chunk_all(words, max_chunk_chars=50, clause_min_chars=None)
    assert all(len(chunk) <= 50 for chunk in chunks)
    assert " ".join(chunks) == words
    clauses = chunk_all("alpha beta, " + words, max_chunk_chars=50, clause_min_chars=None)
    assert clauses[0] == "alpha beta,"


def test_a_word_longer_than_the_bound_is_cut_anyway() -> None:
    url = "x" * 120
    assert chunk_all(url, max_chunk_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_the_chunker_holds_back_at_most_the_bound() -> None:
    chunker = SentenceChunker(max_chunk_chars=30)
    for _ in range(200):
        chunker.feed("la ")
        assert len(chunker._pending) <= 30 + len("la ")


@pytest.mark.parametrize("options", [{"max_chunk_chars": 0}, {"clause_min_chars": 0}])
def test_bad_bounds_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SentenceChunker(**options)


def squashed(text: str) -> str:
    """Text without whitespace or the characters markdown stripping may remove."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*`#-_+•=")


ALPHABET = st.sampled_from([*"abcXYZ019 .,;:!?-—…'\"*#`_\n", "Mr. ", "e.g. ", "3.50", "- ", "**", "\n\n", "\u2019"])
TEXTS = st.lists(ALPHABET, max_size=120).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, cuts=st.lists(st.integers(min_value=0, max_value=12), max_size=30))
def test_chunks_reproduce_the_text_however_the_stream_splits_it(text: str, cuts: list[int]) -> None:
    whole = chunk_all(text, max_chunk_chars=40, clause_min_chars=12)
    streamed = chunk_all(text, cuts, max_chunk_chars=40, clause_min_chars=12)
    assert streamed == whole
    assert squashed("".join(whole)) == squashed(text)
    for chunk in whole:
        assert chunk == chunk.strip() and chunk
        assert len(chunk) <= 40
        assert "\n" not in chunk


def test_the_first_chunk_may_end_at_an_earlier_clause_so_audio_starts_sooner() -> None:
    chunker = SentenceChunker(clause_min_chars=40, first_clause_min_chars=8)
    assert chunker.feed("Of course, I can help with that, and with your order too. ") == [
        "Of course,",
        "I can help with that, and with your order too.",
    ]
    assert chunker.feed("Later, short clauses wait.") == []  # only the first chunk is cut early
    assert chunker.flush() == ["Later, short clauses wait."]
    plain = SentenceChunker(clause_min_chars=40)
    assert plain.feed("Of course, I can help with that. ") == ["Of course, I can help with that."]

"""The turn state machine every detector shares: onsets for a quick barge-in, and their fading."""

from __future__ import annotations

from agents.engines.protocols import SpeechEnded, SpeechFaded, SpeechOnset, SpeechPaused, SpeechStarted, VadEvent
from agents.engines.turns import TurnStates

WINDOW_MS = 32


def run(states: TurnStates, windows: str) -> list[tuple[int, VadEvent]]:
    """Step through `windows` ("x" speech, "." silence); (window index, event) for each event."""
    out = []
    for index, mark in enumerate(windows):
        event = states.step(mark == "x", mark == "x")
        if event is not None:
            out.append((index, event))
    return out


def test_without_an_onset_speech_is_reported_only_once_it_lasts_the_minimum() -> None:
    events = run(TurnStates(WINDOW_MS, 128, 320), "..xxxx" + "." * 12)
    assert events == [(5, SpeechStarted(64)), (6, SpeechPaused(192)), (15, SpeechEnded(192))]


def test_an_onset_comes_before_the_start_and_the_start_still_comes_at_the_minimum() -> None:
    events = run(TurnStates(WINDOW_MS, 128, 320, onset_ms=64), "..xxxx" + "." * 12)
    assert events == [(3, SpeechOnset(64)), (5, SpeechStarted(64)), (6, SpeechPaused(192)), (15, SpeechEnded(192))]


def test_an_onset_that_never_lasts_fades_after_the_end_of_turn_silence_and_starts_no_turn() -> None:
    events = run(TurnStates(WINDOW_MS, 128, 320, onset_ms=64), "..xx" + "." * 12 + "xx" + "." * 12)
    assert events == [(3, SpeechOnset(64)), (13, SpeechFaded(128)), (17, SpeechOnset(512)), (27, SpeechFaded(576))]
    assert not [event for _, event in events if isinstance(event, SpeechStarted | SpeechEnded)]


def test_a_blip_shorter_than_the_onset_reports_nothing() -> None:
    assert run(TurnStates(WINDOW_MS, 128, 320, onset_ms=64), "..x" + "." * 14) == []


def test_an_onset_not_below_the_minimum_is_no_onset() -> None:
    states = TurnStates(WINDOW_MS, 128, 320, onset_ms=128)
    assert states.onset_ms is None
    assert [type(event) for _, event in run(states, "xxxx" + "." * 12)] == [SpeechStarted, SpeechPaused, SpeechEnded]


def test_speech_after_a_turn_gets_a_fresh_onset() -> None:
    events = run(TurnStates(WINDOW_MS, 128, 320, onset_ms=64), "xxxx" + "." * 10 + "xxxx")
    kinds = [type(event) for _, event in events]
    assert kinds == [SpeechOnset, SpeechStarted, SpeechPaused, SpeechEnded, SpeechOnset, SpeechStarted]

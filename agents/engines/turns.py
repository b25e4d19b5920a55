"""Window-by-window speech decisions -> turn events, shared by every voice detector.

A detector judges each window of audio and tells `TurnStates.step` two things: whether the window
is loud enough to start (or resume) speech, and whether it is loud enough to keep speech going
(hysteresis: a detector may hold on at a lower level than it starts at). Speech counts only once
it has lasted `min_speech_ms`; a pause that lasts `end_of_turn_ms` ends the turn. With an
`onset_ms` below `min_speech_ms`, speech that has lasted that long is reported early as
`SpeechOnset` (a barge-in may hold the agent on it), and one that then never counts as speech is
reported as `SpeechFaded`, so whatever was held for it can go on.
"""

from __future__ import annotations

from enum import Enum

from agents.engines.protocols import (
    SpeechEnded,
    SpeechFaded,
    SpeechOnset,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    VadEvent,
)


class _State(Enum):
    SILENCE = "silence"
    PENDING = "pending"  # above the start level, not yet long enough to count
    SPEECH = "speech"
    PAUSED = "paused"


class TurnStates:
    def __init__(self, window_ms: int, min_speech_ms: int, end_of_turn_ms: int, onset_ms: int | None = None) -> None:
        """`onset_ms`: speech reported as `SpeechOnset` once it has lasted this long; None (or a
        value not below `min_speech_ms`) reports no onsets."""
        self.window_ms = window_ms
        self.min_speech_ms = min_speech_ms
        self.onset_ms = onset_ms if onset_ms is not None and onset_ms < min_speech_ms else None
        self._onset_told = False
        """A `SpeechOnset` went out for the pending start: it ends in `SpeechStarted` or `SpeechFaded`."""
        self.end_of_turn_ms = end_of_turn_ms
        self.windows = 0
        """Windows judged so far."""
        self._state = _State.SILENCE
        self._speech_start_ms = 0
        self._pause_ms = 0
        """Where speech last stopped (while paused) or the end of the last voiced window (pending)."""
        self._voiced_ms = 0
        """Speech heard since a pending start, to compare with `min_speech_ms`."""

    def step(self, starts: bool, holds: bool) -> VadEvent | None:
        """Advance by one window: `starts` when it may start or resume speech, `holds` when it
        keeps speech going."""
        start_ms = self.windows * self.window_ms
        self.windows += 1
        end_ms = start_ms + self.window_ms
        state = self._state
        if state is _State.SILENCE:
            if not starts:
                return None
            self._state, self._speech_start_ms, self._voiced_ms = _State.PENDING, start_ms, 0
        if self._state is _State.PENDING:
            if holds:
                self._voiced_ms += self.window_ms
                self._pause_ms = end_ms
                if self._voiced_ms >= self.min_speech_ms:
                    self._state, self._onset_told = _State.SPEECH, False
                    return SpeechStarted(self._speech_start_ms)
                if self.onset_ms is not None and not self._onset_told and self._voiced_ms >= self.onset_ms:
                    self._onset_told = True
                    return SpeechOnset(self._speech_start_ms)
            elif end_ms - self._pause_ms >= self.end_of_turn_ms:
                self._state = _State.SILENCE  # too little speech to be a turn
                if self._onset_told:
                    self._onset_told = False
                    return SpeechFaded(self._pause_ms)
            return None
        if state is _State.SPEECH:
            if holds:
                return None
            self._state, self._pause_ms = _State.PAUSED, start_ms
            return SpeechPaused(start_ms)
        if starts:
            self._state = _State.SPEECH
            return SpeechResumed(start_ms)
        if end_ms - self._pause_ms >= self.end_of_turn_ms:
            self._state = _State.SILENCE
            return SpeechEnded(self._pause_ms)
        return None

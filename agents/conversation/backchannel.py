"""What counts as a backchannel: an "mhm" or a cough over the agent is not the caller taking the turn.

When the caller speaks over the agent, the session clears the line at once but holds the reply
(`Speaker.hold`). The interrupting utterance's transcript then decides: no words at all (a cough,
line noise, a sound Whisper writes as "[coughs]") or only backchannel words ("Mm-hmm.", "Uh-huh,
yeah.", "Okay.") resume the reply; anything else is a real interruption, answered as a turn.
Whisper writes the same sound many ways, so both the transcript and the configured words are
normalised the same way (case, punctuation, hyphens) before they are compared, and a word spelled
only as a hum ("Uh-hoo.", "Mmhm") counts as one. While the reply is held, speech-to-text is
prompted with the agent's `backchannel_prompt` so a hum is spelled as one; what Whisper still puts
in front of it ("And Mm-hmm.", "And then, Mm-hmm.") is a filler, which takes no turn either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agents.config import MAX_BACKCHANNEL_WORDS

MAX_PHRASE_WORDS = 4
"""Bound on the words in one backchannel phrase ("i see", "all right")."""
MAX_TRANSCRIPT_WORDS = 16
"""A transcript longer than this is a real interruption whatever its words: an "mhm" is short."""

_SOUND_NOTE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+")
"""What Whisper writes for sounds that are not words: [coughs], (clears throat), *sigh*, ♪."""
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")
_HUM = re.compile(r"(?=[mhuo]*[mh])[mhuo]{2,12}")
"""A hum, however Whisper spells it ("uh-hoo", "mmhm", "hmmm", "uhh"): only the letters of closed-mouth
sounds, with an m or an h. No word a caller takes the turn with is spelled that way."""
_FILLERS = frozenset({"and", "er", "so", "then", "well"})
"""Discourse fillers: words with nothing to answer, which Whisper writes around a hum ("And mm.",
"And then, Mm-hmm." for espeak-ng's en-gb "mm-hmm" even when prompted): covered like hums. Alone
or beside a hum they leave nothing to answer; beside any other word the transcript is a turn."""


def normalise(text: str) -> list[str]:
    """The words of `text`: lower case, sound notes dropped, hyphens and punctuation as spaces."""
    text = _SOUND_NOTE.sub(" ", text.lower()).replace("-", " ").replace("\u2019", "'")
    return [word.strip("'") for word in _NOT_WORD.sub(" ", text).split() if word.strip("'")]


class BackchannelWords:
    """An agent's backchannel phrases, ready to match transcripts against."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: set[tuple[str, ...]] = set()
        for phrase in list(phrases)[:MAX_BACKCHANNEL_WORDS]:
            words = tuple(normalise(phrase))
            if 0 < len(words) <= MAX_PHRASE_WORDS:
                self._phrases.add(words)
        self._longest = max((len(words) for words in self._phrases), default=0)

    def only_backchannel(self, transcript: str) -> bool:
        """True when `transcript` has no words, or is made only of backchannel phrases ("yeah,
        yeah, right"): the caller did not take the turn."""
        words = normalise(transcript)
        if len(words) > MAX_TRANSCRIPT_WORDS:
            return False
        return self._covers(words)

    def _covers(self, words: list[str]) -> bool:
        """Whether `words` splits into phrases of the set (dynamic programming over prefixes)."""
        covered = [True] + [False] * len(words)
        for end in range(1, len(words) + 1):
            for size in range(1, min(self._longest, end) + 1):
                phrase = tuple(words[end - size : end])
                if covered[end - size] and (phrase in self._phrases or (size == 1 and _no_content(phrase[0]))):
                    covered[end] = True
                    break
        return covered[-1]


def _no_content(word: str) -> bool:
    """A hum or a filler: a sound or a word that says nothing the agent could answer."""
    return word in _FILLERS or _HUM.fullmatch(word) is not None

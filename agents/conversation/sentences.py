"""Cutting a streamed LLM reply into pieces that can be spoken as soon as they are complete.

Text-to-speech sounds right only on whole sentences (or clauses), yet waiting for the whole reply
wastes the second the model spends writing it. `SentenceChunker` takes the text deltas as they
stream and hands back each sentence the moment its end is certain, and a clause once enough text
is waiting, so the first audio starts early. Decisions depend only on the text (never on how it
was split into deltas), and markdown the model may emit is removed so it is not read aloud.
"""

from __future__ import annotations

import re

SENTENCE_ENDS = ".!?…"
CLOSERS = "\"')]}\u201d\u2019*_"
"""May follow a sentence end before the space (quotes, brackets, emphasis): `"Yes." He`, `**Done.** Next`."""
CLAUSE_MARKS = ",;:"
SPACED_DASHES = "-\u2013"
"""Hyphen and en dash break a clause only with spaces round them: `9-5` and `follow-up` stay whole."""
EM_DASH = "—"

ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "approx", "dept", "cf", "etc"}
)
"""Words whose full stop does not end a sentence (compared in lower case, without the dot)."""

_LAST_WORD = re.compile(r"[\w.]+$")
_RULE = re.compile(r"[-*_=]{3,}")
_BULLET = re.compile(r"^(?:[-*+•]\s+)+")
_MARKUP = str.maketrans("", "", "*`#")


def speakable(text: str) -> str:
    """`text` without markdown (emphasis, code ticks, headings, bullets, rules), on one line."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if _RULE.fullmatch(line.replace(" ", "")):
            continue
        line = _BULLET.sub("", line)
        lines.append(line.translate(_MARKUP))
    return " ".join(" ".join(lines).split())


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


class SentenceChunker:
    """Turns streamed text deltas into speakable chunks, in order, as soon as each is complete.

    A chunk ends at a sentence end (`.`, `!`, `?`, `…` followed by whitespace) or a line break,
    and, once at least `clause_min_chars` are waiting, at a clause break (`,` `;` `:` followed by
    whitespace, a spaced dash, an em dash). Full stops inside numbers (`3.50`), after the
    abbreviations in `ABBREVIATIONS`, after dotted words (`e.g.`, `a.m.`, `U.S.`) and after single
    capital initials (`J. Smith`) do not end a sentence, and no chunk is cut before it has a letter
    (so `1.` of a numbered list stays with its item).
    """

    def __init__(
        self, clause_min_chars: int | None = 40, max_chunk_chars: int = 250, first_clause_min_chars: int | None = None
    ) -> None:
        if max_chunk_chars < 1:
            raise ValueError(f"max_chunk_chars must be at least 1, got {max_chunk_chars}")
        if clause_min_chars is not None and clause_min_chars < 1:
            raise ValueError(f"clause_min_chars must be at least 1 or None, got {clause_min_chars}")
        if first_clause_min_chars is not None and first_clause_min_chars < 1:
            raise ValueError(f"first_clause_min_chars must be at least 1 or None, got {first_clause_min_chars}")
        self.clause_min_chars = clause_min_chars
        """Cut at a clause break only once this many characters are waiting; None: never."""
        self.first_clause_min_chars = first_clause_min_chars if first_clause_min_chars is not None else clause_min_chars
        """The same for the reply's first chunk: lower, so the first audio (whose synthesis time grows
        with its length) leaves sooner, e.g. "Sure, ..." is spoken while the rest is synthesized."""
        self._emitted = False
        self.max_chunk_chars = max_chunk_chars
        """Bound on a chunk's length (and on the text held back): longer text is cut at the last
        clause break, else the last space, else mid-word, within this many characters."""
        self._pending = ""

    def feed(self, delta: str) -> list[str]:
        """Add the next piece of the reply; return the chunks it completed (often none)."""
        self._pending += delta
        chunks = []
        while (cut := self._next_cut()) is not None:
            chunk, self._pending = speakable(self._pending[:cut]), self._pending[cut:]
            if chunk:
                chunks.append(chunk)
                self._emitted = True
        return chunks

    def flush(self) -> list[str]:
        """The rest of the reply (the stream ended): one last chunk, or none when nothing is left."""
        rest, self._pending = speakable(self._pending), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        """Where the first complete chunk of the pending text ends, or None to wait for more."""
        text = self._pending
        window = min(len(text), self.max_chunk_chars)
        for i in range(window):
            cut = self._break_after(text, i)
            if cut is not None and cut <= self.max_chunk_chars:
                return cut
        if len(text) > self.max_chunk_chars:
            return self._forced_cut(text)
        return None

    def _break_after(self, text: str, i: int) -> int | None:
        """If a chunk ends with the character at `i`, the index just past the chunk."""
        ch = text[i]
        if ch == "\n":
            return i + 1 if _has_letter(text[:i]) else None
        if ch in SENTENCE_ENDS:
            return self._sentence_end(text, i)
        minimum = self.clause_min_chars if self._emitted else self.first_clause_min_chars
        if minimum is None or len(text[: i + 1].strip()) < minimum:
            return None
        return self._clause_end(text, i)

    def _sentence_end(self, text: str, i: int) -> int | None:
        if i > 0 and text[i - 1] in SENTENCE_ENDS:
            return None  # inside a run like "?!" or "...": judged at its first mark
        end = i
        while end < len(text) and text[end] in SENTENCE_ENDS:
            end += 1
        while end < len(text) and text[end] in CLOSERS:
            end += 1
        if end >= len(text) or not text[end].isspace() or not _has_letter(text[:i]):
            return None
        if text[i:end].rstrip(CLOSERS) == "." and self._abbreviation_before(text, i):
            return None
        return end

    @staticmethod
    def _abbreviation_before(text: str, i: int) -> bool:
        match = _LAST_WORD.search(text, 0, i)
        word = match.group() if match else ""
        return word.lower() in ABBREVIATIONS or "." in word or (len(word) == 1 and word.isupper())

    @staticmethod
    def _clause_end(text: str, i: int) -> int | None:
        ch = text[i]
        if ch == EM_DASH:
            return i + 1 if _has_letter(text[:i]) else None
        if i + 1 >= len(text) or not text[i + 1].isspace():
            return None
        if ch in CLAUSE_MARKS:
            return i + 1 if _has_letter(text[:i]) else None
        if ch in SPACED_DASHES and i >= 2 and text[i - 1] == " " and not text[i - 2].isspace():
            return i + 1 if _has_letter(text[:i]) else None
        return None

    def _forced_cut(self, text: str) -> int:
        """Cut an overlong run: the last clause break, else the last space, else at the bound."""
        limit = self.max_chunk_chars
        for i in range(limit - 1, 0, -1):
            if text[i] in CLAUSE_MARKS + EM_DASH and text[i + 1].isspace() and _has_letter(text[:i]):
                return i + 1
        for i in range(limit, 0, -1):
            if text[i].isspace() and text[:i].strip():
                return i
        return limit

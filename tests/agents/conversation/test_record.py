"""A call's record in memory: the same transcript bound and the same end kept as the stored record."""

from __future__ import annotations

from agents.conversation.record import MAX_TRANSCRIPT_ENTRIES, CallRecord, TranscriptLine, TurnMetrics
from db.settings import TRANSCRIPT_LINES_PER_CALL, DbSettings


class Follower:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.turns: list[int] = []

    def transcript_line(self, record: CallRecord, line: TranscriptLine) -> None:
        self.lines.append(line.text)

    def turn_metrics(self, record: CallRecord, metrics: TurnMetrics) -> None:
        self.turns.append(metrics.turn)


def test_memory_keeps_the_first_lines_the_database_keeps() -> None:
    """Before, memory kept the last 500 lines and the database the first 400."""
    assert DbSettings().max_turns_per_call == TRANSCRIPT_LINES_PER_CALL == MAX_TRANSCRIPT_ENTRIES
    record = CallRecord("CA1", "support", "+1", "+2", "inbound")
    for i in range(MAX_TRANSCRIPT_ENTRIES + 7):
        record.say("caller", f"line {i}")
    assert [line.text for line in record.transcript] == [f"line {i}" for i in range(MAX_TRANSCRIPT_ENTRIES)]
    assert record.transcript_dropped == 7


def test_a_follower_hears_each_kept_line_and_turn_and_is_not_part_of_the_data() -> None:
    record = CallRecord("CA2", "support", "+1", "+2", "inbound")
    record.say("agent", "before")
    follower = Follower()
    record.follow(follower)
    record.say("agent", "Hello")
    record.add_turn(TurnMetrics(turn=1))
    record.follow(None)
    record.say("caller", "after")
    assert follower.lines == ["Hello"] and follower.turns == [1]
    assert "follower" not in str(record.as_dict()) and "_follower" not in record.as_dict()

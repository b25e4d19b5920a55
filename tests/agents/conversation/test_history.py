"""The conversation history: bounded, and holding only what the caller heard."""

from __future__ import annotations

from agents.conversation.history import AssistantReply, ConversationHistory, SpokenPart
from agents.engines.protocols import ToolCallRequest


def reply(*parts: tuple[str, bool | None], interrupted: bool = False) -> AssistantReply:
    r = AssistantReply(interrupted=interrupted)
    r.parts = [SpokenPart(text, f"m{i}", heard) for i, (text, heard) in enumerate(parts)]
    return r


def test_messages_start_with_the_system_prompt_and_keep_order() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_reply(reply(("Hello, how can I help?", True)))
    history.add_user("Where is my order?")
    history.add_reply(reply(("Let me check.", True)))
    messages = history.messages("be brief")
    assert [m["role"] for m in messages] == ["system", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "be brief"
    assert messages[-1]["content"] == "Let me check."


def test_interrupted_reply_keeps_only_the_parts_heard() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_user("Tell me about your plans.")
    history.add_reply(
        reply(
            ("We have three plans.", True),
            ("The basic plan costs ten dollars.", False),
            ("The pro", None),
            interrupted=True,
        )
    )
    assert history.messages("s")[-1] == {"role": "assistant", "content": "We have three plans."}


def test_unreported_parts_count_as_heard_when_not_interrupted() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_user("Hi")
    history.add_reply(reply(("Hello there.", None)))
    assert history.messages("s")[-1]["content"] == "Hello there."


def test_a_reply_nobody_heard_is_left_out() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_user("Hi")
    history.add_reply(reply(("Hello there.", False), interrupted=True))
    assert [m["role"] for m in history.messages("s")] == ["system", "user"]


def test_tool_calls_are_rendered_with_their_results_and_unanswered_ones_closed() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_user("Order 42?")
    step = reply()
    step.tool_calls = [ToolCallRequest("call-1", "get_order_status", '{"order_id": "42"}')]
    history.add_reply(step)
    history.close_unanswered_tool_calls("cancelled")
    messages = history.messages("s")
    assert messages[2]["tool_calls"][0]["function"] == {"name": "get_order_status", "arguments": '{"order_id": "42"}'}
    assert messages[2]["content"] is None
    assert messages[3] == {"role": "tool", "tool_call_id": "call-1", "content": '{"error": "cancelled"}'}
    history.close_unanswered_tool_calls("cancelled")  # idempotent
    assert len(history.messages("s")) == 4


def test_budget_drops_the_oldest_turns_but_always_keeps_the_newest() -> None:
    history = ConversationHistory(budget_chars=100)
    for i in range(20):
        history.add_user(f"question {i} " + "x" * 30)
        history.add_reply(reply((f"answer {i}", True)))
    messages = history.messages("s")
    total = sum(len(m["content"] or "") for m in messages[1:])
    assert total <= 100
    assert messages[-2]["content"].startswith("question 19")
    assert messages[1]["role"] == "user"  # whole turns are dropped, never half of one
    huge = ConversationHistory(budget_chars=10)
    huge.add_user("y" * 500)
    assert huge.messages("s")[-1]["content"] == "y" * 500


def test_rollback_forgets_a_dropped_speculative_reply() -> None:
    history = ConversationHistory(budget_chars=10_000)
    history.add_reply(reply(("Hello, how can I help?", True)))
    checkpoint = history.checkpoint()
    history.add_user("Where is my")
    history.add_reply(reply(("Let me check.", None)))
    history.rollback(checkpoint)
    history.add_user("Where is my order?")
    assert history.messages("s")[1:] == [
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Where is my order?"},
    ]


def test_rollback_undoes_entries_added_to_the_turn_it_marked() -> None:
    history = ConversationHistory(budget_chars=10_000)
    checkpoint = history.checkpoint()  # an empty history: everything added after goes
    history.add_reply(reply(("Hello.", True)))
    history.rollback(checkpoint)
    assert history.messages("s") == [{"role": "system", "content": "s"}]
    history.add_user("Hi")
    checkpoint = history.checkpoint()
    history.add_reply(reply(("Hello there.", None)))
    history.rollback(checkpoint)
    assert history.messages("s")[1:] == [{"role": "user", "content": "Hi"}]


def test_rollback_after_the_marked_turn_was_dropped_for_the_budget() -> None:
    history = ConversationHistory(budget_chars=1000)
    history.add_user("a" * 600)
    checkpoint = history.checkpoint()
    history.add_user("b" * 600)
    history.messages("s")  # over the budget: the marked turn is dropped
    history.rollback(checkpoint)
    assert history.messages("s") == [{"role": "system", "content": "s"}]

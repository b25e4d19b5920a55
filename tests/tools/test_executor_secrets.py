"""The executor with a call's `SecretVault`: only the tool gets a value, the model and the audit
keep the placeholder."""

from __future__ import annotations

import json

from pydantic import Field

from tools import InMemoryToolAudit, Tool, ToolArguments, ToolCall, ToolContext, ToolError, ToolExecutor
from tools.pii import KEYPAD_ENTRY, SecretVault

VISA = "4111111111111111"


class PayArguments(ToolArguments):
    card: str = Field(pattern=r"^\d{13,19}$")
    """The card number, digits only."""


def pay_tool(seen: list[str]) -> Tool[PayArguments]:
    async def pay(arguments: PayArguments, context: ToolContext) -> dict[str, str]:
        seen.append(arguments.card)
        if arguments.card.startswith("5"):
            raise ToolError(f"card {arguments.card} was declined")
        return {"charged": arguments.card, "last4": arguments.card[-4:]}

    return Tool("take_payment", "Charge the caller's card.", PayArguments, pay)


async def run(raw: str, vault: SecretVault | None) -> tuple[str, list[str], InMemoryToolAudit]:
    seen: list[str] = []
    audit = InMemoryToolAudit()
    executor = ToolExecutor([pay_tool(seen)], audit)
    context = ToolContext(call_sid="CA1", agent_id="shop", caller_number="+15550101")
    outcome = await executor.turn(context, vault).run(ToolCall("c1", "take_payment", raw))
    return outcome.content, seen, audit


async def test_the_tool_gets_the_value_the_model_and_the_audit_the_placeholder() -> None:
    vault = SecretVault()
    assert vault.redact(f"my card is {VISA}") == "my card is [card number 1]"

    content, seen, audit = await run('{"card": "[card number 1]"}', vault)

    assert seen == [VISA]
    assert json.loads(content) == {"charged": "[card number 1]", "last4": "1111"}
    [entry] = audit.entries
    assert entry.arguments == '{"card": "[card number 1]"}' and entry.ok


async def test_a_refusal_that_quotes_the_value_reaches_the_model_redacted() -> None:
    vault = SecretVault()
    vault.redact("5500 0000 0000 0004")

    content, seen, _ = await run('{"card": "[card number 1]"}', vault)

    assert seen == ["5500000000000004"]
    assert json.loads(content) == {"error": "card [card number 1] was declined"}


async def test_a_keypad_entry_reaches_the_tool_only() -> None:
    vault = SecretVault()
    vault.keep(KEYPAD_ENTRY, "4222222222222")

    content, seen, audit = await run('{"card": "[keypad entry 1]"}', vault)

    assert seen == ["4222222222222"]
    assert "4222222222222" not in content + audit.entries[0].arguments


async def test_an_unknown_placeholder_is_invalid_not_a_value() -> None:
    content, seen, _ = await run('{"card": "[card number 3]"}', SecretVault())
    assert seen == [] and "invalid arguments" in json.loads(content)["error"]


async def test_without_a_vault_the_audit_still_drops_a_card_number_the_model_typed() -> None:
    _, seen, audit = await run(json.dumps({"card": VISA}), None)
    assert seen == [VISA]
    assert audit.entries[0].arguments == '{"card": "[card number]"}'

"""The identity tools: the caller names who they are (`identify_caller`) and proves it by facts
(`verify_identity`). Neither decides anything: both hand what the caller said to the call's
server-side checks (`CallerIdentity.checks`), which compare it with the stored record and count
the attempts. Their results never echo a stored value, and a failed check never says which fact
was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, create_model

from tools.tool import CallerChecks, Tool, ToolArguments, ToolContext, ToolError

MAX_IDENTIFIER_CHARS = 254
"""Longest identifier a caller may name (an email address's maximum)."""
MAX_FACT_CHARS = 100
"""Longest answer to one knowledge question."""
IDENTIFY_CALLER = "identify_caller"
VERIFY_IDENTITY = "verify_identity"

Said = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER_CHARS, strip_whitespace=True)]


def _checks(context: ToolContext) -> CallerChecks:
    if context.caller.checks is None:
        raise ToolError("identity checks are not available on this call")
    return context.caller.checks


def identify_caller(lookup_fields: Sequence[str]) -> Tool[Any]:
    """`identify_caller(field, value)`: the caller says which record is theirs (not yet verified)."""
    if not lookup_fields:
        raise ValueError("identify_caller needs at least one lookup field")
    arguments = create_model(
        "IdentifyCallerArgs",
        __base__=ToolArguments,
        field=(Literal[tuple(lookup_fields)], Field(description="which identifier the caller gave")),  # type: ignore[valid-type]
        value=(Said, Field(description="the identifier exactly as the caller gave it")),
    )

    async def handler(args: Any, context: ToolContext) -> dict[str, Any]:
        return {"next": await _checks(context).identify(args.field, args.value)}

    return Tool(
        IDENTIFY_CALLER,
        f"Record who the caller says they are, by one of: {', '.join(lookup_fields)}. "
        "It does not verify them; it says what to ask next.",
        arguments,
        handler,
    )


def verify_identity(facts: Sequence[str]) -> Tool[Any]:
    """`verify_identity(<fact>...)`: the caller's answers, compared by the server."""
    if not facts:
        raise ValueError("verify_identity needs at least one fact")
    answer = Annotated[str, StringConstraints(min_length=1, max_length=MAX_FACT_CHARS, strip_whitespace=True)]
    fields: dict[str, Any] = {
        name: (answer, Field(description=f"the caller's {name.replace('_', ' ')}, as they said it")) for name in facts
    }
    arguments = create_model("VerifyIdentityArgs", __base__=ToolArguments, **fields)

    async def handler(args: Any, context: ToolContext) -> dict[str, Any]:
        said = {name: getattr(args, name) for name in facts}
        return {"verified": True, "next": await _checks(context).verify(said)}

    return Tool(
        VERIFY_IDENTITY,
        f"Verify the caller with their {', '.join(f.replace('_', ' ') for f in facts)}, as they said them.",
        arguments,
        handler,
    )

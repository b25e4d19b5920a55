"""After a call: the agent's model writes a summary and fills the fields the operator declared."""

from agents.post_call.declaration import (
    MAX_POST_CALL_FIELDS,
    PostCallConfig,
    PostCallField,
    arguments_model,
    tool_schema,
)
from agents.post_call.extraction import (
    MAX_TRANSCRIPT_CHARS,
    TOOL_NAME,
    PostCallFailed,
    PostCallResult,
    extract,
    transcript_text,
)

__all__ = [
    "MAX_POST_CALL_FIELDS",
    "MAX_TRANSCRIPT_CHARS",
    "TOOL_NAME",
    "PostCallConfig",
    "PostCallFailed",
    "PostCallField",
    "PostCallResult",
    "arguments_model",
    "extract",
    "tool_schema",
    "transcript_text",
]

"""What agents can do: tool calls that are validated, time-limited, size-capped and audited.

Imports `db`; never agents or telephony.
"""

from tools.audit import CallRecordsAudit, InMemoryToolAudit, ToolAudit, ToolAuditEntry
from tools.builtin import BUILTIN, builtin_tools
from tools.executor import ToolCall, ToolExecutor, ToolOutcome, ToolTurn
from tools.schema import strict_parameters, tool_schema
from tools.tool import CallerIdentity, Tool, ToolArguments, ToolContext, ToolError, ToolResult

__all__ = [
    "BUILTIN",
    "CallRecordsAudit",
    "CallerIdentity",
    "InMemoryToolAudit",
    "Tool",
    "ToolArguments",
    "ToolAudit",
    "ToolAuditEntry",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "ToolExecutor",
    "ToolOutcome",
    "ToolResult",
    "ToolTurn",
    "builtin_tools",
    "strict_parameters",
    "tool_schema",
]

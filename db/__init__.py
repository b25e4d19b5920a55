"""MongoDB through PyMongo's async API, and the safe-query layer every tool read goes through.

Nothing here imports tools, agents or telephony.
"""

from db.agent_configs import AgentConfigs, AgentExists, StoredConfig, VersionConflict
from db.audit_log import AuditLog
from db.business import BookingRefused, BusinessData
from db.calls import CallRecords
from db.campaigns import Campaigns, TransitionRefused
from db.client import Database, connect, in_memory
from db.contacts import Contacts
from db.do_not_call import DoNotCall
from db.errors import DatabaseError
from db.indexes import ensure_indexes
from db.phone_numbers import PhoneNumbers
from db.safe_query import Between, QueryLog, QueryRecord, ReadResult, ReadSpec, SafeQuery, UnsafeQuery
from db.settings import DbSettings
from db.tool_declarations import StoredDeclaration, ToolDeclarations, ToolExists

__all__ = [
    "AgentConfigs",
    "AgentExists",
    "AuditLog",
    "Between",
    "BookingRefused",
    "BusinessData",
    "CallRecords",
    "Campaigns",
    "Contacts",
    "Database",
    "DatabaseError",
    "DbSettings",
    "DoNotCall",
    "PhoneNumbers",
    "QueryLog",
    "QueryRecord",
    "ReadResult",
    "ReadSpec",
    "SafeQuery",
    "StoredConfig",
    "StoredDeclaration",
    "ToolDeclarations",
    "ToolExists",
    "TransitionRefused",
    "UnsafeQuery",
    "VersionConflict",
    "connect",
    "ensure_indexes",
    "in_memory",
]

"""MongoDB through PyMongo's async API, and the safe-query layer every tool read goes through.

Nothing here imports tools, agents or telephony.
"""

from db.agent_configs import AgentConfigs
from db.business import BookingRefused, BusinessData
from db.calls import CallRecords
from db.client import Database, connect, in_memory
from db.indexes import ensure_indexes
from db.phone_numbers import PhoneNumbers
from db.safe_query import Between, QueryLog, QueryRecord, ReadResult, ReadSpec, SafeQuery, UnsafeQuery
from db.settings import DbSettings

__all__ = [
    "AgentConfigs",
    "Between",
    "BookingRefused",
    "BusinessData",
    "CallRecords",
    "Database",
    "DbSettings",
    "PhoneNumbers",
    "QueryLog",
    "QueryRecord",
    "ReadResult",
    "ReadSpec",
    "SafeQuery",
    "UnsafeQuery",
    "connect",
    "ensure_indexes",
    "in_memory",
]

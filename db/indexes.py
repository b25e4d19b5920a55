"""Collections and their indexes, created at start-up.

The indexes are part of the safety story, not only of speed: every field a `ReadSpec` calls
selective has an index here, so a refused-unless-selective query is also a query the server answers
from an index rather than a collection scan. Unique indexes keep ids unique and stop two bookings of
one slot (the `slot` key exists only while an appointment is booked, hence sparse).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from db.client import Database

AGENT_CONFIGS = "agent_configs"
AGENT_CONFIG_VERSIONS = "agent_config_versions"
TOOL_DECLARATIONS = "tool_declarations"
TOOL_DECLARATION_VERSIONS = "tool_declaration_versions"
CAMPAIGNS = "campaigns"
CAMPAIGN_SLOTS = "campaign_slots"
CONTACTS = "contacts"
DO_NOT_CALL = "do_not_call"
PHONE_NUMBERS = "phone_numbers"
CALLS = "calls"
CUSTOMERS = "customers"
ORDERS = "orders"
APPOINTMENTS = "appointments"
AUDIT_LOG = "audit_log"
RECORDING_FILES = "recordings.files"
RECORDING_CHUNKS = "recordings.chunks"
"""Call recordings in GridFS's own layout (`db/recordings.py`), so GridFSBucket(bucket_name="recordings") reads them."""

INDEXES: dict[str, list[IndexModel]] = {
    AGENT_CONFIGS: [IndexModel([("config.tenant", ASCENDING), ("_id", ASCENDING)], name="tenant")],  # _id: agent id
    AGENT_CONFIG_VERSIONS: [
        IndexModel([("agent_id", ASCENDING), ("version", DESCENDING)], name="agent_version", unique=True)
    ],
    TOOL_DECLARATIONS: [],  # keyed by _id (the tool name)
    TOOL_DECLARATION_VERSIONS: [
        IndexModel([("name", ASCENDING), ("version", DESCENDING)], name="name_version", unique=True)
    ],
    CAMPAIGNS: [IndexModel([("status", ASCENDING), ("_id", ASCENDING)], name="status")],
    CAMPAIGN_SLOTS: [IndexModel([("campaign_id", ASCENDING), ("until", ASCENDING)], name="campaign_until")],
    CONTACTS: [
        # one row per number in a campaign; the lease query reads by state and due time
        IndexModel([("campaign_id", ASCENDING), ("phone", ASCENDING)], name="campaign_phone", unique=True),
        IndexModel([("campaign_id", ASCENDING), ("state", ASCENDING), ("not_before", ASCENDING)], name="campaign_due"),
        IndexModel(
            [("campaign_id", ASCENDING), ("state", ASCENDING), ("lease_until", ASCENDING)], name="campaign_lease"
        ),
    ],
    DO_NOT_CALL: [],  # keyed by _id (the number)
    PHONE_NUMBERS: [IndexModel([("agent_id", ASCENDING)], name="agent_id")],  # keyed by _id (the number)
    CALLS: [
        IndexModel([("call_sid", ASCENDING)], name="call_sid", unique=True),
        IndexModel([("agent_id", ASCENDING), ("started_at", DESCENDING)], name="agent_started"),
        IndexModel([("started_at", DESCENDING)], name="started_at"),
        IndexModel([("started_at", DESCENDING), ("call_sid", DESCENDING)], name="started_sid"),
        IndexModel([("campaign_id", ASCENDING), ("started_at", DESCENDING)], name="campaign_started", sparse=True),
        # retention: the server removes a record once `expires_at` has passed (its TTL monitor runs every 60 s)
        IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0),
    ],
    CUSTOMERS: [
        IndexModel([("customer_id", ASCENDING)], name="customer_id", unique=True),
        IndexModel([("phone", ASCENDING)], name="phone", unique=True, sparse=True),
        IndexModel([("email", ASCENDING)], name="email", unique=True, sparse=True),
        IndexModel([("account_id", ASCENDING)], name="account_id", unique=True, sparse=True),
    ],
    ORDERS: [
        IndexModel([("order_id", ASCENDING)], name="order_id", unique=True),
        IndexModel([("customer_id", ASCENDING), ("created_at", DESCENDING)], name="customer_created"),
    ],
    AUDIT_LOG: [
        IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="at_id"),
        IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0),  # retention
    ],
    RECORDING_FILES: [
        IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_uploadDate"),  # GridFS's
        IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0),  # with the call record
    ],
    RECORDING_CHUNKS: [
        IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], name="files_id_n", unique=True),  # GridFS's
        IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0),  # with the call record
    ],
    APPOINTMENTS: [
        IndexModel([("appointment_id", ASCENDING)], name="appointment_id", unique=True),
        IndexModel([("customer_id", ASCENDING), ("starts_at", ASCENDING)], name="customer_starts"),
        IndexModel([("slot", ASCENDING)], name="slot", unique=True, sparse=True),
    ],
}


async def ensure_indexes(database: Database) -> None:
    """Create every collection's indexes; safe to run at every start (existing ones are kept)."""
    for name, indexes in INDEXES.items():
        if indexes:
            await database.collection(name).create_indexes(indexes)

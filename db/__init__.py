"""MongoDB access through PyMongo's async API and the safe-query layer.

Empty until the tools/MongoDB issue lands; until then telephony uses an in-memory number
directory behind `telephony.routing.NumberDirectory`.
"""

"""The conversation: the port a session talks to a call through, and the agents themselves.

Nothing here imports `telephony`; the edge implements `agents.port.CallPort` for Twilio and
tests implement it in memory.
"""

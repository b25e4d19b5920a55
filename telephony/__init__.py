"""The call edge: Twilio webhooks, Media Streams, audio conversion, and the Twilio simulator.

This package is the composition root: it may import `agents`, `tools` and `db`; none of them
imports it.
"""

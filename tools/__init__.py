"""What agents can do: validated, bounded tool calls.

Empty until the tools issue lands; the room exists so imports point the right way from day one.
"""

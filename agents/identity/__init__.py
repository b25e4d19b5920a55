"""Who is calling, decided by the server: the agent's identity policy and each call's verifier."""

from agents.identity.policy import IdentityPolicy
from agents.identity.verifier import CallerVerifier

__all__ = ["CallerVerifier", "IdentityPolicy"]

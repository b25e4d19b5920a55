"""Write-time checks of an agent config that only the pod can make: its tools exist, its voice is
one the pod's TTS has, its transfer target is on the allow-list. Each refusal is a 422 naming the
field and the bad value, so a stored agent can never fail every call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from agents.config import AgentConfig
from db import Database
from telephony.admin.common import field_error, pod_of
from telephony.admin.tools import check_agent_tools
from telephony.twilio.transfer_numbers import TransferNumbers
from tools.declared import DeclaredToolResources

if TYPE_CHECKING:
    from telephony.pod import Pod

MAX_LISTED_VOICES = 20
"""Bound on the voices an error message lists."""


async def check_agent(config: AgentConfig, db: Database, resources: DeclaredToolResources, request: Request) -> None:
    """422 for the first field the pod could not serve."""
    pod = pod_of(request)
    await check_agent_tools(config, db, resources)
    if config.transfer_number is not None:
        refusal = TransferNumbers(pod.settings.transfer_allowed_numbers).refusal(config.transfer_number)
        if refusal is not None:
            field_error(["body", "transfer_number"], refusal)
    if config.voice is not None:
        voices = known_voices(pod)
        if config.voice not in voices:
            listed = ", ".join(sorted(voices)[:MAX_LISTED_VOICES])
            field_error(["body", "voice"], f"unknown voice {config.voice!r}; this pod has: {listed}")


def known_voices(pod: Pod) -> frozenset[str]:
    """`agent_voices` when set; else the in-process TTS's own voices; else (a remote TTS, or no
    voice engines in this pod) only the default voice."""
    settings = pod.settings
    if settings.agent_voices:
        return frozenset(v.strip() for v in settings.agent_voices.split(",") if v.strip())
    voices = getattr(pod.voice.stack.tts, "voices", None) if pod.voice is not None else None
    return frozenset(voices) if voices else frozenset({settings.tts_voice})

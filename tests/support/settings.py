"""Settings for a test pod: the Twilio token, the numbers, and a memory budget a test process fits."""

from __future__ import annotations

from telephony.settings import Settings

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
AGENT_NUMBER = "+15550100"
TRANSFER_NUMBER = "+15550199"
SPEECH_KEY = "test-speech-key-0123456789abcdef"
"""The key a test speech service accepts and a test pod sends."""
TEST_PROCESS_MEMORY_BYTES = 64 << 30
"""The memory budget of a test pod. One pytest process holds several model stacks at once, far
past a real pod's 1 GiB; the guard's own tests set their limits (and fake cgroups) explicitly."""


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "twilio_auth_token": AUTH_TOKEN,
        "numbers": {AGENT_NUMBER: "echo"},
        "transfer_number": TRANSFER_NUMBER,
        "memory_limit_bytes": TEST_PROCESS_MEMORY_BYTES,
        "serve_stored_agents": False,  # a pod with a database would load the voice engines
        "speech_server_api_keys": SPEECH_KEY,
        "speech_api_key": SPEECH_KEY,
        # Admission by capacity is off: a test process is the caller, the pod and several model
        # stacks at once, so its CPU is not a pod's. The capacity tests set these explicitly.
        "admission_max_engine_load": 0,
        "admission_max_queued_jobs": 0,
        "admission_max_cpu_load": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]

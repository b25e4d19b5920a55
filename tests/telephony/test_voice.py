"""Reading agent configs: every mistake in the file is named, none reaches a call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from agents.config import AgentConfig
from agents.conversation.listener import ListenerConfig
from agents.engines.local.silero import VadConfig
from agents.engines.local.smart_turn import SmartTurnModel
from agents.testing.fake_engines import FakeEngines
from telephony.app import create_app
from telephony.voice import AgentsFileError, VoiceStack, build_voice_agent, load_voice_stack, read_agents_file
from tests.support.settings import make_settings


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "agents.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_reads_valid_agents_with_defaults(tmp_path: Path) -> None:
    [config] = read_agents_file(write(tmp_path, [{"id": "support", "greeting": "Hi!", "tools": ["find_customer"]}]))
    assert config.id == "support"
    assert config.greeting == "Hi!"
    assert config.max_tool_silence_ms == 1200


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not valid JSON"),
        ({"id": "x"}, "Input should be a valid list"),
        ([{"id": "Not An Id"}], "String should match pattern"),
        ([{"id": "a", "greting": "typo"}], "Extra inputs are not permitted"),
        ([{"id": "a", "max_call_seconds": 1}], "greater than or equal to 10"),
        ([{"id": "a"}, {"id": "a"}], "appear more than once: a"),
    ],
)
def test_bad_agents_files_get_an_error_naming_the_problem(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(AgentsFileError, match=message):
        read_agents_file(write(tmp_path, content))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgentsFileError, match=r"agents\.json"):
        read_agents_file(tmp_path / "agents.json")


def test_the_pod_refuses_to_start_with_tools_but_no_database(tmp_path: Path) -> None:
    """Checked before any model loads, so a bad deploy fails in a second, not after a minute."""
    settings = make_settings(agents_file=write(tmp_path, [{"id": "support", "tools": ["find_customer"]}]))
    with pytest.raises(ValueError, match="SWITCHBOARD_MONGODB_URI is not set"), TestClient(create_app(settings)):
        pass


async def test_smart_turn_wires_the_model_and_makes_the_detector_silence_the_long_bound() -> None:
    settings = make_settings(
        stt_backend="remote", tts_backend="remote", turn_detection="smart_turn", turn_smart_max_wait_ms=1800
    )
    stack = load_voice_stack(settings)
    try:
        assert isinstance(stack.end_of_turn, SmartTurnModel)
        assert stack.vad_config.end_of_turn_silence_ms == 1800
        listener = stack.listener()
        assert listener.end_of_turn_model is stack.end_of_turn
        assert (listener.config.end_of_turn, listener.config.smart_turn_max_wait_ms) == ("smart_turn", 1800)
    finally:
        await stack.aclose()
    plain = load_voice_stack(
        make_settings(stt_backend="remote", tts_backend="remote", turn_detection="silence", vad_end_of_turn_ms=700)
    )
    try:
        assert plain.end_of_turn is None and plain.vad_config.end_of_turn_silence_ms == 700
        assert plain.listener().config.end_of_turn == "silence"
    finally:
        await plain.aclose()
    words = load_voice_stack(make_settings(stt_backend="remote", tts_backend="remote"))  # the default
    try:
        assert words.end_of_turn is None  # the words rule loads no model
        assert words.vad_config.end_of_turn_silence_ms == type(settings).model_fields["turn_smart_max_wait_ms"].default
        assert words.listener().config.end_of_turn == "words"
    finally:
        await words.aclose()


async def test_closing_the_stack_closes_the_remote_model_servers_client() -> None:
    """Left open, the OpenAI client's finaliser schedules its close on whatever event loop runs at
    the time, and on a loop other than its own that close fails ("Event loop is closed")."""
    stack = load_voice_stack(make_settings(stt_backend="remote", tts_backend="remote", llm_backend="openai"))
    client = stack.engines.chat._client  # type: ignore[attr-defined]
    assert not client.is_closed()
    await stack.aclose()
    assert client.is_closed()


@pytest.mark.parametrize("speculate", [True, False])
async def test_the_speculation_setting_reaches_each_agent(speculate: bool) -> None:
    fakes = FakeEngines()
    stack = VoiceStack(fakes.engines, VadConfig(), ListenerConfig(), fakes.tts)
    settings = make_settings(speculative_replies=speculate)
    agent = await build_voice_agent(AgentConfig(id="support"), stack, settings)
    assert agent.speculate is speculate


async def test_the_pod_sends_its_keys_to_the_model_server_and_the_speech_service() -> None:
    """vLLM runs with `--api-key` and the speech service checks keys (deploy/kubernetes): the pod's
    clients send the configured ones as bearer tokens."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from agents.loopback import LoopbackServer
    from telephony.voice import load_chat_model, speech_client

    seen: list[tuple[str, str | None]] = []

    async def refuse(request: Request) -> JSONResponse:
        seen.append((request.url.path, request.headers.get("authorization")))
        return JSONResponse({"error": {"message": "no", "type": "authentication_error"}}, status_code=401)

    app = Starlette(routes=[Route("/v1/{path:path}", refuse, methods=["GET", "POST"])])
    async with LoopbackServer(app) as url:
        settings = make_settings(
            llm_base_url=url + "/v1",
            llm_api_key="llm-key-0123456789abcdef",
            speech_url=url + "/v1",
            speech_api_key="speech-key-0123456789ab",
        )
        model = load_chat_model(settings)
        with contextlib.suppress(Exception):  # refused: what matters is what was sent
            async for _ in model.stream([{"role": "user", "content": "hi"}]):
                pass
        client = speech_client(settings, None, "speech", max_in_flight=1)
        with contextlib.suppress(Exception):
            async with client.request("GET", "/audio/voices"):
                pass
    assert ("/v1/chat/completions", "Bearer llm-key-0123456789abcdef") in seen
    assert ("/v1/audio/voices", "Bearer speech-key-0123456789ab") in seen
    assert {key for _, key in seen} == {"Bearer llm-key-0123456789abcdef", "Bearer speech-key-0123456789ab"}

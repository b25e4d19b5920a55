"""The remote speech clients against a FAKE speech service on loopback (a real HTTP server whose
answers the test scripts: slow, failing, cut off), for what the real service cannot be made to do
on demand. The real service is in tests/agents/test_speech_service.py."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agents.engines.protocols import SpeechEngineUnavailable, SpeechSynthesisError, TranscriptionError
from agents.engines.remote.speech_client import SpeechClient
from agents.engines.remote.stt import RemoteSpeechToText
from agents.engines.remote.tts import RemoteTextToSpeech
from telephony.server import BackgroundServer
from tests.support.settings import make_settings

ONE_SECOND = bytes(32000)
"""One second of 16 kHz PCM16 silence: long enough to be sent."""


@dataclass
class FakeSpeech:
    """What the fake answers next, and what it saw."""

    statuses: list[int] = field(default_factory=list)
    """Statuses to answer before a success, one per request."""
    delay_s: float = 0.0
    """How long each request waits before it answers."""
    chunks: list[bytes] = field(default_factory=lambda: [b"\x01\x02" * 100])
    chunk_gap_s: float = 0.0
    drop_after: int | None = None
    """Cut the connection after this many chunks."""
    requests: int = 0
    concurrent: int = 0
    max_concurrent: int = 0
    chunks_sent: int = 0
    streams_closed: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self.transcriptions, methods=["POST"]),
                Route("/v1/audio/speech", self.speech, methods=["POST"]),
            ]
        )

    async def _enter(self) -> Response | None:
        self.requests += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.concurrent -= 1
        if self.statuses:
            status = self.statuses.pop(0)
            return JSONResponse({"error": {"message": f"scripted {status}", "type": "x"}}, status_code=status)
        return None

    async def transcriptions(self, request: Request) -> Response:
        async with request.form() as form:
            assert form["model"] == "whisper-1" and form["language"] == "en"
        return await self._enter() or JSONResponse({"text": " hello there "})

    async def speech(self, request: Request) -> Response:
        body = await request.json()
        assert body["response_format"] == "pcm"
        failed = await self._enter()
        if failed is not None:
            return failed
        return StreamingResponse(self._audio(), media_type="audio/pcm")

    async def _audio(self) -> AsyncIterator[bytes]:
        try:
            for index, chunk in enumerate(self.chunks):
                if self.drop_after is not None and index >= self.drop_after:
                    raise ConnectionAbortedError("scripted drop")
                if index:
                    await asyncio.sleep(self.chunk_gap_s)
                self.chunks_sent += 1
                yield chunk
        finally:
            self.streams_closed += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake() -> Iterator[tuple[FakeSpeech, str]]:
    speech = FakeSpeech()
    with BackgroundServer(speech.app(), make_settings()) as url:  # type: ignore[arg-type]
        yield speech, url + "/v1"


def client(url: str, **options: object) -> SpeechClient:
    """Generous clocks, so a loaded machine never turns an answer into a timeout; the deadline's
    own test passes a short one and scripts a service far slower than it."""
    values: dict[str, object] = {"timeout_s": 10.0, "connect_timeout_s": 5.0, "retries": 2, "backoff_s": 0.05}
    values.update(options)
    return SpeechClient(url, **values)  # type: ignore[arg-type]


async def test_a_transcription_comes_back_stripped(fake: tuple[FakeSpeech, str]) -> None:
    speech, url = fake
    stt = RemoteSpeechToText(client(url))
    transcript = await stt.transcribe(ONE_SECOND)
    assert transcript.text == "hello there" and transcript.audio_ms == 1000
    assert await stt.transcribe(bytes(1000)) == type(transcript)("", 31, 0.0)  # too short: no request
    assert speech.requests == 1
    await stt.aclose()


async def test_unavailable_answers_are_retried_and_refusals_are_not(fake: tuple[FakeSpeech, str]) -> None:
    speech, url = fake
    stt = RemoteSpeechToText(client(url))
    speech.statuses = [503, 502]
    assert (await stt.transcribe(ONE_SECOND)).text == "hello there"
    assert speech.requests == 3
    speech.statuses = [503, 503, 503]
    with pytest.raises(SpeechEngineUnavailable, match=r"3 attempts failed .*503: scripted 503"):
        await stt.transcribe(ONE_SECOND)
    speech.statuses = [400]
    with pytest.raises(TranscriptionError, match="400: scripted 400"):
        await stt.transcribe(ONE_SECOND)
    assert speech.requests == 7  # 3 + 3 + 1: the refusal was not retried
    await stt.aclose()


async def test_a_service_that_is_down_fails_the_turn_after_the_retries() -> None:
    stt = RemoteSpeechToText(client(f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(SpeechEngineUnavailable, match=r"3 attempts failed .*ConnectError"):
        await stt.transcribe(ONE_SECOND)
    assert stt.client.in_flight == 0
    await stt.aclose()


async def test_a_slow_service_costs_a_turn_the_timeout_and_no_pile_up(fake: tuple[FakeSpeech, str]) -> None:
    """The bound on waiting is the client's timeout, however long the service takes; past the
    in-flight bound requests are refused at once instead of queueing in the pod."""
    speech, url = fake
    speech.delay_s = 30.0
    stt = RemoteSpeechToText(client(url, timeout_s=1.0, max_in_flight=2))
    started = time.monotonic()
    results = await asyncio.gather(*(stt.transcribe(ONE_SECOND) for _ in range(6)), return_exceptions=True)
    waited = time.monotonic() - started
    messages = sorted(str(r) for r in results)
    assert all(isinstance(r, SpeechEngineUnavailable) for r in results), results
    assert sum("requests in flight (max 2)" in m for m in messages) == 4
    assert sum("no answer within 1 s" in m for m in messages) == 2
    assert waited < 10.0  # the timeout bounded the wait, not the service's 30 s
    assert speech.max_concurrent <= 2 and speech.requests == 2
    assert stt.client.in_flight == 0
    speech.delay_s = 0.0
    assert (await stt.transcribe(ONE_SECOND)).text == "hello there"  # it answers again: so do we
    await stt.aclose()


async def test_speech_streams_whole_samples_however_the_bytes_arrive(fake: tuple[FakeSpeech, str]) -> None:
    speech, url = fake
    audio = bytes(range(256)) * 40
    speech.chunks = [audio[:3], audio[3:5001], audio[5001:5002], audio[5002:]]
    tts = RemoteTextToSpeech(client(url), voice="af_heart")
    chunks = [chunk async for chunk in tts.synthesize("Hello there.")]
    assert b"".join(chunks) == audio
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert [c async for c in tts.synthesize(" ... ")] == [] and speech.requests == 1  # nothing to say: no request
    with pytest.raises(SpeechSynthesisError, match="max_text_chars"):
        [c async for c in tts.synthesize("x" * 4001)]
    await tts.aclose()


async def test_stopping_the_iteration_closes_the_request(fake: tuple[FakeSpeech, str]) -> None:
    """A barge-in closes the generator; the service sees the client leave and stops streaming."""
    speech, url = fake
    speech.chunks = [bytes(4800)] * 50
    speech.chunk_gap_s = 0.1
    tts = RemoteTextToSpeech(client(url), voice="af_heart")
    stream = tts.synthesize("A long answer.")
    assert len(await anext(stream)) == 4800
    await stream.aclose()
    assert tts.client.in_flight == 0
    for _ in range(100):
        if speech.streams_closed:
            break
        await asyncio.sleep(0.05)
    assert speech.streams_closed == 1 and speech.chunks_sent < 50
    await tts.aclose()


async def test_a_stream_cut_mid_answer_is_an_unavailable_service(fake: tuple[FakeSpeech, str]) -> None:
    speech, url = fake
    speech.chunks = [bytes(4800)] * 4
    speech.drop_after = 2
    tts = RemoteTextToSpeech(client(url), voice="af_heart")
    got = []
    with pytest.raises(SpeechEngineUnavailable, match="while reading"):
        async for chunk in tts.synthesize("Cut off."):
            got.append(chunk)
    assert 0 < len(b"".join(got)) < 4 * 4800
    speech.statuses = [400]
    with pytest.raises(SpeechSynthesisError, match="refused"):
        [c async for c in tts.synthesize("Refused.")]
    await tts.aclose()

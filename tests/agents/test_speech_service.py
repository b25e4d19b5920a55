"""`switchboard speech`: real Whisper tiny.en and Kokoro behind the OpenAI audio API on a loopback
port, spoken to by the pod's remote clients and by plain HTTP."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soxr

from agents.config import BACKCHANNEL_WORDS, AgentConfig
from agents.conversation.backchannel import BackchannelWords
from agents.engines.local.pool import InferencePool
from agents.engines.remote.speech_client import SpeechClient
from agents.engines.remote.stt import RemoteSpeechToText, wav_bytes
from agents.engines.remote.tts import RemoteTextToSpeech
from agents.speech_service import SpeechService
from telephony.cli.speech import load_speech_service
from telephony.server import BackgroundServer
from tests.support.settings import SPEECH_KEY, make_settings
from tests.support.speech import TEXTS, load, load_hum, normalise, silence

SETTINGS = make_settings()
BACKCHANNEL_PROMPT = AgentConfig(id="x").backchannel_prompt
VOICE = SETTINGS.tts_voice


@pytest.fixture(scope="module")
def service() -> Iterator[SpeechService]:
    service = load_speech_service(SETTINGS)
    yield service
    service.close()
    service.stt.close()
    service.tts.close()


@pytest.fixture(scope="module")
def url(service: SpeechService) -> Iterator[str]:
    with BackgroundServer(service.app(), SETTINGS) as base:  # type: ignore[arg-type]
        yield base


def clients(url: str) -> tuple[RemoteSpeechToText, RemoteTextToSpeech]:
    stt = RemoteSpeechToText(SpeechClient(url + "/v1", api_key=SPEECH_KEY, timeout_s=30.0))
    tts = RemoteTextToSpeech(SpeechClient(url + "/v1", api_key=SPEECH_KEY, timeout_s=30.0), voice=VOICE)
    return stt, tts


def to_16k(pcm24: bytes) -> bytes:
    samples = np.frombuffer(pcm24, dtype=np.int16).astype(np.float32) / 32768
    return (soxr.resample(samples, 24000, 16000, "HQ") * 32767).astype(np.int16).tobytes()


async def test_the_pods_clients_transcribe_and_speak_through_the_service(url: str) -> None:
    stt, tts = clients(url)
    transcript = await stt.transcribe(load("order_status"))
    assert normalise(transcript.text) == normalise(TEXTS["order_status"])
    text = "Your order shipped yesterday. It arrives on Friday."
    chunks = [chunk async for chunk in tts.synthesize(text)]
    audio = b"".join(chunks)
    assert len(chunks) > 2 and all(len(c) % 2 == 0 for c in chunks)
    assert 1.5 < len(audio) / 2 / tts.sample_rate < 8.0
    heard = await stt.transcribe(to_16k(audio))  # the service hears what it said
    assert normalise(heard.text) == normalise(text)
    hum = await stt.transcribe(silence(300) + load_hum() + silence(200), prompt=BACKCHANNEL_PROMPT)
    assert BackchannelWords(BACKCHANNEL_WORDS).only_backchannel(hum.text), hum.text  # the prompt went through
    await stt.aclose()
    await tts.aclose()


AUTH = {"Authorization": f"Bearer {SPEECH_KEY}"}


def test_the_api_in_plain_http(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30, headers=AUTH) as http:
        assert http.get("/healthz").json() == {"status": "ok", "pending": {"stt": 0, "tts": 0}}
        assert VOICE in http.get("/v1/audio/voices").json()["voices"]
        # Any WAV rate and stereo are read (resampled to 16 kHz), and the text format is plain.
        pcm16k = np.frombuffer(load("order_status"), dtype=np.int16)
        stereo_44k = soxr.resample(pcm16k.astype(np.float32), 16000, 44100).astype(np.int16).repeat(2)
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(44100)
            wav.writeframes(stereo_44k.tobytes())
        files = {"file": ("a.wav", out.getvalue(), "audio/wav")}
        answer = http.post("/v1/audio/transcriptions", files=files, data={"model": "x", "response_format": "text"})
        assert answer.status_code == 200 and normalise(answer.text) == normalise(TEXTS["order_status"])
        wav_answer = http.post("/v1/audio/speech", json={"input": "Hello.", "voice": VOICE, "response_format": "wav"})
        assert wav_answer.headers["content-type"] == "audio/wav" and wav_answer.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": "Hello.", "voice": "nobody"}, 400, "unknown voice 'nobody'"),
        ({"input": "x" * 4001, "voice": VOICE}, 400, "max_text_chars=4000"),
        ({"input": "  ", "voice": VOICE}, 400, "non-empty text"),
        ({"input": "Hello.", "voice": VOICE, "response_format": "mp3"}, 400, "streams pcm or wav"),
        ({"input": "Hello.", "voice": VOICE, "speed": 9}, 400, "between 0.5 and 2.0"),
        ({"input": "Hello " * 20_000, "voice": VOICE}, 413, "larger than 65536"),
    ],
)
def test_speech_requests_are_bounded_and_refusals_explained(
    url: str, body: dict[str, Any], status: int, message: str
) -> None:
    answer = httpx.post(url + "/v1/audio/speech", json=body, timeout=30, headers=AUTH)
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"]


def test_transcription_requests_are_bounded_and_refusals_explained(service: SpeechService) -> None:
    small = SpeechService(
        service.stt, service.tts, voices=service.voices, max_request_bytes=200_000, api_keys=[SPEECH_KEY]
    )
    with (
        BackgroundServer(small.app(), SETTINGS) as base,  # type: ignore[arg-type]
        httpx.Client(base_url=base, timeout=30, headers=AUTH) as http,
    ):

        def post(data: bytes, **fields: str) -> httpx.Response:
            return http.post("/v1/audio/transcriptions", files={"file": ("a.wav", data)}, data=fields)

        big = post(wav_bytes(bytes(300_000)))
        assert big.status_code == 413 and "larger than 200000" in big.json()["error"]["message"]
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        chunked = http.post(
            "/v1/audio/transcriptions",
            content=iter([head, *[b"x" * 100_000] * 3, b"\r\n--b--\r\n"]),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert chunked.status_code == 413  # no Content-Length: counted as it arrives
        assert "not an audio file" in post(b"garbage" * 100).json()["error"]["message"]
        assert "English only" in post(wav_bytes(bytes(32000)), language="fr").json()["error"]["message"]
        long_prompt = post(wav_bytes(bytes(32000)), prompt="Mm-hmm. " * 100)
        assert long_prompt.status_code == 400 and "at most 500" in long_prompt.json()["error"]["message"]
        no_file = http.post("/v1/audio/transcriptions", data={"a": "b"})
        assert "needs an audio `file`" in no_file.json()["error"]["message"]
    small.close()


def test_a_full_pool_answers_503_at_once(service: SpeechService, url: str) -> None:
    """Concurrent jobs are bounded by the engines' pools: past them a request is refused, not queued."""
    full = InferencePool("stt", max_workers=1, max_pending=1)
    release = threading.Event()
    blocker = full._executor.submit(release.wait)  # the pool's one place is taken
    full._pending = 1
    original, service.stt.pool = service.stt.pool, full
    try:
        answer = httpx.post(
            url + "/v1/audio/transcriptions",
            files={"file": ("a.wav", wav_bytes(bytes(32000)))},
            timeout=30,
            headers=AUTH,
        )
        assert answer.status_code == 503 and answer.json()["error"]["type"] == "overloaded"
    finally:
        service.stt.pool = original
        release.set()
        blocker.result()
        full.close()


async def test_a_client_that_leaves_stops_the_synthesis(service: SpeechService, url: str) -> None:
    """Barge-in: the pod closes the request after the first audio; the service makes no further
    sentence (at most the one already running finishes)."""
    spoken: list[str] = []
    kokoro = service.tts.kokoro  # type: ignore[attr-defined]
    original = kokoro.create

    def counting(text: str, **kwargs: Any) -> Any:
        spoken.append(text)
        return original(text, **kwargs)

    kokoro.create = counting
    try:
        _, tts = clients(url)
        sentences = " ".join(f"This is sentence number {n}." for n in range(1, 9))
        stream = tts.synthesize(sentences)
        await anext(stream)
        await stream.aclose()
        for _ in range(40):
            await asyncio.sleep(0.25)
            if service.tts.pool.pending == 0 and len(spoken) == len(set(spoken)):  # type: ignore[attr-defined]
                break
        await asyncio.sleep(1.0)
        assert 1 <= len(spoken) <= 3, spoken  # of 8 sentences
        await tts.aclose()
    finally:
        kokoro.create = original

"""`switchboard speech`'s doors, over loopback with fake engines (every refusal here happens before
an engine would run): bearer keys on every route but the health probe, and uploads checked from
their header before anything is decoded or resampled (the 1 Hz WAV that expanded to 735 MB)."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import soxr

from agents.loopback import LoopbackServer
from agents.speech_service import SpeechService
from agents.testing.fake_engines import FakeSpeechToText, FakeTextToSpeech, speech

KEY = "speech-key-0123456789abcdef"
OLD_KEY = "speech-key-old-0123456789abcdef"


def wav(frames: bytes, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def one_hz(size: int) -> bytes:
    """The attack: a small WAV that declares a 1 Hz frame rate (16 kHz is 16000x as many samples)."""
    return wav(np.random.default_rng(0).integers(-3000, 3000, size // 2, dtype=np.int16).tobytes(), rate=1)


class Spy:
    """Records every resample and transcription (and the thread each ran on)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stt: FakeSpeechToText) -> None:
        self.resampled: list[str] = []
        self.stt = stt
        original = soxr.resample

        def resample(*args: Any, **kwargs: Any) -> Any:
            self.resampled.append(threading.current_thread().name)
            return original(*args, **kwargs)

        monkeypatch.setattr(soxr, "resample", resample)


@pytest.fixture
def stt() -> FakeSpeechToText:
    return FakeSpeechToText()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, stt: FakeSpeechToText) -> Spy:
    return Spy(monkeypatch, stt)


@pytest.fixture
def http(stt: FakeSpeechToText) -> Iterator[httpx.Client]:
    service = SpeechService(
        stt,  # type: ignore[arg-type]
        FakeTextToSpeech(),
        voices=["af_heart"],
        max_request_bytes=1024 * 1024,
        api_keys=[OLD_KEY, KEY],
        max_upload_seconds=2.0,
    )
    with LoopbackServer(service.app()) as url, httpx.Client(base_url=url, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client
    service.close()


def transcribe(http: httpx.Client, data: bytes, **headers: str) -> httpx.Response:
    return http.post("/v1/audio/transcriptions", files={"file": ("a.wav", data)}, data={"model": "x"}, headers=headers)


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-key-0123456789abcdef", f"Basic {KEY}", f"Bearer {KEY}x", KEY],
)
def test_a_request_without_a_valid_key_gets_401_on_every_route(
    http: httpx.Client, stt: FakeSpeechToText, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    if authorization is None:
        del http.headers["Authorization"]
    answers = [
        transcribe(http, wav(speech("hello")), **headers),
        http.post("/v1/audio/speech", json={"input": "Hello.", "voice": "af_heart"}, headers=headers),
        http.get("/v1/audio/voices", headers=headers),
        http.get("/v1/models", headers=headers),  # a route that does not exist: 401 too, nothing told
    ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["type"] == "authentication_error"
        assert KEY not in answer.text
    assert stt.started == 0


def test_each_configured_key_is_accepted_and_the_health_probe_needs_none(http: httpx.Client) -> None:
    for key in (KEY, OLD_KEY):  # two keys during a rotation
        answer = http.get("/v1/audio/voices", headers={"Authorization": f"bearer {key}"})
        assert answer.status_code == 200 and answer.json() == {"voices": ["af_heart"]}
    del http.headers["Authorization"]
    assert http.get("/healthz").status_code == 200


def test_the_pods_key_opens_the_door_to_a_transcription(http: httpx.Client, stt: FakeSpeechToText) -> None:
    answer = transcribe(http, wav(speech("order status")))
    assert answer.status_code == 200 and answer.json() == {"text": "order status"}
    assert stt.started == 1


def test_a_service_without_keys_is_refused_unless_it_says_so() -> None:
    with pytest.raises(ValueError, match="no API keys"):
        SpeechService(FakeSpeechToText(), FakeTextToSpeech(), voices=[], max_request_bytes=65536, api_keys=[])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shorter than 16 characters"):
        SpeechService(FakeSpeechToText(), FakeTextToSpeech(), voices=[], max_request_bytes=65536, api_keys=["short"])  # type: ignore[arg-type]
    open_ = SpeechService(
        FakeSpeechToText(),  # type: ignore[arg-type]
        FakeTextToSpeech(),
        voices=[],
        max_request_bytes=65536,
        api_keys=[],
        allow_unauthenticated=True,
    )
    open_.close()


# -- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8 * 1024, 64 * 1024])
def test_the_1_hz_wav_is_refused_before_any_resample(http: httpx.Client, spy: Spy, size: int) -> None:
    answer = transcribe(http, one_hz(size))
    assert answer.status_code == 400
    assert "sample rate 1 Hz" in answer.json()["error"]["message"]
    assert spy.resampled == [] and spy.stt.started == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (wav(bytes(3 * 32000)), "3.0 s of audio; at most 2.0 s"),
        (wav(bytes(320), rate=96000), "sample rate 96000 Hz"),
        (wav(bytes(320), rate=7999), "sample rate 7999 Hz"),
        (wav(bytes(600), channels=3), "3 channels"),
        (wav(bytes(320), width=1), "8-bit samples"),
        (wav(bytes(320), width=4), "32-bit samples"),
    ],
)
def test_uploads_outside_the_bounds_are_refused_from_their_header(
    http: httpx.Client, spy: Spy, data: bytes, message: str
) -> None:
    answer = transcribe(http, data)
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]
    assert spy.resampled == [] and spy.stt.started == 0


def test_a_header_that_declares_more_than_it_carries_is_bounded_by_what_it_carries(
    http: httpx.Client, spy: Spy
) -> None:
    """A streaming WAV header declares 4 GiB; what counts is the audio in the (bounded) body."""
    data = bytearray(wav(speech("hello")))
    data[40:44] = b"\xff\xff\xff\xff"
    answer = transcribe(http, bytes(data))
    assert answer.status_code == 200 and answer.json() == {"text": "hello"}


def test_a_supported_upload_is_resampled_off_the_event_loop(http: httpx.Client, spy: Spy) -> None:
    stereo = np.repeat(np.frombuffer(speech("hello", sample_rate=8000), dtype=np.int16), 2).tobytes()
    answer = transcribe(http, wav(stereo, rate=8000, channels=2))
    assert answer.status_code == 200
    assert spy.resampled and all(name.startswith("infer-speech-decode") for name in spy.resampled), spy.resampled


def test_a_compressed_upload_longer_than_the_bound_stops_decoding_and_is_refused(http: httpx.Client, spy: Spy) -> None:
    flac = encode_flac(np.zeros(16000 * 5, dtype=np.int16), 16000)
    answer = transcribe(http, flac)
    assert answer.status_code == 400
    assert "longer than 2.0 s" in answer.json()["error"]["message"]
    assert spy.stt.started == 0


def test_a_compressed_upload_at_an_unsupported_rate_is_refused(http: httpx.Client, spy: Spy) -> None:
    answer = transcribe(http, encode_flac(np.zeros(9600, dtype=np.int16), 96000))
    assert answer.status_code == 400
    assert "sample rate 96000 Hz" in answer.json()["error"]["message"]
    assert spy.stt.started == 0


def test_a_short_compressed_upload_is_transcribed(http: httpx.Client, spy: Spy) -> None:
    answer = transcribe(http, encode_flac(np.frombuffer(speech("hello"), dtype=np.int16), 16000))
    assert answer.status_code == 200 and answer.json() == {"text": "hello"}


def encode_flac(samples: np.ndarray, rate: int) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()

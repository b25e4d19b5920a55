"""The simulator's building blocks: Twilio's playback buffer, caller audio (WAV reading), script layout."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from telephony.audio.mulaw import audioop, mulaw_to_pcm16, pcm16_to_mulaw
from telephony.simulator.caller_audio import (
    WavError,
    load_utterance,
    read_wav,
    synthetic_utterance,
    to_twilio,
    write_wav,
)
from telephony.simulator.player import PlaybackBuffer
from telephony.simulator.script import DTMF_TICKS, SILENCE_FRAME, Listen, Pause, Press, Say, WaitForAgent, lay_out

FRAME = 160

# -- PlaybackBuffer -------------------------------------------------------------------------


def test_plays_one_frame_per_call() -> None:
    buffer = PlaybackBuffer()
    data = bytes(range(200)) * 2  # 400 bytes = 2.5 frames
    buffer.add_audio(data)
    assert buffer.buffered_ms == 50
    played = [buffer.play_frame() for _ in range(4)]
    assert [len(audio) for audio, _ in played] == [160, 160, 80, 0]
    assert b"".join(audio for audio, _ in played) == data
    assert all(marks == [] for _, marks in played)
    assert buffer.buffered_ms == 0


def test_frame_spans_several_audio_chunks() -> None:
    buffer = PlaybackBuffer()
    for chunk in (b"\x01" * 100, b"\x02" * 100, b"\x03" * 100):
        buffer.add_audio(chunk)
    first, _ = buffer.play_frame()
    assert first == b"\x01" * 100 + b"\x02" * 60
    second, _ = buffer.play_frame()
    assert second == b"\x02" * 40 + b"\x03" * 100


def test_mark_is_reached_only_after_the_audio_before_it() -> None:
    buffer = PlaybackBuffer()
    buffer.add_audio(b"\x01" * 200)
    buffer.add_mark("a")
    buffer.add_audio(b"\x02" * 100)
    buffer.add_mark("b")
    buffer.add_audio(b"\x03" * 300)
    buffer.add_mark("c")

    assert buffer.play_frame() == (b"\x01" * 160, [])
    audio, marks = buffer.play_frame()
    assert audio == b"\x01" * 40 + b"\x02" * 100 + b"\x03" * 20
    assert marks == ["a", "b"]
    assert buffer.play_frame() == (b"\x03" * 160, [])
    assert buffer.play_frame() == (b"\x03" * 120, ["c"])
    assert buffer.play_frame() == (b"", [])


def test_mark_on_a_frame_boundary_is_reached_with_that_frame() -> None:
    buffer = PlaybackBuffer()
    buffer.add_audio(b"\x01" * 160)
    buffer.add_mark("end-of-first")
    buffer.add_audio(b"\x02" * 160)
    assert buffer.play_frame() == (b"\x01" * 160, ["end-of-first"])
    assert buffer.play_frame() == (b"\x02" * 160, [])


def test_mark_with_no_audio_before_it_is_reached_at_once() -> None:
    buffer = PlaybackBuffer()
    buffer.add_mark("x")
    buffer.add_mark("y")
    assert buffer.play_frame() == (b"", ["x", "y"])


def test_clear_returns_dropped_ms_and_pending_marks() -> None:
    buffer = PlaybackBuffer()
    buffer.add_audio(b"\x01" * 800)
    buffer.add_mark("a")
    buffer.add_audio(b"\x02" * 400)
    buffer.add_mark("b")
    buffer.play_frame()
    dropped_ms, marks = buffer.clear()
    assert dropped_ms == pytest.approx((1200 - 160) / 8)
    assert marks == ["a", "b"]
    assert buffer.buffered_ms == 0
    assert buffer.play_frame() == (b"", [])
    assert buffer.clear() == (0, [])


def test_max_buffered_ms_is_the_high_water_mark() -> None:
    buffer = PlaybackBuffer()
    buffer.add_audio(b"\x01" * 800)  # 100 ms
    assert buffer.max_buffered_ms == 100
    buffer.play_frame()
    buffer.play_frame()
    buffer.add_audio(b"\x01" * 160)  # 60 ms left, plus 20
    assert buffer.buffered_ms == 80
    assert buffer.max_buffered_ms == 100
    buffer.add_audio(b"\x01" * 1600)
    assert buffer.max_buffered_ms == 280
    buffer.clear()
    assert buffer.max_buffered_ms == 280


def test_overflow_drops_audio_beyond_the_buffer() -> None:
    buffer = PlaybackBuffer(max_bytes=320)
    buffer.add_audio(b"\x01" * 160)
    buffer.add_audio(b"\x02" * 200)  # would exceed 320: dropped whole
    buffer.add_audio(b"\x03" * 160)  # fits exactly
    assert buffer.overflowed_bytes == 200
    assert buffer.buffered_ms == 40
    assert buffer.play_frame()[0] == b"\x01" * 160
    assert buffer.play_frame()[0] == b"\x03" * 160


# -- WAV reading ----------------------------------------------------------------------------


def wav_bytes(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    body: bytes,
    *,
    extensible_subformat: int | None = None,
    chunks_before_data: bytes = b"",
) -> bytes:
    """A WAV file written by hand (independent of `write_wav`)."""
    block = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", tag if extensible_subformat is None else 0xFFFE, channels, rate, rate * block, block, bits
    )
    if extensible_subformat is not None:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", extensible_subformat) + guid_tail
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + chunks_before_data
    chunks += b"data" + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def write(tmp_path: Path, data: bytes, name: str = "x.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pcm16_mono(tmp_path: Path) -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768, 1], dtype="<i2")
    got, rate = read_wav(write(tmp_path, wav_bytes(1, 1, 16000, 16, samples.tobytes())))
    assert rate == 16000
    assert got.dtype == np.int16
    assert got.tolist() == samples.tolist()


def test_pcm16_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    left = [1000, -2000, 30000, -32768]
    right = [3000, 2000, 30000, -32768]
    interleaved = np.array([v for pair in zip(left, right, strict=True) for v in pair], dtype="<i2")
    got, rate = read_wav(write(tmp_path, wav_bytes(1, 2, 44100, 16, interleaved.tobytes())))
    assert rate == 44100
    assert got.dtype == np.int16
    assert got.tolist() == [2000, 0, 30000, -32768]


def test_pcm8_is_unsigned(tmp_path: Path) -> None:
    got, rate = read_wav(write(tmp_path, wav_bytes(1, 1, 8000, 8, bytes([0, 64, 128, 192, 255]))))
    assert rate == 8000
    assert got.dtype == np.int16
    assert got.tolist() == [-32768, -16384, 0, 16384, 32512]


def test_pcm24(tmp_path: Path) -> None:
    values = [0, 0x123456, -0x123456, 0x7FFFFF, -0x800000, 255, -1]
    body = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    got, _ = read_wav(write(tmp_path, wav_bytes(1, 1, 48000, 24, body)))
    assert got.dtype == np.int16
    assert got.tolist() == [v >> 8 for v in values]  # the top 16 of 24 bits
    assert got.tolist()[:5] == [0, 0x1234, -0x1235, 32767, -32768]


def test_pcm32(tmp_path: Path) -> None:
    values = np.array([0, 0x12345678, -0x12345678, 2**31 - 1, -(2**31)], dtype="<i4")
    got, _ = read_wav(write(tmp_path, wav_bytes(1, 1, 8000, 32, values.tobytes())))
    assert got.tolist() == [0, 0x1234, -0x1235, 32767, -32768]


def test_float32(tmp_path: Path) -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0], dtype="<f4")
    got, rate = read_wav(write(tmp_path, wav_bytes(3, 1, 24000, 32, floats.tobytes())))
    assert rate == 24000
    assert got.dtype == np.int16
    assert got.tolist() == [0, 16383, -16383, 32767, -32767, 32767, -32767]  # clipped, not wrapped


def test_float32_stereo(tmp_path: Path) -> None:
    floats = np.array([0.5, 0.5, -0.25, -0.25], dtype="<f4")
    got, _ = read_wav(write(tmp_path, wav_bytes(3, 2, 16000, 32, floats.tobytes())))
    assert got.tolist() == [16383, -8191]


def test_mulaw_format_tag_7(tmp_path: Path) -> None:
    # G.711 mu-law reference points: 0x80 = +32124, 0x00 = -32124, 0xFF = 0
    got, rate = read_wav(write(tmp_path, wav_bytes(7, 1, 8000, 8, b"\x80\x00\xff")))
    assert rate == 8000
    assert got.tolist() == [32124, -32124, 0]

    sine = (12000 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)).astype("<i2")
    got, _ = read_wav(write(tmp_path, wav_bytes(7, 1, 8000, 8, pcm16_to_mulaw(sine.tobytes())), "sine.wav"))
    assert got.size == 800
    assert np.all(np.abs(got.astype(int) - sine.astype(int)) <= np.abs(sine.astype(int)) / 16 + 8)


def test_alaw_format_tag_6(tmp_path: Path) -> None:
    # G.711 A-law reference points: 0xD5 = +8, 0x55 = -8, 0xAA = +32256, 0x2A = -32256
    got, rate = read_wav(write(tmp_path, wav_bytes(6, 1, 8000, 8, b"\xd5\x55\xaa\x2a")))
    assert rate == 8000
    assert got.tolist() == [8, -8, 32256, -32256]

    sine = (12000 * np.sin(2 * np.pi * 440 * np.arange(800) / 8000)).astype("<i2")
    body = audioop.lin2alaw(sine.tobytes(), 2)
    got, _ = read_wav(write(tmp_path, wav_bytes(6, 1, 8000, 8, body), "sine.wav"))
    assert np.all(np.abs(got.astype(int) - sine.astype(int)) <= np.abs(sine.astype(int)) / 16 + 8)


def test_extensible_format_uses_the_subformat(tmp_path: Path) -> None:
    samples = np.array([5, -5, 12345], dtype="<i2")
    got, rate = read_wav(write(tmp_path, wav_bytes(1, 1, 22050, 16, samples.tobytes(), extensible_subformat=1)))
    assert rate == 22050
    assert got.tolist() == [5, -5, 12345]

    floats = np.array([0.5], dtype="<f4")
    got, _ = read_wav(write(tmp_path, wav_bytes(3, 1, 8000, 32, floats.tobytes(), extensible_subformat=3), "f.wav"))
    assert got.tolist() == [16383]


def test_unknown_chunks_are_skipped_including_pad_byte(tmp_path: Path) -> None:
    odd_list = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # odd size: one pad byte follows
    samples = np.array([7, 8, 9], dtype="<i2")
    got, _ = read_wav(write(tmp_path, wav_bytes(1, 1, 8000, 16, samples.tobytes(), chunks_before_data=odd_list)))
    assert got.tolist() == [7, 8, 9]


def test_trailing_partial_samples_are_ignored(tmp_path: Path) -> None:
    samples = np.array([100, 200], dtype="<i2").tobytes()
    got, _ = read_wav(write(tmp_path, wav_bytes(1, 1, 8000, 16, samples + b"\x01")))
    assert got.tolist() == [100, 200]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a wav file at all",
        b"RIFX" + struct.pack("<I", 4) + b"WAVE",
        b"RIFF" + struct.pack("<I", 4) + b"AVI ",
        np.zeros(100, dtype=np.int16).tobytes(),
    ],
)
def test_not_riff_wave(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(WavError, match="not a RIFF/WAVE file"):
        read_wav(write(tmp_path, data))


@pytest.mark.parametrize(
    ("tag", "bits"),
    [(2, 4), (0x11, 4), (1, 12), (3, 64), (0x55, 0)],  # MS ADPCM, IMA ADPCM, 12-bit PCM, float64, MP3
)
def test_unsupported_encoding(tmp_path: Path, tag: int, bits: int) -> None:
    with pytest.raises(WavError, match=f"unsupported WAV encoding \\(format tag {tag}, {bits} bits\\)"):
        read_wav(write(tmp_path, wav_bytes(tag, 1, 8000, bits, b"\x00" * 64)))


def test_no_data_chunk(tmp_path: Path) -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt)) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    with pytest.raises(WavError, match="no data chunk"):
        read_wav(write(tmp_path, data))


def test_data_before_fmt(tmp_path: Path) -> None:
    data = b"RIFF" + struct.pack("<I", 16) + b"WAVE" + b"data" + struct.pack("<I", 4) + b"\x00" * 4
    with pytest.raises(WavError, match="data before fmt chunk"):
        read_wav(write(tmp_path, data))


@pytest.mark.parametrize(("channels", "rate"), [(0, 8000), (1, 0)])
def test_bad_channels_or_rate(tmp_path: Path, channels: int, rate: int) -> None:
    with pytest.raises(WavError, match="bad channel count or sample rate"):
        read_wav(write(tmp_path, wav_bytes(1, channels, rate, 16, b"\x00" * 8)))


@pytest.mark.parametrize("fmt_size", [4, 8, 14])
def test_truncated_fmt_chunk(tmp_path: Path, fmt_size: int) -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)[:fmt_size]
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4) + b"\x00" * 4
    data = b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
    with pytest.raises(WavError):
        read_wav(write(tmp_path, data))


def test_write_read_round_trip_mono(tmp_path: Path) -> None:
    samples = (np.sin(np.arange(1000) / 7) * 20000).astype(np.int16)
    path = tmp_path / "mono.wav"
    write_wav(path, samples, 16000)
    got, rate = read_wav(path)
    assert rate == 16000
    assert np.array_equal(got, samples)
    assert path.stat().st_size == 44 + 2 * samples.size  # canonical 44-byte header


def test_write_read_round_trip_stereo(tmp_path: Path) -> None:
    stereo = np.array([[100, 300], [-100, -300], [32767, 32767]], dtype=np.int16)
    path = tmp_path / "stereo.wav"
    write_wav(path, stereo, 8000)
    got, rate = read_wav(path)
    assert rate == 8000
    assert got.tolist() == [200, -200, 32767]


def test_write_wav_is_readable_by_the_stdlib(tmp_path: Path) -> None:
    import wave

    samples = np.arange(-50, 50, dtype=np.int16)
    path = tmp_path / "std.wav"
    write_wav(path, samples, 8000)
    with wave.open(str(path)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert reader.readframes(1000) == samples.astype("<i2").tobytes()


# -- caller audio -----------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [1.6, 0.5, 0.02])
def test_synthetic_utterance_length_at_8k(seconds: float) -> None:
    audio = synthetic_utterance(seconds)
    assert len(audio) == int(seconds * 8000)  # one mu-law byte per 8 kHz sample


def test_synthetic_utterance_is_loud_voice_not_silence() -> None:
    pcm = np.frombuffer(mulaw_to_pcm16(synthetic_utterance()), dtype=np.int16).astype(int)
    assert 11000 <= np.max(np.abs(pcm)) <= 13000  # normalised to 12000 before mu-law
    assert abs(pcm[0]) < 1000 and abs(pcm[-1]) < 1000  # faded in and out
    rms = np.sqrt(np.mean(pcm.astype(float) ** 2))
    assert rms > 2000


def test_to_twilio_resamples_to_8k(tmp_path: Path) -> None:
    samples = (np.sin(2 * np.pi * 300 * np.arange(16000) / 16000) * 10000).astype(np.int16)
    assert len(to_twilio(samples, 16000)) == 8000
    assert to_twilio(samples[:800], 8000) == pcm16_to_mulaw(samples[:800].tobytes())
    path = tmp_path / "u.wav"
    write_wav(path, samples, 16000)
    assert len(load_utterance(path)) == 8000


# -- script layout --------------------------------------------------------------------------


def test_lay_out_ticks() -> None:
    hello = bytes(range(1, 121)) * 3  # 360 bytes: 2 full frames and a 40-byte remainder
    track = lay_out(
        [Say(hello, label="hello"), Pause(0.1), Press("12"), Say(b"\x05" * 160)],
        lead_in_s=0.5,
        tail_s=0.3,
    )
    # lead-in 25 ticks | hello 25..28 | pause 5 | "1" at 33, "2" at 38 (5 ticks each) | say 43..44 | tail 15
    assert track.utterances == [(25, 28, "hello"), (43, 44, "utterance")]
    assert track.digits == {33: "1", 38: "2"}
    assert track.ticks == 59
    assert all(len(frame) == FRAME for frame in track.frames)

    assert track.frames[:25] == [SILENCE_FRAME] * 25
    assert track.frames[25] == hello[:160]
    assert track.frames[26] == hello[160:320]
    assert track.frames[27] == hello[320:] + b"\xff" * 120  # padded with mu-law silence
    assert track.frames[28:43] == [SILENCE_FRAME] * 15  # pause and key presses are silent
    assert track.frames[43] == b"\x05" * 160
    assert track.frames[44:] == [SILENCE_FRAME] * 15


def test_dtmf_ticks_spacing() -> None:
    track = lay_out([Press("#*0")], lead_in_s=0, tail_s=0)
    assert track.digits == {0: "#", DTMF_TICKS: "*", 2 * DTMF_TICKS: "0"}
    assert track.ticks == 3 * DTMF_TICKS
    assert track.utterances == []


def test_empty_script_is_lead_in_plus_tail() -> None:
    track = lay_out([], lead_in_s=0.2, tail_s=0.1)
    assert track.ticks == 15
    assert track.frames == [SILENCE_FRAME] * 15
    assert track.digits == {}
    assert track.utterances == []


def test_synthetic_utterance_lays_out_to_its_duration() -> None:
    track = lay_out((Say(synthetic_utterance(1.0), label="s"),), lead_in_s=0, tail_s=0)
    assert track.utterances == [(0, 50, "s")]
    assert track.ticks == 50


def test_listen_takes_no_ticks_and_marks_where_the_caller_holds() -> None:
    listen = Listen(max_seconds=5.0, quiet_seconds=0.5)
    track = lay_out([Say(b"\x00" * 320), listen, Pause(0.04)], lead_in_s=0.0, tail_s=0.0)
    assert track.ticks == 2 + 2  # the utterance, then the pause: listening itself lays out nothing
    assert track.listens == {2: listen}


def test_waiting_for_the_agent_takes_no_ticks_and_marks_where_the_caller_holds() -> None:
    wait = WaitForAgent(after_seconds=0.5)
    track = lay_out([wait, Say(b"\x00" * 320)], lead_in_s=0.0, tail_s=0.0)
    assert track.ticks == 2  # the utterance only: it is said once the agent has talked for 0.5 s
    assert track.listens == {0: wait}

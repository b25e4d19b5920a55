"""The `switchboard` command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telephony.cli.main import main
from telephony.simulator import read_wav, write_wav
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN


def test_call_places_a_simulated_call(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    caller = tmp_path / "hello.wav"
    t = np.arange(int(0.8 * 22050)) / 22050
    write_wav(caller, (np.sin(2 * np.pi * 220 * t) * 9000).astype(np.int16), 22050)  # any rate works
    recording = tmp_path / "call.wav"
    code = main(
        [
            "call",
            "--url",
            server,
            "--auth-token",
            AUTH_TOKEN,
            "--to",
            AGENT_NUMBER,
            "--say",
            str(caller),
            "--pause",
            "2",
            "--dtmf",
            "*",
            "--tail",
            "1.5",
            "--record",
            str(recording),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "caller  starts speaking: hello.wav" in out
    assert "turn 1: response latency" in out
    assert "agent hung up (caller pressed *)" in out
    samples, rate = read_wav(recording)
    assert rate == 8000 and samples.size > 8000 * 3


def test_call_to_unknown_number_reports_the_say(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "--url", server, "--auth-token", AUTH_TOKEN, "--to", "+15559990000"]) == 0
    assert "not in service" in capsys.readouterr().out


def test_call_with_wrong_token_fails(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "--url", server, "--auth-token", "wrong", "--to", AGENT_NUMBER]) == 1
    assert "HTTP 403" in capsys.readouterr().out


def test_call_without_token_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", raising=False)
    assert main(["call", "--to", AGENT_NUMBER]) == 2
    assert "auth-token" in capsys.readouterr().err


def test_call_with_unreadable_wav_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file")
    assert main(["call", "--auth-token", "x", "--to", AGENT_NUMBER, "--say", str(bad)]) == 2
    assert "not a RIFF/WAVE file" in capsys.readouterr().err


def test_serve_without_auth_token_explains_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", raising=False)
    assert main(["serve"]) == 2
    assert "twilio_auth_token" in capsys.readouterr().err


def test_serve_with_invalid_env_explains_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHBOARD_TWILIO_AUTH_TOKEN", "x")
    monkeypatch.setenv("SWITCHBOARD_NUMBERS", "{not json")
    assert main(["serve"]) == 2
    assert "numbers" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="the embedded model is not installed (make demo installs it)"
)
def test_the_voice_demo_runs_a_whole_call_on_the_embedded_engines(tmp_path: Path) -> None:
    """The README's main job, as `make demo` runs it: every engine real, the model embedded."""
    recording = tmp_path / "demo.wav"
    result = subprocess.run(
        [sys.executable, "-m", "telephony.cli.main", "demo", "--record", str(recording)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "what is the status of my latest order" in result.stdout  # Whisper heard the caller
    assert result.stdout.count("response latency") == 2  # both caller turns were answered
    assert "whisper hears the agent say" in result.stdout and "switchboard shop" in result.stdout.lower()
    assert recording.stat().st_size > 8000 * 2 * 2 * 20


def test_the_echo_demo_runs_a_whole_call(tmp_path: Path) -> None:
    """The model-free demo, as a user runs it (a separate process, the console script)."""
    recording = tmp_path / "demo.wav"
    result = subprocess.run(
        [sys.executable, "-m", "telephony.cli.main", "demo", "--agent", "echo", "--record", str(recording)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "agent hung up (caller pressed *)" in result.stdout
    assert "clear " in result.stdout  # the demo shows a barge-in
    assert result.stdout.count("response latency") == 3
    assert recording.stat().st_size > 8000 * 2 * 2 * 10

"""The TwiML documents the webhooks answer with, built with Twilio's own library."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from agents.port import CallOutcome, Transfer

SAY_VOICE = "Polly.Joanna"


def connect_stream(stream_url: str, parameters: Mapping[str, str], action_url: str) -> str:
    """Bidirectional stream to our media endpoint; Twilio asks `action_url` when it ends."""
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def say_and_hang_up(message: str) -> str:
    response = VoiceResponse()
    response.say(message, voice=SAY_VOICE)
    response.hangup()
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def reject_busy() -> str:
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def after_stream(outcome: CallOutcome | None) -> str:
    """What Twilio does once the stream has ended: dial the transfer target, or hang up."""
    response = VoiceResponse()
    if isinstance(outcome, Transfer):
        dial = Dial()
        if outcome.to.startswith("sip:"):
            dial.sip(outcome.to)
        else:
            dial.number(outcome.to)
        response.append(dial)
    else:
        response.hangup()
    return str(response)

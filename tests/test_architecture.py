"""The house rules hold for the repository, and each rule catches a violation planted in a small tree.

Rooms point down (`telephony` > `agents` > `tools` > `db`, imports inside functions and under
`TYPE_CHECKING` included); product modules stay at 500 lines or under; no import circle between
product modules; the MongoDB driver only in `db/`; test modules import only `tests.support`; the
README's architecture tree names exactly the folders there are.

The circle rule reads module-level imports, those under `TYPE_CHECKING` included (the old
`tools/tool.py` <-> `tools/executor.py` circle ran through one); an import inside a function, the
way an optional engine is reached, is left out of it; the room rule checks every import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.architecture import (
    MAX_MODULE_LINES,
    cross_test_imports,
    cycles,
    driver_imports,
    import_cycles,
    long_modules,
    parse,
    readme_tree,
    readme_tree_mismatches,
    upward_imports,
)

ROOT = Path(__file__).resolve().parent.parent


def plant(root: Path, files: dict[str, str]) -> Path:
    """A small tree: the four rooms as packages, plus `files` (path -> source)."""
    for room in ("telephony", "agents", "tools", "db"):
        (root / room).mkdir(exist_ok=True)
        (root / room / "__init__.py").touch()
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


# -- the repository -----------------------------------------------------------------------------


def holds(findings: list[str]) -> None:
    """Passes on no findings; otherwise fails listing every one, a line each."""
    assert not findings, "\n" + "\n".join(findings)


def test_no_room_imports_a_room_above_it() -> None:
    holds(upward_imports(ROOT))


def test_product_modules_stay_under_the_line_limit() -> None:
    holds(long_modules(ROOT))


def test_no_import_circle_between_product_modules() -> None:
    holds(import_cycles(ROOT))


def test_the_database_driver_stays_in_db() -> None:
    holds(driver_imports(ROOT))


def test_test_modules_share_helpers_only_through_tests_support() -> None:
    holds(cross_test_imports(ROOT))


def test_the_readme_tree_names_exactly_the_folders_there_are() -> None:
    holds(readme_tree_mismatches(ROOT, (ROOT / "README.md").read_text()))


# -- each rule on a planted violation --------------------------------------------------------------


def test_an_upward_import_is_caught_wherever_it_is(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "tools/lookup.py": "from db import store\n",  # down: allowed
            "tools/hidden.py": "def f():\n    import agents.port\n",
            "db/typed.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from telephony.app import App\n"),
        },
    )
    found = upward_imports(root)
    assert len(found) == 2
    assert any("tools/hidden.py:2: tools imports agents.port" in line for line in found)
    assert any("db/typed.py:3: db imports telephony.app" in line for line in found)


def test_a_long_module_is_caught(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "agents/long.py": "x = 1\n" * (MAX_MODULE_LINES + 100),
            "agents/at_the_limit.py": "x = 1\n" * MAX_MODULE_LINES,
        },
    )
    assert long_modules(root) == [f"agents/long.py: {MAX_MODULE_LINES + 100} lines (at most {MAX_MODULE_LINES})"]


def test_an_import_circle_is_caught(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "tools/tool.py": "from tools.executor import ToolContext\n",
            "tools/executor.py": "from . import tool\n",  # relative: resolved to tools.tool
            "tools/audit.py": "from tools.tool import Tool\n",  # into the circle, not part of it
            "db/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from db.b import B\n",
            "db/b.py": "from db import a\n",  # closed by a type-only import: still a circle
            "agents/late.py": "def f():\n    from agents import early\n",
            "agents/early.py": "from agents import late\n",  # closed only inside a function: no circle
        },
    )
    assert import_cycles(root) == ["db.a <-> db.b", "tools.executor <-> tools.tool"]


def test_cycles_finds_each_circle_once() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_the_driver_outside_db_is_caught(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "db/client.py": "from pymongo import AsyncMongoClient\n",  # its place
            "tools/executor.py": "from pymongo.errors import PyMongoError\n",
            "agents/ids.py": "import bson\n",
        },
    )
    found = driver_imports(root)
    assert len(found) == 2
    assert "tools/executor.py:1: imports pymongo.errors" in found[1] and "agents/ids.py:1: imports bson" in found[0]


def test_a_test_importing_another_test_is_caught(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/conftest.py": "",
            "tests/support/__init__.py": "",
            "tests/support/settings.py": "",
            "tests/telephony/__init__.py": "",
            "tests/telephony/test_a.py": "from tests.support.settings import AUTH_TOKEN\n",  # allowed
            "tests/telephony/test_b.py": "from tests.telephony.test_a import helper\nfrom tests import conftest\n",
        },
    )
    found = cross_test_imports(root)
    assert [line.split(" (")[0] for line in found] == [
        "tests/telephony/test_b.py:1: imports tests.telephony.test_a",
        "tests/telephony/test_b.py:2: imports tests.conftest",
    ]


TREE = """# Switchboard

## Architecture

Rooms.

```
telephony/        the edge ...
  app.py          routes
  twilio/         webhooks, ...
  audio/          mu-law
agents/           the conversation
  engines/        protocols
    local/        in-process: see local/ and remote/
  port.py config.py
tools/            tools
db/               MongoDB
tests/            mirrors the packages; support/ holds helpers
```

## Next section

```
ghost/            not in the architecture section
```
"""


def test_the_readme_tree_is_read_by_indentation() -> None:
    assert readme_tree(TREE) == {
        "telephony",
        "telephony/twilio",
        "telephony/audio",
        "agents",
        "agents/engines",
        "agents/engines/local",
        "tools",
        "db",
        "tests",
    }


def test_a_readme_tree_naming_a_missing_folder_or_missing_a_real_one_is_caught(tmp_path: Path) -> None:
    root = plant(tmp_path, {})
    for folder in ("telephony/twilio", "agents/engines/local", "agents/engines/remote", "tests/support"):
        (root / folder).mkdir(parents=True)
        if not folder.startswith("tests"):
            (root / folder / "__init__.py").touch()
    (root / "agents/engines/__init__.py").touch()
    (root / "tests/support/__init__.py").touch()  # folders under tests/ need not be named
    assert readme_tree_mismatches(root, TREE) == [
        "README names telephony/audio/, which does not exist",
        "README does not name agents/engines/remote/",
    ]


@pytest.mark.parametrize("readme", ["# No architecture section\n", "## Architecture\n\nJust words.\n"])
def test_a_readme_without_the_tree_is_caught(tmp_path: Path, readme: str) -> None:
    assert len(readme_tree_mismatches(plant(tmp_path, {}), readme)) == 1


def test_a_parse_upset_by_another_thread_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython 3.11's shared AST recursion count can fail one parse while another thread formats a
    traceback; the next parse of the same source gives the tree. A real syntax error still fails."""
    real_parse, failures = ast.parse, [SystemError("AST constructor recursion depth mismatch (before=126, after=78)")]

    def upset_once(source: str, filename: str) -> ast.Module:
        if failures:
            raise failures.pop()
        return real_parse(source, filename=filename)

    monkeypatch.setattr(ast, "parse", upset_once)
    (tmp_path / "ok.py").write_text("import db\n")
    assert isinstance(parse(tmp_path / "ok.py").body[0], ast.Import)
    (tmp_path / "broken.py").write_text("def (\n")
    with pytest.raises(SyntaxError):
        parse(tmp_path / "broken.py")

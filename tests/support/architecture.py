"""The house rules, read from the source with `ast` (nothing is imported): each rule is a function
over a tree on disk, so `tests/test_architecture.py` runs it on the repository and on small trees
with one planted violation.

- rooms: `telephony` > `agents` > `tools` > `db`; a module never imports a room above its own
  (imports inside functions and under `TYPE_CHECKING` count too);
- product modules stay at 500 lines or under;
- no import circle between product modules, counting imports under `TYPE_CHECKING` (a circle of
  types is still a circle a reader has to untangle); an import inside a function is left out: it
  runs after every module is loaded, the one sanctioned way to reach a heavy optional engine;
- the MongoDB driver (`pymongo`, `bson`, `motor`) is imported in `db/` only;
- a test module imports from `tests.support` only, never another test module;
- the README's architecture tree names exactly the folders there are.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOMS = ("telephony", "agents", "tools", "db")
"""Top to bottom: a room may import the rooms after it, never those before it."""
MAX_MODULE_LINES = 500
DRIVER_PACKAGES = frozenset({"pymongo", "bson", "motor", "gridfs"})
TOP_LEVEL_FOLDERS = ("telephony", "agents", "tools", "db", "deploy", "tests", "benchmarks")
_SKIPPED_FOLDERS = frozenset({"__pycache__"})


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    """The importing module's dotted name."""
    path: str
    """Its file, relative to the tree's root, for messages."""
    line: int
    target: str
    """The module imported (`from a.b import c` is `a.b.c` when that is a module, else `a.b`)."""
    module_level: bool
    """False inside a function (an import under `if TYPE_CHECKING:` is module level)."""


def module_name(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(root: Path, folders: tuple[str, ...]) -> Iterator[Path]:
    for folder in folders:
        for file in sorted((root / folder).rglob("*.py")):
            if not _SKIPPED_FOLDERS.intersection(file.relative_to(root).parts):
                yield file


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_in(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it is at module level (`TYPE_CHECKING` blocks included)."""

    def walk(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, module_level
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), module_level)
                for statement in child.orelse:
                    yield from walk(ast.Module(body=[statement], type_ignores=[]), module_level)
            else:
                yield from walk(child, module_level)

    yield from walk(tree, True)


PARSE_TRIES = 3


def parse(file: Path) -> ast.Module:
    """`ast.parse`, tried again on CPython 3.11's spurious "AST constructor recursion depth mismatch":
    3.11 keeps that count in interpreter state all threads share (python/cpython#106905,
    pytest-dev/pytest#10763), and another thread formatting a traceback meanwhile (3.11 parses
    source lines for its carets) upsets it. The source is the same each time, so is the tree."""
    source = file.read_text()
    for _ in range(PARSE_TRIES - 1):
        with contextlib.suppress(SystemError):
            return ast.parse(source, filename=str(file))
    return ast.parse(source, filename=str(file))


def imports(root: Path, folders: tuple[str, ...]) -> list[Import]:
    """Every import in the `.py` files under `folders` of `root`, relative imports resolved."""
    files = list(python_files(root, folders))
    modules = {module_name(root, file) for file in files}
    found: list[Import] = []
    for file in files:
        name = module_name(root, file)
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        tree = parse(file)
        for node, module_level in _imports_in(tree):
            where = str(file.relative_to(root))
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in dict.fromkeys(targets):
                found.append(Import(name, where, node.lineno, target, module_level))
    return found


def _room(module: str) -> str:
    return module.partition(".")[0]


# -- the rules: each returns what breaks it, one line per finding (empty: the rule holds) ----------


def upward_imports(root: Path) -> list[str]:
    """Imports of a room above the importer's own (telephony > agents > tools > db)."""
    rank = {room: n for n, room in enumerate(ROOMS)}
    return [
        f"{i.path}:{i.line}: {_room(i.importer)} imports {i.target} (a room above it)"
        for i in imports(root, ROOMS)
        if _room(i.target) in rank and rank[_room(i.target)] < rank[_room(i.importer)]
    ]


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """Product modules over `limit` lines."""
    found = []
    for file in python_files(root, ROOMS):
        lines = len(file.read_text().splitlines())
        if lines > limit:
            found.append(f"{file.relative_to(root)}: {lines} lines (at most {limit})")
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Product module -> the product modules it imports at module level (`TYPE_CHECKING` included)."""
    graph: dict[str, set[str]] = {module_name(root, file): set() for file in python_files(root, ROOMS)}
    for i in imports(root, ROOMS):
        if i.module_level and i.target in graph and i.target != i.importer:
            graph[i.importer].add(i.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of `graph`: each strongly connected component of two or more modules, sorted
    (Tarjan's algorithm, iterative so a deep graph cannot hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def import_cycles(root: Path) -> list[str]:
    """Import circles between product modules, one line naming the modules of each."""
    return [" <-> ".join(component) for component in cycles(import_graph(root))]


def driver_imports(root: Path) -> list[str]:
    """Imports of the MongoDB driver outside `db/`."""
    return [
        f"{i.path}:{i.line}: imports {i.target} (the driver belongs in db/)"
        for i in imports(root, tuple(room for room in ROOMS if room != "db"))
        if _room(i.target) in DRIVER_PACKAGES
    ]


def cross_test_imports(root: Path) -> list[str]:
    """Imports of `tests.*` that are not `tests.support.*` (a test module importing another)."""
    return [
        f"{i.path}:{i.line}: imports {i.target} (shared helpers go in tests/support/)"
        for i in imports(root, ("tests",))
        if (i.target == "tests" or i.target.startswith("tests.")) and not (i.target + ".").startswith("tests.support.")
    ]


# -- the README's tree -----------------------------------------------------------------------------

_FOLDER_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z0-9_.-]+)/(?=\s|$)")


def readme_tree(readme: str) -> set[str]:
    """The folders the README's architecture tree names (`telephony/twilio`, ...): in its
    "## Architecture" section, the first fenced block whose lines name folders as `name/`, indented
    two spaces per level. Other lines (files, descriptions that run on) name nothing."""
    section = re.search(r"^## Architecture\b.*?(?=^## |\Z)", readme, re.S | re.M)
    if section is None:
        return set()
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", section.group(0), re.S | re.M):
        folders: set[str] = set()
        parents: list[str] = []
        for line in block.splitlines():
            entry = _FOLDER_ENTRY.match(line)
            if entry is None:
                continue
            depth = len(entry["indent"]) // 2
            parents = [*parents[:depth], entry["name"]]
            folders.add("/".join(parents))
        if folders:
            return folders
    return set()


def real_folders(root: Path) -> set[str]:
    """The folders the tree must name: the top-level folders, and every package under the rooms."""
    found = {name for name in TOP_LEVEL_FOLDERS if (root / name).is_dir()}
    for room in ROOMS:
        for init in (root / room).rglob("__init__.py"):
            folder = init.parent.relative_to(root)
            if not _SKIPPED_FOLDERS.intersection(folder.parts) and len(folder.parts) > 1:
                found.add(folder.as_posix())
    return found


def readme_tree_mismatches(root: Path, readme: str) -> list[str]:
    """Folders the tree names that do not exist, and folders that exist and it does not name."""
    named = readme_tree(readme)
    if not named:
        return ["README.md: no architecture tree (a fenced block of `name/` lines under '## Architecture')"]
    missing = sorted(folder for folder in named if not (root / folder).is_dir())
    unnamed = sorted(real_folders(root) - named)
    return [f"README names {folder}/, which does not exist" for folder in missing] + [
        f"README does not name {folder}/" for folder in unnamed
    ]

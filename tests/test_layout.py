"""The layout's rules, checked over the source tree with ``ast`` (no import, no tool outside the
venv), so a change that breaks one fails here with the module and line to look at:

(a) The domain packages (``tasks/``, ``workspaces/``, ``scoring/``, ``common/``) are web-free:
    no module imports ``server`` or aiohttp's web layer (``aiohttp.web``, ``aiohttp.web_*``,
    ``from aiohttp import web``); aiohttp's client is fine. ``tasks/catalog/`` is task content
    (the candidates' code), not pairlab's, and is not checked. The accounts domain
    (``server/people/accounts.py``, ``credentials.py``, ``passwords.py``) imports no aiohttp at
    all and nothing of ``server.http``.
(b) One sandbox builder: bubblewrap's options (``--unshare-*``, ``--ro-bind``, ``--bind``,
    ``--tmpfs``, ``--seccomp``, ``--die-with-parent``, ``--new-session``, ``--cap-drop`` ...)
    are spelled as string literals only in ``workspaces/sandbox/bwrap.py`` (and ``seccomp.py``, the
    filter's own module) among pairlab's modules (``tests/`` may assert on them). A literal
    counts when its whole value is an option (``"--bind"``, ``"--size=1"``), or a word of it
    is one in a string that also names ``bwrap`` (a shell-style command line); docstrings and
    sentences that merely mention an option do not.
(c) No module under ``server/`` is both a route table and an engine.
    *Route table*: it assigns ``web.RouteTableDef()`` or calls ``.add_routes(...)``.
    *Engine*: it defines
      (E1) a class with an ``async def`` method, unless the class derives from ``web.View``
           (a class-based handler): a class with async methods holds async state that lives
           across requests (a service, manager, recorder, sender);
      (E2) a background loop: a ``while`` loop in an ``async def`` that does not run on
           behalf of one request, i.e. neither it nor a function it is nested in takes a
           parameter annotated ``web.Request``/``Request`` (a handler's own streaming loop
           ends with its request and is not an engine);
      (E3) a background task started outside a request: ``create_task(...)`` or
           ``ensure_future(...)`` called from module level or from a function that is not
           request-scoped in the sense of (E2).
    An area's wiring (``cleanup_ctx`` functions that build and start an engine from
    elsewhere) is E3 and so lives in its own module (``server/<area>/wiring.py``), never
    beside the routes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("tasks", "workspaces", "scoring", "common")
ACCOUNTS = ("server/people/accounts.py", "server/people/credentials.py",
            "server/people/passwords.py")
"""The accounts domain: web-free, though it lives beside the people routes."""
NOT_PAIRLAB = ("tasks/catalog",)
SOURCE = ("server", "tasks", "workspaces", "scoring", "common", "bench", "scripts")
SANDBOX_BUILDERS = ("workspaces/sandbox/bwrap.py", "workspaces/sandbox/seccomp.py")
BWRAP_OPTIONS = frozenset({
    "--args", "--argv0", "--unshare-all", "--share-net", "--unshare-user", "--unshare-user-try",
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup",
    "--unshare-cgroup-try", "--userns", "--userns2", "--disable-userns",
    "--assert-userns-disabled", "--pidns", "--uid", "--gid", "--hostname", "--chdir",
    "--clearenv", "--setenv", "--unsetenv", "--lock-file", "--sync-fd", "--bind", "--bind-try",
    "--dev-bind", "--dev-bind-try", "--ro-bind", "--ro-bind-try", "--bind-fd", "--ro-bind-fd",
    "--remount-ro", "--overlay-src", "--overlay", "--tmp-overlay", "--ro-overlay",
    "--exec-label", "--file-label", "--proc", "--dev", "--tmpfs", "--mqueue", "--dir",
    "--file", "--bind-data", "--ro-bind-data", "--symlink", "--seccomp", "--add-seccomp-fd",
    "--block-fd", "--userns-block-fd", "--info-fd", "--json-status-fd", "--new-session",
    "--die-with-parent", "--as-pid-1", "--cap-add", "--cap-drop", "--perms", "--size",
    "--chmod",
})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def modules(root: Path, folders: tuple[str, ...]) -> Iterator[tuple[str, ast.Module]]:
    """``(path relative to root, parsed module)`` of every ``.py`` file under ``folders``."""
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if "__pycache__" in rel or rel.startswith(NOT_PAIRLAB):
                continue
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _in_order(found: list[Finding]) -> list[Finding]:
    return sorted(found, key=lambda f: (f.path, f.line))


# ---- (a) the domains are web-free ----------------------------------------------------------


def _is_web(module: str) -> bool:
    return module == "aiohttp.web" or module.startswith(("aiohttp.web.", "aiohttp.web_"))


def _is_server(module: str) -> bool:
    return module == "server" or module.startswith("server.")


def _imported(tree: ast.Module) -> Iterator[tuple[int, list[str]]]:
    """``(line, names)`` of each absolute import: the module and each ``module.name``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, [node.module] + [f"{node.module}.{a.name}" for a in node.names]


def web_imports(root: Path) -> list[Finding]:
    """Domain modules importing ``server`` or ``aiohttp.web``, and accounts-domain modules
    (under ``server/people/``) importing aiohttp or ``server.http``."""
    found = []
    checked = [(m, lambda n: _is_server(n) or _is_web(n)) for m in modules(root, DOMAINS)]
    checked += [((rel, tree), lambda n: n.split(".")[0] == "aiohttp" or n.startswith("server.http"))
                for rel, tree in modules(root, ("server/people",)) if rel in ACCOUNTS]
    for (rel, tree), forbidden in checked:
        for line, names in _imported(tree):
            bad = [n for n in names if forbidden(n)]
            if bad:
                found.append(Finding(rel, line, f"imports {bad[0]}"))
    return _in_order(found)


# ---- (b) one sandbox builder ---------------------------------------------------------------


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants of the module, its classes and functions."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _option(word: str) -> str | None:
    name = word.split("=", 1)[0]
    return name if name in BWRAP_OPTIONS else None


def bwrap_literals(root: Path) -> list[Finding]:
    found = []
    for rel, tree in modules(root, SOURCE):
        if rel in SANDBOX_BUILDERS:
            continue
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str) \
                    or id(node) in skip:
                continue
            value = node.value.strip()
            option = _option(value)
            if option is None and "bwrap" in value:
                option = next((o for w in value.split() if (o := _option(w))), None)
            if option is not None:
                found.append(Finding(rel, node.lineno, f"spells bubblewrap's {option}"))
    return _in_order(found)


# ---- (c) no server module is both a route table and an engine ----------------------------


def _is_request(annotation: ast.expr | None) -> bool:
    text = ast.unparse(annotation) if annotation is not None else ""
    return text.strip("'\"") in ("web.Request", "Request", "aiohttp.web.Request")


def _takes_request(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    args = fn.args
    return any(_is_request(a.annotation)
               for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))


def _route_table(tree: ast.Module) -> int | None:
    """The line that makes the module a route table, or None."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("RouteTableDef", "add_routes"):
                return node.lineno
    return None


def _engines(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each engine part of the module (E1, E2, E3 above)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b) for b in node.bases}
            if bases & {"web.View", "View", "aiohttp.web.View"}:
                continue
            if any(isinstance(item, ast.AsyncFunctionDef) for item in node.body):
                yield node.lineno, f"class {node.name} has async methods (E1)"

    def visit(node: ast.AST, scoped: bool, in_async: bool) -> Iterator[tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            child_scoped, child_async = scoped, in_async
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                child_scoped = scoped or _takes_request(child)
                child_async = isinstance(child, ast.AsyncFunctionDef)
            elif isinstance(child, ast.ClassDef):
                child_async = False
            if not child_scoped:
                if isinstance(child, ast.While) and child_async:
                    yield child.lineno, "a background loop (E2)"
                if isinstance(child, ast.Call):
                    name = child.func.attr if isinstance(child.func, ast.Attribute) else (
                        child.func.id if isinstance(child.func, ast.Name) else "")
                    if name in ("create_task", "ensure_future"):
                        yield child.lineno, f"starts a background task with {name} (E3)"
            yield from visit(child, child_scoped, child_async)

    yield from visit(tree, False, False)


def routes_with_engines(root: Path) -> list[Finding]:
    found = []
    for rel, tree in modules(root, ("server",)):
        table = _route_table(tree)
        if table is None:
            continue
        for line, what in _engines(tree):
            found.append(Finding(rel, line, f"a route table (line {table}) and an engine: "
                                            f"{what}"))
    return _in_order(found)


# ---- the tests -----------------------------------------------------------------------------


def test_the_domain_packages_import_neither_server_nor_aiohttp_web() -> None:
    found = web_imports(ROOT)
    assert not found, "\n".join(map(str, found))


def test_bubblewrap_options_are_spelled_only_in_the_sandbox_builder() -> None:
    found = bwrap_literals(ROOT)
    assert not found, "\n".join(map(str, found))


def test_no_server_module_is_both_a_route_table_and_an_engine() -> None:
    found = routes_with_engines(ROOT)
    assert not found, "\n".join(map(str, found))


# ---- the checks themselves catch what they are for ----------------------------------------


BROKEN = {
    "workspaces/leaky.py": "from aiohttp import web\nimport server.settings\n",
    "scoring/leaky.py": "from server.http.errors import Forbidden\n",
    "server/people/accounts.py": "from server.http.errors import Forbidden\nimport aiohttp\n",
    "tasks/catalog/demo/app.py": "from aiohttp import web\n",  # task content: not checked
    "workspaces/runner.py": 'ARGV = ["bwrap", "--unshare-net", "--ro-bind", "/usr", "/usr"]\n'
                            'LINE = "bwrap --tmpfs /tmp --"\n'
                            'SENTENCE = "a bubblewrap that supports --seccomp"\n',
    "workspaces/sandbox/bwrap.py": 'ARGV = ["--unshare-pid", "--die-with-parent"]\n',
    "server/area/routes.py": (
        "import asyncio\nfrom aiohttp import web\nroutes = web.RouteTableDef()\n\n"
        "class Engine:\n    async def run(self) -> None:\n        pass\n\n"
        "async def poll() -> None:\n    while True:\n        await asyncio.sleep(1)\n\n"
        "async def ctx(app: web.Application) -> None:\n"
        "    asyncio.create_task(poll())\n\n"
        "@routes.get('/x')\nasync def handler(request: web.Request) -> web.Response:\n"
        "    while True:\n        break\n"
        "    asyncio.ensure_future(asyncio.sleep(0))\n"
        "    return web.Response()\n"),
    "server/area/handlers.py": (
        "from aiohttp import web\nroutes = web.RouteTableDef()\n\n"
        "class Page(web.View):\n    async def get(self) -> web.Response:\n"
        "        return web.Response()\n"),
}


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    for rel, text in BROKEN.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    for folder in ("server", "bench", "scripts", "common"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return tmp_path


def test_the_checks_find_what_they_forbid(broken: Path) -> None:
    assert [str(f) for f in web_imports(broken)] == [
        "scoring/leaky.py:1: imports server.http.errors",
        "server/people/accounts.py:1: imports server.http.errors",
        "server/people/accounts.py:2: imports aiohttp",
        "workspaces/leaky.py:1: imports aiohttp.web",
        "workspaces/leaky.py:2: imports server.settings"]
    assert [str(f) for f in bwrap_literals(broken)] == [
        "workspaces/runner.py:1: spells bubblewrap's --unshare-net",
        "workspaces/runner.py:1: spells bubblewrap's --ro-bind",
        "workspaces/runner.py:2: spells bubblewrap's --tmpfs"]
    assert sorted(f.line for f in routes_with_engines(broken)) == [5, 10, 14]
    assert all(f.path == "server/area/routes.py" for f in routes_with_engines(broken))

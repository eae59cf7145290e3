"""One workspace's jupyter-server: its generated configuration, its command line and
environment, its output (``ServerLog``, token scrubbed) and its readiness probe (``api_status``).

``write_config_dir`` fills the workspace's root-owned ``config`` folder (mounted read-only at
``/etc/pairlab``): ``jupyter/jupyter_server_config.py``, the ``python3`` kernelspec of the task
environment and its IPython profile (``workspaces.ipython_profile``), and the synthetic ``/etc``
files. The server config itself

- takes the token from ``JUPYTER_TOKEN`` and removes it from the environment, so kernels and
  terminals do not inherit it (it is never on a command line);
- sets ``TCP_NODELAY`` on every WebSocket stream (jupyter-server never does: ~48 ms per kernel
  round trip over TCP instead of ~4 ms; harmless on the Unix socket);
- installs ``PairlabIdentityProvider``: a token-authenticated request that carries
  ``X-Pairlab-User`` (JSON with ``username``, ``name``, ``display_name``, ``initials``, ``color``;
  set by pairlab's proxy, which strips any client copy) is that user, so JupyterLab's
  collaboration panel shows real names; without the header the default applies;
- keeps every piece of server state (RTC store, file ids, lab settings) out of ``/workspace``;
- keeps the token from the candidate's code, which runs as the same uid: the server makes itself
  non-dumpable (its ``/proc/<pid>/environ`` and memory become unreadable), writes no
  ``jpserver-<pid>.json`` or browser-open file, and keeps its cookie secret (and the notebook
  signing key, so the candidate cannot mark a notebook trusted) in memory. So only
  pairlab's proxy can make token-authenticated requests, and only it can name the user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, get_args

import aiohttp

from workspaces import ipython_profile
from workspaces.excerpt import quote_lines, safe_text
from workspaces.provisioner import SpareKernel
from workspaces.recording.shell_marks import BASHRC
from workspaces.sandbox.peer import Peer, PeerCheckedConnector

logger = logging.getLogger(__name__)
USER_HEADER = "X-Pairlab-User"
LOG_CAP_BYTES = 8 * 1024 * 1024
KERNEL_NAME = "python3"
# First of all, before anything reads the token from the environment, the server makes itself
# non-dumpable (PR_SET_DUMPABLE 0): the candidate's code runs as the same uid, and could otherwise
# read its /proc/<pid>/environ and memory or ptrace it. Kernels and terminals exec, which makes
# them dumpable again (they hold no secret).
# What the server would load or run but never uses (profiled with ``-X importtime``; see
# README "Cold start"), removed without changing any installed file:
# - jsonschema's optional format checkers: jupyter_events validates its event schemas with
#   jsonschema's format checker, whose optional libraries are imported up front (rfc3987_syntax
#   alone was half of a cold start; isoduration pulls in arrow). No Jupyter event schema uses the
#   "iri", "duration", "color", "uri-template", "json-pointer", "date-time" or "hostname" formats
#   they check (one "uri" on the schemas' own $id), and jsonschema skips a format whose library
#   is missing (ImportError), as in any environment without them.
UNUSED_MODULES = ("rfc3987_syntax", "rfc3986_validator", "rfc3339_validator", "isoduration",
                  "webcolors", "uri_template", "jsonpointer", "fqdn")
# - ``node yarn.js config --json`` (~0.3 s, at import of jupyterlab.labapp and again for every
#   build/extension query): JupyterLab asks yarn for an npm registry only the extension manager
#   uses to install extensions, which is read-only here. JupyterLab's own answer when node is not
#   installed (both configurations empty: the default registry) is returned instead, without
#   running node.
# - the cyclic garbage collector during start-up (~14 % of the imports' CPU: every 700 new
#   objects a scan, and the whole heap now and then, of modules that are never garbage): the
#   launcher turns it off; the configuration turns it back on, with what start-up made frozen
#   (never scanned again), as the server's event loop starts (``start_ioloop``), before the
#   first request. Start-up's own cyclic garbage (~53,000 objects, ~1.2 MiB) is frozen with
#   it, for the server's life: collecting it first would cost ~125 ms of CPU, the time saved.
LAUNCHER = (
    "import ctypes, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:\n"
    "    sys.exit('pairlab: could not make the server non-dumpable')\n"
    "import gc\n"
    "gc.disable()\n"
    f"for name in {UNUSED_MODULES!r}:\n"
    "    sys.modules[name] = None\n"
    "import jupyterlab.commands\n"
    "jupyterlab.commands._yarn_config = lambda logger: {'yarn config': {}, 'npm config': {}}\n"
    "from jupyterlab.labapp import main\n"
    "sys.exit(main())\n"
)


@dataclass(frozen=True)
class Inside:
    """Where the workspace's folders are as the server sees them (sandbox paths, or host paths
    in the unsandboxed development mode)."""

    workspace: Path
    run: Path
    config: Path
    scratch: Path
    """A private writable folder for HOME-ish clutter (``/tmp`` in the sandbox)."""

    @property
    def socket(self) -> Path:
        return self.run / "sock" / "jupyter.sock"

    @property
    def runtime(self) -> Path:
        return self.run / "runtime"

    @property
    def state(self) -> Path:
        """What the server writes (lab settings and workspaces, RTC store, file ids): owned by
        the uid, so never a place anything is loaded from."""
        return self.run / "state"

    @property
    def share(self) -> Path:
        """The only data folder of the workspace's own (kernelspec): root-owned, read-only."""
        return self.config / "share"


_TEMPLATE = '''\
"""jupyter-server configuration of a pairlab workspace. Generated on every start: do not edit."""
import asyncio
import ctypes
import gc
import hmac
import json
import logging
import os
import sys
import types
import uuid

import jupyter_core.paths
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_server.auth.identity import PasswordIdentityProvider, User
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketHandler
from traitlets import default

PAIRLAB = json.loads(%(settings)r)
USER_HEADER = %(header)r
_FIELDS = ("username", "name", "display_name", "initials", "color")

# Runs once per process even if the file is loaded again.
_state = sys.modules.setdefault("_pairlab_state", types.ModuleType("_pairlab_state"))
if not hasattr(_state, "token"):
    # The launcher made the server non-dumpable before anything else (see LAUNCHER in
    # jupyter_config.py); refuse to go on with the token if it did not.
    if ctypes.CDLL(None, use_errno=True).prctl(3, 0, 0, 0, 0) != 0:  # PR_GET_DUMPABLE
        raise SystemExit("pairlab: the server is dumpable; refusing to read the token")
    _state.token = os.environ.pop("JUPYTER_TOKEN", "")
    _state.cookie_secret = os.urandom(32)
    _state.notary_secret = os.urandom(32)
    # jpserver-<pid>.json and jpserver-<pid>-open.html would hold the token in files the uid
    # reads (no_browser_open_file is not configurable, hence the patch).
    ServerApp.write_server_info_file = lambda self: None
    ServerApp.write_browser_open_files = lambda self: None
    _detach = WebSocketHandler.detach

    def _detach_nodelay(self):
        stream = _detach(self)
        stream.set_nodelay(True)
        return stream

    WebSocketHandler.detach = _detach_nodelay
    _start_ioloop = ServerApp.start_ioloop

    def _start_ioloop_collecting(self):
        gc.freeze()  # what start-up made (the launcher turned the collector off for it)
        gc.enable()
        self.log.info("pairlab: garbage collection on, %%d start-up objects frozen",
                      gc.get_freeze_count())
        _start_ioloop(self)

    ServerApp.start_ioloop = _start_ioloop_collecting
if len(_state.token) < 32:
    raise SystemExit("pairlab: JUPYTER_TOKEN is missing or too short; refusing to start")


def _root_only(path):
    """True if ``path`` and every folder above it are root's and writable by no one else, but
    for sticky folders such as ``/tmp`` (others may add entries there, never rename or replace
    root's: pairlab's venv may live under one)."""
    path = os.path.realpath(path)
    while True:
        found = os.stat(path)
        if found.st_uid != 0 or (found.st_mode & 0o022 and not found.st_mode & 0o1000):
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def _user_from_header(raw):
    if len(raw) > 4096:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    fields = {}
    for key in _FIELDS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 200:
            return None
        fields[key] = value
    if not fields.get("username"):
        return None
    return User(**fields)


class PairlabIdentityProvider(PasswordIdentityProvider):
    """A token-authenticated request from pairlab's proxy names its user in a header."""

    def get_user(self, handler):
        raw = handler.request.headers.get(USER_HEADER)
        if raw and self.token and hmac.compare_digest(
            (self.get_token(handler) or "").encode(), self.token.encode()
        ):
            user = _user_from_header(raw)
            if user is not None:
                handler._token_authenticated = True
                return user
        return super().get_user(handler)


class PairlabKernelSpecManager(KernelSpecManager):
    """Kernelspecs only from the workspace's own folder (``kernel_dirs`` is not configurable).
    The default list also has IPython's profile folder, and computing it imports IPython into
    the server (~40 ms of every cold start)."""

    @default("kernel_dirs")
    def _pairlab_kernel_dirs(self):
        return [os.path.join(PAIRLAB["share"], "kernels")]

    def get_all_specs(self):
        # JupyterLab asks for the kernelspecs as it loads (pairlab's own probes never do): a
        # spare kept for later starts now (see PairlabKernelManager). The parent is the server.
        self.parent.kernel_manager.start_spare_later()
        return super().get_all_specs()


_MOVE_KERNEL = """\\
def _pairlab_move():
    import importlib, os
    os.chdir(%%r)
    os.environ.update(%%r)
    if "JPY_SESSION_NAME" in os.environ:
        get_ipython().user_ns["__session__"] = os.environ["JPY_SESSION_NAME"]
    importlib.invalidate_caches()
_pairlab_move()
del _pairlab_move
"""


class PairlabKernelManager(AsyncMappingKernelManager):
    """One kernel (the spare) is started with the server and handed to the first kernel asked
    for, so the candidate's first cell does not wait for a Python to start (~0.6 s).

    It is left out of the kernel list until then. Handing it out moves it where a new kernel
    would have started (the notebook's folder, its JPY_* variables) and drops the import
    system's folder caches (the task's files were copied in after it started), by a silent
    execute on a shell channel of the server's own: no execute_input, no history, no execution
    count, nothing on any proxied connection. A spare that died, or a request for a kernel id
    or another kernelspec, gets a kernel started as usual. Not a jupyter-server feature (its
    kernel managers start one kernel per request), hence this class."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._spare = None
        self._spare_id = None
        # "lab_load": started when JupyterLab first loads (it asks for the kernelspecs), not
        # with the server: while other workspaces wait to start (pairlab decides).
        self._spare_later = PAIRLAB.get("spare_kernel") == "lab_load"
        if PAIRLAB.get("spare_kernel") == "now":
            # init_ioloop ran before the configurables: this is the loop the server runs.
            IOLoop.current().add_callback(self._start_spare)

    def _start_spare(self):
        self._spare_id = str(uuid.uuid4())  # hidden from the list from its first moment
        self._spare = asyncio.ensure_future(super().start_kernel(kernel_id=self._spare_id))
        self._spare.add_done_callback(self._spare_started)

    def _spare_started(self, task):
        if not task.cancelled() and task.exception() is not None:
            self.log.error("the spare kernel did not start: %%s", task.exception())

    def start_spare_later(self):
        if self._spare_later:
            self._spare_later = False
            self._start_spare()

    def list_kernels(self):
        # The spare is left out before its model is made: while it starts it has no last
        # activity yet, and jupyter-server's model of it raised (JupyterLab's poll got a 500).
        kernels = []
        for kernel_id in self.list_kernel_ids():
            if kernel_id == self._spare_id:
                continue
            try:
                kernels.append(self.kernel_model(kernel_id))
            except (web.HTTPError, KeyError):  # gone meanwhile, as jupyter-server skips it
                pass
        return kernels

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        self._spare_later = False  # a kernel asked for before any list: no spare after it
        spare = self._spare
        name = kwargs.get("kernel_name")
        if spare is not None and kernel_id is None and name in (None, self.default_kernel_name):
            self._spare = None
            taken = self._spare_id
            try:
                await spare
                self._spare_id = None
                if taken in self and await self.get_kernel(taken).is_alive():
                    await self._move(taken, path, kwargs.get("env") or {})
                    self.log.info("Kernel handed out from the spare: %%s", taken)
                    return taken
                self.log.warning("the spare kernel is gone; starting a new one")
            except Exception:
                self.log.exception("the spare kernel could not be handed out")
            self._spare_id = None
            if taken in self:  # never left running beside the kernel started instead
                try:
                    await self.shutdown_kernel(taken, now=True)
                except Exception:
                    self.log.exception("the spare kernel could not be shut down")
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)

    async def _move(self, kernel_id, path, env):
        cwd = self.cwd_for_path(path) if path is not None else self.root_dir
        names = {k: v for k, v in env.items() if k.startswith("JPY_") and isinstance(v, str)}
        kernel = self.get_kernel(kernel_id)
        client = AsyncKernelClient(session=kernel.session)
        client.load_connection_info(kernel.get_connection_info())
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            msg_id = client.execute(_MOVE_KERNEL %% (cwd, names), silent=True,
                                    store_history=False, allow_stdin=False)
            while True:
                reply = await client.get_shell_msg(timeout=30)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            if reply["content"].get("status") != "ok":
                raise RuntimeError(f"moving the spare kernel failed: {reply['content']!r}")
        finally:
            client.stop_channels()
        # A restart relaunches with these (as it would a kernel started for this notebook).
        kernel._launch_args["cwd"] = cwd
        kernel._launch_args.setdefault("env", dict(os.environ)).update(names)
        if kernel.execution_state == "starting":
            # It has just answered an execute: idle. The server's activity watcher subscribes
            # to a new kernel's iopub before the kernel listens, and can miss its first status
            # messages; each WebSocket's nudge then waits for a status with the kernel still
            # "starting", which comes only with its next kernel_info round, 0.5 s later (the
            # candidate's first cell on a cold start: 1.3 s instead of 0.9).
            kernel.execution_state = "idle"


c = get_config()  # noqa: F821 - provided by traitlets when it loads this file
c.ServerApp.kernel_spec_manager_class = PairlabKernelSpecManager
c.ServerApp.kernel_manager_class = PairlabKernelManager
c.IdentityProvider.token = _state.token
c.ServerApp.identity_provider_class = PairlabIdentityProvider
c.ServerApp.sock = PAIRLAB["sock"]
c.ServerApp.sock_mode = "0600"
c.ServerApp.base_url = PAIRLAB["base_url"]
c.ServerApp.root_dir = PAIRLAB["root_dir"]
c.ServerApp.open_browser = False
c.ServerApp.cookie_secret = _state.cookie_secret
# Only pairlab reaches the socket; the Host header is whatever its proxy forwards.
c.ServerApp.allow_remote_access = True
c.ServerApp.allow_root = False
c.ServerApp.quit_button = False
c.ServerApp.shutdown_no_activity_timeout = 0
c.ServerApp.terminals_enabled = True
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "--rcfile", PAIRLAB["bashrc"]]}
c.ServerApp.jpserver_extensions = {
    "jupyterlab": True,
    "jupyter_server_ydoc": True,
    "jupyter_server_fileid": True,
    "jupyter_server_terminals": True,
    "jupyter_lsp": False,
    # Carries old NotebookApp settings over to the server; there are none, and listing them
    # imports IPython into the server (~40 ms of every cold start).
    "notebook_shim": False,
}
c.KernelManager.transport = "ipc"
c.KernelSpecManager.ensure_native_kernel = False
c.KernelSpecManager.allowed_kernelspecs = {PAIRLAB["kernel"]}
c.MappingKernelManager.default_kernel_name = PAIRLAB["kernel"]
c.FileContentsManager.delete_to_trash = False
c.LabApp.user_settings_dir = PAIRLAB["lab_settings"]
c.LabApp.app_settings_dir = PAIRLAB["lab_defaults"]
c.LabApp.workspaces_dir = PAIRLAB["lab_workspaces"]
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None
c.LabApp.extension_manager = "readonly"
c.SQLiteYStore.db_path = PAIRLAB["ystore"]
c.YDocExtension.session_store_path = PAIRLAB["rtc_sessions"]
c.BaseFileIdManager.db_path = PAIRLAB["file_ids"]
# Notebook trust: key and signatures in memory only (the data dir is read-only, and a key in a
# folder the uid reads would let the candidate sign notebooks as trusted).
c.NotebookNotary.secret = _state.notary_secret
c.NotebookNotary.db_file = ":memory:"
# Lab extensions come only from root-owned folders (this workspace's config, pairlab's venv, the
# system's), never from a folder the candidate's uid can write: their JavaScript runs in the
# interviewer's browser.
c.LabApp.extra_labextensions_path = []
c.LabApp.labextensions_path = [
    path for path in (os.path.join(folder, "labextensions") for folder in (
        PAIRLAB["share"], *jupyter_core.paths.ENV_JUPYTER_PATH,
        *jupyter_core.paths.SYSTEM_JUPYTER_PATH))
    if not os.path.lexists(path) or _root_only(path)
]
# Launched from "/" with -I (so the workspace is never on the server's sys.path); from here on
# the workspace is the working folder, which kernels and terminals opened without a path get.
os.chdir(PAIRLAB["root_dir"])
'''


SPARE_KERNEL: tuple[SpareKernel, ...] = get_args(SpareKernel)


def server_config(workspace_id: str, inside: Inside, *,
                  spare_kernel: SpareKernel = "now") -> str:
    """The text of ``jupyter_server_config.py`` for one workspace; ``spare_kernel``: one of
    ``SPARE_KERNEL``."""
    if spare_kernel not in SPARE_KERNEL:
        raise ValueError(f"spare_kernel: {spare_kernel!r} is not one of {SPARE_KERNEL}")
    settings = {
        "sock": str(inside.socket),
        "base_url": f"/w/{workspace_id}/",
        "root_dir": str(inside.workspace),
        "kernel": KERNEL_NAME,
        "lab_settings": str(inside.state / "lab" / "user-settings"),
        "lab_defaults": str(inside.config / "lab-settings"),
        "lab_workspaces": str(inside.state / "lab" / "workspaces"),
        "ystore": str(inside.state / "ystore.db"),
        "rtc_sessions": str(inside.state / "collaboration_sessions.json"),
        "file_ids": str(inside.state / "file_id_manager.db"),
        "share": str(inside.share),
        "bashrc": str(inside.config / "bashrc"),
        "spare_kernel": spare_kernel,
    }
    return _TEMPLATE % {"settings": json.dumps(settings), "header": USER_HEADER}


def kernel_spec(env_python: Path, display_name: str, profile: Path) -> dict[str, object]:
    """The ``python3`` kernelspec: the task environment's Python with pairlab's read-only IPython
    ``profile`` (``workspaces.ipython_profile``). ``-P``: nothing in the notebook's folder can
    shadow the kernel's own modules; the profile puts the folder back on ``sys.path`` once the
    kernel has started, so ``import mytask`` works (not ``-I``: the environment's variables
    still apply)."""
    return {
        "argv": [str(env_python), "-P", "-m", "ipykernel_launcher", f"--profile-dir={profile}",
                 "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "metadata": {"debugger": True},
    }


def synthetic_etc(uid: int, home: Path) -> dict[str, str]:
    """``/etc`` files that name the uid ``candidate`` and resolve only local names."""
    return {
        "passwd": (f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                   f"candidate:x:{uid}:{uid}:candidate:{home}:/bin/bash\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        "group": f"root:x:0:\ncandidate:x:{uid}:\nnogroup:x:65534:\n",
        "hosts": "127.0.0.1\tlocalhost pairlab\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "nsswitch.conf": ("passwd: files\ngroup: files\nshadow: files\nhosts: files\n"
                          "networks: files\nprotocols: files\nservices: files\n"),
    }


LAB_DEFAULTS = {
    # The terminal's text also goes to an accessibility tree (screen readers can read what the
    # candidate's commands print; xterm.js otherwise draws it on a canvas only).
    "@jupyterlab/terminal-extension:plugin": {"screenReaderMode": True},
    # No "official Jupyter news?" prompt in an interview (and no request to jupyter.org).
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
}
"""JupyterLab defaults for every workspace (``overrides.json``: the candidate may still change
them in Settings, for their own session)."""

DISABLED_PLUGINS = (
    # The "official Jupyter news?" prompt, the news and the update check (jupyter.org).
    "@jupyterlab/apputils-extension:announcements",
    # Installing or listing extensions is no part of an interview (the server's is read-only).
    "@jupyterlab/extensionmanager-extension:plugin",
    "@jupyterlab/pluginmanager-extension:plugin",
    # The language-server client asks /lsp/status, which nothing serves: jupyter-lsp is off
    # (it would start language servers from the candidate's folders). The two
    # "language-server" plugins require its services, so they go with it.
    "@jupyterlab/lsp-extension:plugin",
    "@jupyterlab/lsp-extension:feature",
    "@jupyterlab/lsp-extension:settings",
    "@jupyterlab/lsp-extension:code-extractor-manager",
    "@jupyterlab/lsp-extension:tracker",
    "@jupyterlab/fileeditor-extension:language-server",
    "@jupyterlab/notebook-extension:language-server",
)
"""JupyterLab plugins every workspace runs without (``page_config.json``'s
``disabledExtensions``; ids as JupyterLab 4.6 names them: ``tests/workspaces/
test_jupyter_config.py`` checks each is in the installed build)."""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


def write_config_dir(config: Path, workspace_id: str, uid: int, env_python: Path,
                     display_name: str, inside: Inside, *,
                     spare_kernel: SpareKernel = "now") -> None:
    """(Re)write the root-owned config folder; folders 0755, files 0644."""
    config.mkdir(mode=0o755, parents=True, exist_ok=True)
    config.chmod(0o755)
    _write(config / "jupyter" / "jupyter_server_config.py",
           server_config(workspace_id, inside, spare_kernel=spare_kernel))
    spec = json.dumps(kernel_spec(env_python, display_name,
                                  ipython_profile.profile_dir(inside.config)), indent=1)
    ipython_profile.write_profile(config)
    # IPYTHONDIR exists now: jupyter_core would "migrate" it into the read-only config folder
    # at every start (and fail); its marker says that was done.
    _write(config / "jupyter" / "migrated", "pairlab: nothing to migrate\n")
    _write(config / "share" / "kernels" / KERNEL_NAME / "kernel.json", spec)
    for name, text in synthetic_etc(uid, inside.workspace).items():
        _write(config / "etc" / name, text)
    _write(config / "lab-settings" / "overrides.json", json.dumps(LAB_DEFAULTS, indent=1))
    _write(config / "lab-settings" / "page_config.json",
           json.dumps({"disabledExtensions": list(DISABLED_PLUGINS)}, indent=1))
    _write(config / "bashrc", BASHRC)  # terminals' shell integration (recording)
    for folder in (config / "jupyter", config / "share", config / "share" / "kernels",
                   config / "share" / "kernels" / KERNEL_NAME, config / "etc",
                   config / "lab-settings"):
        folder.chmod(0o755)


def server_argv(python: str, workspace_id: str, inside: Inside) -> list[str]:
    """``python -I -c LAUNCHER ...``: JupyterLab on the Unix socket (cwd must be neutral)."""
    return [python, "-I", "-c", LAUNCHER,
            f"--ServerApp.sock={inside.socket}", "--ServerApp.sock_mode=0600",
            f"--ServerApp.base_url=/w/{workspace_id}/",
            f"--ServerApp.root_dir={inside.workspace}", "--no-browser"]


def server_env(token: str, env_python: Path, inside: Inside) -> dict[str, str]:
    """The complete environment of the server (allow-listed: nothing of pairlab's own)."""
    scratch = inside.scratch
    return {
        "PATH": f"{Path(os.path.abspath(env_python)).parent}:/usr/bin:/bin",
        "HOME": str(inside.workspace),
        "USER": "candidate",
        "LOGNAME": "candidate",
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "TMPDIR": str(scratch),
        "JUPYTER_TOKEN": token,
        # Config, extensions, kernelspecs, templates: only root-owned, read-only folders (the
        # workspace's config, pairlab's venv, the system's); nothing the uid can write.
        "JUPYTER_CONFIG_DIR": str(inside.config / "jupyter"),
        "JUPYTER_CONFIG_PATH": str(inside.config / "jupyter"),
        "JUPYTER_PATH": str(inside.share),
        "JUPYTER_DATA_DIR": str(inside.share),
        "JUPYTER_RUNTIME_DIR": str(inside.runtime),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(inside.config / "ipython"),  # pairlab's, read-only
        "XDG_CACHE_HOME": str(scratch / ".cache"),
        "XDG_CONFIG_HOME": str(scratch / ".config"),
        "XDG_DATA_HOME": str(scratch / ".local" / "share"),
        "MPLCONFIGDIR": str(scratch / ".matplotlib"),
        "HISTFILE": str(scratch / ".bash_history"),
        "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the workspace; envs are precompiled
    }


class ServerLog:
    """The server's output: appended to ``server.log`` (capped) with the token scrubbed, and
    the last lines kept in memory for error messages, which get them escaped and prefixed
    (``excerpt``): the output is the candidate's to write (kernels share the server's).

    Writing the file may fail (the disk image full, no inode left for a new file): then the
    output is still read and kept in ``tail``, only not written, so the server never blocks on
    a pipe nobody drains. The earlier log is kept as ``server.log.1``."""

    def __init__(self, path: Path, token: str) -> None:
        self._token = token.encode()
        self._written = 0
        self.tail: deque[str] = deque(maxlen=40)
        self._file: BinaryIO | None = None
        try:
            if path.exists():
                path.replace(path.with_name(path.name + ".1"))
            self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
            path.chmod(0o600)
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        logger.error("server log %s cannot be written, kept in memory only: %s",
                     getattr(self._file, "name", "server.log"), exc)
        self.close()
        self._file = None

    def feed(self, line: bytes) -> None:
        line = line.replace(self._token, b"[token]")
        self.tail.append(line.decode("utf-8", "replace").rstrip("\n"))
        if self._file is None or self._written >= LOG_CAP_BYTES:
            return
        try:
            self._file.write(line)
            self._written += len(line)
            if self._written >= LOG_CAP_BYTES:
                self._file.write(b"[pairlab: log capped here]\n")
            self._file.flush()
        except OSError as exc:
            self._give_up(exc)

    def excerpt(self, workspace_id: str, n: int = 15) -> str:
        """The last ``n`` lines, safe for pairlab's log (``workspace <id> | ...``)."""
        return quote_lines(f"workspace {workspace_id}", list(self.tail)[-n:])

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # the buffered rest could not be written: nothing more to do
                pass


async def read_output(stream: asyncio.StreamReader, log: ServerLog) -> None:
    """Feed the server's output to ``log`` line by line until it closes (``feed`` never
    raises for the file: the pipe is drained to the end)."""
    pending = b""
    while chunk := await stream.read(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            log.feed(line + b"\n")
        if len(pending) > 65536:
            log.feed(pending + b"\n")
            pending = b""
    if pending:
        log.feed(pending + b"\n")


async def api_status(socket: Path, workspace_id: str, token: str, server: Peer | None
                     ) -> str | None:
    """``None`` if ``GET /w/<id>/api/status`` answers 200 over the socket, else what went wrong
    (the listener must be ``server``, or nothing is sent)."""
    url = f"http://localhost/w/{workspace_id}/api/status"
    try:
        connector = PeerCheckedConnector(str(socket), server)
        async with aiohttp.ClientSession(connector=connector) as client, client.get(
            url, headers={"Authorization": f"token {token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return type(exc).__name__


def refusal_reason(body: str, status: int) -> str:
    """The sentence a jupyter-server error answer gives (its JSON ``message``/``reason``), for
    the timeline and the doctor."""
    text = ""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "reason"):
            if isinstance(data.get(key), str) and data[key].strip():
                text = data[key].strip()
                break
    elif body.strip():
        text = " ".join(body.split())
    return safe_text(text or f"the workspace answered HTTP {status} with no reason")[:500]

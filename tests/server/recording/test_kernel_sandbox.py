"""A real kernel in the real sandbox, recorded through pairlab's proxy: the candidate's IPython
startup files, configuration and a notebook-side ``ipykernel_launcher.py`` have no effect (the
attacks fail), pairlab's profile is not writable by the workspace's uid, a transformer registered
from a cell is flagged on the next ``cell.executed``, and code run with the kernel's connection
file from a terminal is recorded as coming from outside pairlab."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType

from tests.server.recording.conftest import UID_BASE, Rec, kinds
from tests.server.recording.real_app import open_notebook, real_rec, run_cell, uid_base
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
BASE = uid_base(200, UID_BASE + 4000)
"""Sandbox uids of this file."""
MARK = "PL_ORIGINAL_MARK"
HACKED = "PL_HACKED_MARK"

TRANSFORMER = f'''\
open("/tmp/pwned-{{name}}", "w").close()
def _swap(lines):
    return [line.replace("{MARK}", "{HACKED}") for line in lines]
get_ipython().input_transformers_post.append(_swap)
'''
CONFIG = '''\
c = get_config()
c.InteractiveShellApp.exec_lines = ["open('/tmp/pwned-{name}', 'w').close()"]
'''
LAUNCHER = '''\
open("/tmp/pwned-{name}", "w").close()
from ipykernel import kernelapp
kernelapp.launch_new_instance()
'''
# Everything the candidate's uid writes: IPython startup files and configuration where a
# default IPython would look (IPYTHONDIR was /tmp/.ipython; HOME is /workspace; the notebook's
# folder), and modules that would replace the kernel if the notebook's folder came first.
ATTACKS = {
    "/tmp/.ipython/profile_default/startup/x.py": TRANSFORMER,
    "/tmp/.ipython/profile_default/ipython_config.py": CONFIG,
    "/tmp/.ipython/profile_default/ipython_kernel_config.py": CONFIG,
    "/tmp/.ipython/profile_pairlab/startup/x.py": TRANSFORMER,
    "/workspace/.ipython/profile_default/startup/x.py": TRANSFORMER,
    "/workspace/.ipython/profile_default/ipython_config.py": CONFIG,
    "/workspace/.ipython/profile_default/ipython_kernel_config.py": CONFIG,
    "/workspace/.config/ipython/profile_default/startup/x.py": TRANSFORMER,
    "/workspace/ipython_config.py": CONFIG,
    "/workspace/ipython_kernel_config.py": CONFIG,
    "/workspace/ipykernel_launcher.py": LAUNCHER,
    "/workspace/sitecustomize.py": LAUNCHER.splitlines()[0] + "\n",
}
WRITE_ATTACK = '''\
import json, os
done = []
for number, (path, text) in enumerate(json.loads({attacks!r}).items()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text.replace("{{name}}", str(number)))
    done.append(path)
with open("/workspace/helper_mod.py", "w") as f:
    f.write("ANSWER = 42\\n")
refused = []
profile = get_ipython().profile_dir.location
for path in (profile + "/startup/00-pairlab.py", profile + "/startup/y.py",
             profile + "/ipython_kernel_config.py", profile + "/ipython_config.py",
             "/etc/pairlab/share/kernels/python3/kernel.json"):
    try:
        with open(path, "a") as f:
            f.write("open('/tmp/pwned-profile', 'w').close()\\n")
    except OSError as exc:
        refused.append(type(exc).__name__)
writable = [p for p in (profile, profile + "/startup") if os.access(p, os.W_OK)]
print(json.dumps({{"written": len(done), "refused": refused, "profile": profile,
                  "writable": writable}}))
'''
CHECK = f'''\
import json, os, sys
import helper_mod
print(json.dumps({{"pwned": sorted(p for p in os.listdir("/tmp") if p.startswith("pwned")),
                  "mark": "{MARK}", "answer": helper_mod.ANSWER,
                  "profile": get_ipython().profile_dir.location,
                  "cwd_on_path": "" in sys.path}}))
'''
OUTSIDE = ("python -c \"import glob, os, jupyter_client as j; c = j.BlockingKernelClient(); "
           "c.load_connection_file(glob.glob(os.environ['JUPYTER_RUNTIME_DIR'] + "
           "'/kernel-*.json')[0]); c.start_channels(); "
           "c.execute_interactive('print(\\\"out\\\" + \\\"side\\\", 6 * 7)', timeout=60); "
           "print('OUTSIDE-' + 'DONE')\"")


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    async with real_rec("plker-", BASE) as rec:
        yield rec


async def terminal(rec: Rec, sid: str, command: str, until: str) -> str:
    name = (await rec.call(sid, "POST", "api/terminals"))["name"]
    async with rec.ws.ws_connect(rec.url(sid, f"terminals/websocket/{name}"),
                                 origin=rec.origin(sid), max_msg_size=0) as sock:
        await sock.send_str(json.dumps(["stdin", command + "\r"]))
        seen = ""
        while until not in seen:  # (the echoed command line spells it apart)
            msg = await sock.receive(timeout=120)
            assert msg.type == WSMsgType.TEXT, msg
            kind, *rest = json.loads(msg.data)
            if kind == "stdout":
                seen = (seen + rest[0])[-20000:]
        return seen


def cells(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["payload"] for e in kinds(found, E.CELL_EXECUTED)]


async def test_candidate_ipython_files_have_no_effect_and_transforms_are_flagged(
        real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    kernel_id = await open_notebook(rec, sid, "attack.ipynb")

    status, out = await run_cell(rec, sid, kernel_id,
                                 WRITE_ATTACK.format(attacks=json.dumps(ATTACKS)))
    assert status == "ok", out
    wrote = json.loads(out)
    assert wrote["written"] == len(ATTACKS)
    assert wrote["profile"] == "/etc/pairlab/ipython/profile_pairlab"
    assert len(wrote["refused"]) == 5 and wrote["writable"] == [], wrote  # read-only to the uid

    await rec.call(sid, "POST", f"api/kernels/{kernel_id}/restart")
    status, out = await run_cell(rec, sid, kernel_id, CHECK)
    assert status == "ok", out
    checked = json.loads(out)
    assert checked == {"pwned": [], "mark": MARK, "answer": 42,
                       "profile": "/etc/pairlab/ipython/profile_pairlab",
                       "cwd_on_path": True}, checked  # the attack failed, imports still work

    register = ("def _swap(lines):\n"
                f"    return [line.replace('{MARK}', '{HACKED}') for line in lines]\n"
                "get_ipython().input_transformers_post.append(_swap)")
    assert (await run_cell(rec, sid, kernel_id, register))[0] == "ok"
    status, out = await run_cell(rec, sid, kernel_id, f"print('{MARK}')")
    assert (status, out) == ("ok", f"{HACKED}\n")  # the kernel really ran other code...

    found = await rec.wait_for(sid, lambda f: len(cells(f)) >= 4)
    attack, check, registered, swapped = cells(found)[:4]
    assert "flags" not in attack and "flags" not in check and "flags" not in registered
    # ...and the record says so, with both the code sent and the code that ran
    assert swapped["flags"] == ["transformed"], swapped
    assert swapped["code"] == f"print('{MARK}')"
    assert HACKED in swapped["code_ran"] and swapped["output"] == f"{HACKED}\n"

    # The candidate undoes pairlab's report, then runs the transformed cell again: the kernel
    # no longer says what ran, and the record flags both cells (the undoing one is in it too).
    undo = ("kernel = get_ipython().kernel\n"
            "kernel.finish_metadata = type(kernel).finish_metadata.__get__(kernel)")
    assert (await run_cell(rec, sid, kernel_id, undo))[0] == "ok"
    assert await run_cell(rec, sid, kernel_id, f"print('{MARK}')") == ("ok", f"{HACKED}\n")
    found = await rec.wait_for(sid, lambda f: len(cells(f)) >= 6)
    undone, hidden = cells(found)[4:6]
    assert undone["flags"] == ["unreported"] and undone["code"] == undo, undone
    assert hidden["flags"] == ["unreported"] and hidden["output"] == f"{HACKED}\n", hidden
    # the startup files written under the workspace are in the record too
    recorded = {e["path"] for e in kinds(found, E.FILE_CREATED, E.FILE_CHANGED)}
    assert ".ipython/profile_default/startup/x.py" in recorded, recorded
    assert ".config/ipython/profile_default/startup/x.py" in recorded, recorded


async def test_code_run_around_pairlab_is_recorded_as_outside(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    kernel_id = await open_notebook(rec, sid, "outside.ipynb")
    assert await run_cell(rec, sid, kernel_id, "1 + 1") == ("ok", "")
    # two viewers' connections are open while a terminal drives the kernel directly
    url = rec.url(sid, f"api/kernels/{kernel_id}/channels")
    async with rec.ws.ws_connect(url, origin=rec.origin(sid)) as one, \
            rec.ws.ws_connect(url, origin=rec.origin(sid)) as two:
        seen = await terminal(rec, sid, OUTSIDE, "OUTSIDE-DONE")
        assert "outside 42" in seen, seen[-2000:]
        found = await rec.wait_for(sid, lambda f: len(cells(f)) >= 2, within=60)
        await one.close()
        await two.close()
    ran = cells(found)
    assert len(ran) == 2, ran  # recorded once although two connections saw it
    outside = ran[1]
    assert outside["origin"] == "outside pairlab", outside
    assert outside["code"] == 'print("out" + "side", 6 * 7)'
    assert (outside["status"], outside["output"]) == ("ok", "outside 42\n")
    (event,) = [e for e in kinds(found, E.CELL_EXECUTED) if e["payload"].get("origin")]
    assert event["actor"] == E.ACTOR_CANDIDATE

"""Who may read what on the host: the one place pairlab's policy on file modes is decided (the
few places that create a folder with a given mode, such as a workspace's own folders in
``sandbox/bwrap.py`` or the data dir in ``server/settings.py``, follow it).

The rule, and why:

- **Private by default.** The ``pairlab`` command sets the process umask to ``PRIVATE_UMASK``
  (077) before it writes anything, so every file and folder it creates is owner-only unless
  this module says otherwise: the data dir (0700), the database and the cookie secret (0600),
  the task store (hidden checks, solutions), histories, exports and the host side of every
  workspace. Another local user, and every sandbox uid, can read none of it.
- **Exactly two kinds of host tree are read by the sandbox uids**, because bubblewrap mounts
  them read-only into every workspace and every check run: the task environments, and the
  Python installations those environments and jupyter-server run on (pairlab's own virtual
  environment and the base Python it points at). bubblewrap makes the mounts as root, so
  the folders *above* them need not be traversable (the data dir stays 0700); but inside the
  sandbox every file is checked against the sandbox uid, so the trees themselves must be
  world-readable.
  - Task environments are pairlab's own: ``publish_read_only`` makes each one readable and
    runnable by everyone and writable by no one once it is built, whatever the umask it was
    built under (an environment left owner-only by an older pairlab is fixed the same way).
  - The Python installations are the operator's: pairlab never changes their modes.
    ``pairlab doctor`` checks them (``unreadable``) and says how to fix a miss.
- Folders a sandbox writes belong to its uid (``bwrap.own_dir`` for a workspace, the check
  runner's ``own_tree`` for a check's copy); nothing else of the data dir is ever mounted.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
"""The umask of every pairlab process: what it writes is owner-only unless published here."""


def set_private_umask() -> None:
    """Called once at program start, before anything is written."""
    os.umask(PRIVATE_UMASK)


def _published_mode(mode: int) -> int:
    """r-x for everyone on folders and executables, r-- for other files; never writable."""
    if stat.S_ISDIR(mode) or mode & 0o111:
        return 0o555
    return 0o444


def publish_read_only(root: Path) -> None:
    """Make the tree at ``root`` readable (and, where executable, runnable) by every uid and
    writable by none. Symbolic links are left alone and never followed."""
    for _dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = _published_mode(mode)
            if stat.S_IMODE(mode) != wanted:
                os.chmod(name, wanted, dir_fd=dirfd)
    os.chmod(root, 0o555)  # noqa: S103 - published read-only on purpose (module docstring)


def is_published(root: Path) -> bool:
    """Cheap test whether ``root`` itself is readable and searchable by other uids."""
    try:
        mode = os.stat(root).st_mode
    except OSError:
        return False
    return mode & 0o005 == 0o005


def unreadable(root: Path, limit: int = 5) -> list[Path]:
    """Up to ``limit`` paths under ``root`` that a uid other than the owner could not read
    (folders: read and search; files: read). Links are not followed. For ``pairlab doctor``."""
    found: list[Path] = []
    if not root.exists():
        return [root]
    if not is_published(root):
        return [root]
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                continue
            need = 0o005 if stat.S_ISDIR(mode) else 0o004
            if mode & need != need:
                found.append(Path(dirpath) / name)
                if len(found) >= limit:
                    return found
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) not in found]
    return found


def remove_tree(tree: Path) -> None:
    """Remove a tree that may be read-only (a published environment) or made by a sandbox uid:
    each folder gets its owner's write bit back through the descriptor ``fwalk`` verified (a
    link swapped in is never followed), then ``shutil.rmtree`` (safe against links too)."""
    if not tree.exists() and not tree.is_symlink():
        return
    if not tree.is_symlink() and tree.is_dir():
        for _dirpath, _dirnames, _filenames, dirfd in os.fwalk(tree, follow_symlinks=False):
            os.fchmod(dirfd, 0o700)
        if sys.version_info >= (3, 12):
            shutil.rmtree(tree, onexc=lambda _f, path, exc: _log_left(path, exc))
        else:
            shutil.rmtree(tree, onerror=lambda _f, path, info: _log_left(path, info[1]))
    else:
        tree.unlink()


def _log_left(path: str, exc: BaseException) -> None:
    log.warning("could not remove %s: %s", path, exc)


def writable_by_others(path: Path) -> Path | None:
    """The first of ``path`` and its parents that a uid other than its owner (root) could write
    to, and so swap what is below it (a sticky folder such as ``/tmp`` protects others' entries
    and does not count), or None."""
    current = Path(os.path.abspath(path))
    while True:
        try:
            info = current.lstat()
        except OSError:  # not there (yet), or a file in the way: its parents decide
            info = None
        if info is not None:
            loose = stat.S_IMODE(info.st_mode) & 0o022 and not info.st_mode & stat.S_ISVTX
            if info.st_uid != 0 and info.st_uid != os.geteuid() or loose:
                return current
        if current.parent == current:
            return None
        current = current.parent


def owner_only(path: Path) -> bool:
    """True if no one but the owner may read, write or enter ``path``."""
    return stat.S_IMODE(path.stat(follow_symlinks=False).st_mode) & 0o077 == 0

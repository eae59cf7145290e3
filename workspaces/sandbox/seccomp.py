"""The seccomp filter every sandbox runs under (``bwrap --seccomp FD``): no new user namespaces.

pairlab's sandboxes have no user namespace of their own (bwrap runs as root and the workspace runs
as a real uid), so bubblewrap 0.8's ``--disable-userns``, which only works together with
``--unshare-user``, is not available to us. Without a filter, ``unshare -U -r`` would give the
candidate "root" in a fresh user namespace, and with it the kernel's namespaced attack surface
(mounts, netfilter, new network stacks...). So, as Flatpak does:

- ``unshare`` and ``clone`` with ``CLONE_NEWUSER`` in their flags fail with ``EPERM``;
- ``clone3``, whose flags live in memory a filter cannot read, fails with ``ENOSYS`` (glibc and
  other runtimes then fall back to ``clone``, which the rule above checks);
- only the native architecture is allowed (x86_64 or aarch64): a system call made through
  another ABI (i386 ``int 0x80`` or x32 on x86_64, arm32 on aarch64), which the rules above would
  not see, kills the process.

Everything else is allowed. The program is built with libseccomp (through ``pyseccomp``, its
ctypes bindings, API-compatible with libseccomp's own Python module) rather than by hand, and
compiled once per pairlab process.
"""

from __future__ import annotations

import errno
import functools
import os
import platform

from workspaces.errors import SandboxUnavailable

CLONE_NEWUSER = 0x10000000
MACHINES = ("x86_64", "aarch64")


@functools.cache
def program() -> bytes:
    """The classic-BPF program bwrap loads (``SandboxUnavailable`` if it cannot be built)."""
    machine = platform.machine()
    if machine not in MACHINES:
        raise SandboxUnavailable(f"no seccomp filter for {machine}: pairlab supports "
                                 f"{' and '.join(MACHINES)}")
    try:
        import pyseccomp as seccomp  # loads libseccomp.so.2 with ctypes
    except (ImportError, OSError, TypeError) as exc:
        raise SandboxUnavailable(f"libseccomp cannot be loaded ({exc}); install the "
                                 "libseccomp2 package") from None
    flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    flt.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    flt.set_attr(seccomp.Attr.CTL_NNP, 0)  # bwrap sets no_new_privs itself
    for call in ("unshare", "clone"):  # the flags are the first argument on both machines
        flt.add_rule(seccomp.ERRNO(errno.EPERM), call,
                     seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    flt.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    fd = os.memfd_create("pairlab-seccomp")
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            flt.export_bpf(out)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def unavailable() -> str | None:
    """``None`` if the filter can be built here, else why not (for the probe and the doctor)."""
    try:
        program()
    except SandboxUnavailable as exc:
        return exc.message
    return None


def filter_fd() -> int:
    """A descriptor to pass to ``bwrap --seccomp``: the read end of a pipe holding the program
    (a few hundred bytes, well under a pipe's 64 KiB, so writing never blocks)."""
    data = program()
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd

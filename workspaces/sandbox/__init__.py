"""The sandbox every piece of task or candidate code runs in: the bubblewrap command line (bwrap,
the one place it is built), its seccomp filter, cgroups, disk images and tmpfs mounts, rlimits,
file modes, the control socket's peer check, and the runner for checks and tests (run)."""

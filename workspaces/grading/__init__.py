"""Grading a tree of code in the sandbox: the pytest harness (harness) and its runner
(pytest_runner), the check runner for hidden checks and visible tests (hidden), and the queue that
shares check runs fairly between sessions (queue)."""

"""Grading a tree of code in the sandbox: the pytest harness and its runner, the queue that
shares check runs fairly between sessions."""

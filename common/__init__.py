"""What every package shares and nothing else: the clock, the error base, bounded child processes,
the hardened git environment and the database writer. Imports nothing of pairlab's."""

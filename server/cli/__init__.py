"""The pairlab command: serve, demo, doctor, and the user, task and session subcommands."""

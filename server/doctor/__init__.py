"""pairlab doctor and its admin page: what this machine can and cannot do for pairlab."""

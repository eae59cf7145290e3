"""The recording of a session: events and their store, the recorder that turns taps, the file
watcher and lifecycle hooks into events, kernel and terminal trackers, the snapshot history, and
the tree copies and archive made from it."""

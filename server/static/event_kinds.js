// pairlab: the event kinds a page listens for on the live event stream (SSE names each message
// after its event's kind; an EventSource hears only the names it listens for). The stream's own
// "end" message (the session is over: do not reconnect) is not an event and is not listed.
(function () {
  "use strict";
  window.PairlabEventKinds = ["session.scheduled", "session.started", "session.joined",
    "session.left", "session.ended", "workspace.ready", "workspace.crashed",
    "workspace.restarted", "workspace.failed", "kernel.failed", "terminal.failed",
    "file.created", "file.changed", "file.renamed", "file.deleted", "cell.executed",
    "kernel.started", "kernel.restarted", "kernel.interrupted", "kernel.died",
    "terminal.command", "terminal.output", "tests.run", "checks.run", "note", "hint",
    "time.extended", "snapshot", "message"];
})();

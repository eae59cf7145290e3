// pairlab: the interviewer's live observation page.
//
// Events arrive over Server-Sent Events. Each has a gap-free seq: the page keeps the last one it
// showed, ignores anything at or below it (no duplicates) and fetches any gap over the JSON API
// before going on (nothing missed), so a reconnect, whether EventSource's own (it sends
// Last-Event-ID) or ours (?after=), resumes exactly where the page was.
//
// The page follows the session's state without a reload: once the session is over the server
// ends the stream with an "end" message; the page then says so, hides the live controls and
// does not reconnect. A strip says how the workspace is (live, restarting, closed) and a
// banner lists kernels and terminals that could not start or died, until one starts again.
(function () {
  "use strict";
  var T = window.PairlabTimeline;
  var cfg = T.config();
  var $ = function (id) { return document.getElementById(id); };
  var csrf = (document.querySelector("input[name=csrf_token]") || {}).value || "";
  var KINDS = window.PairlabEventKinds;
  var MAX_CELLS = 5;
  var HIDDEN_FLUSH_MS = 250;
  var FIRST_SHOWN = 300;
  var OLDER_PAGE = 500;

  var lastSeq = 0;
  var queue = Promise.resolve();
  var source = null;
  var retryMs = 1000;
  var state = cfg.state;
  var secondsLeft = cfg.seconds_left;
  var testRuns = [];
  var cells = [];
  var fresh = [];
  var backlog = [];   // events of the initial load, until it is shown
  var older = [];     // loaded but not shown yet
  var flushPending = false;
  var cellsChanged = false;
  var testsChanged = false;
  var pollTimer = null;
  var givenHints = Object.create(null);
  var latestSnapshot = null;
  var selectedFile = null;
  var finished = false;  // the server ended the stream: the session is over, nothing follows
  var workspace = null;  // what the workspace events last said: live, restarting, failed, closed
  var problems = Object.create(null);  // banner lines by key (kernel-failed, kernel-died:<id>, …)
  var sessionPoll = null;
  var pollEveryMs = 0;
  var POLL_MS = 15000;
  var STARTING_POLL_MS = 1000;

  // ---- the event stream ----------------------------------------------------------------------

  function setStream(text, cls) {
    var node = $("pl-stream");
    node.textContent = text;
    node.className = "pl-stream " + (cls || "");
  }

  function connect() {
    if (finished) { return; }
    if (source) { source.close(); }
    var current = source = new EventSource(cfg.api + "/events/stream?after=" + lastSeq);
    current.onopen = function () { retryMs = 1000; setStream("live", "pl-ok"); };
    current.onerror = function () {
      if (finished || current !== source) { return; }
      setStream("reconnecting", "pl-warn");
      if (current.readyState === EventSource.CLOSED) {
        // The server refused or cut the stream without its end: reconnect ourselves, from lastSeq.
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      } // else EventSource retries by itself with Last-Event-ID
    };
    KINDS.forEach(function (kind) { current.addEventListener(kind, onMessage); });
    current.addEventListener("end", function (message) {
      // The session is over and its last events are out: stop here, before EventSource retries.
      current.close();
      finished = true;
      var end;
      try { end = JSON.parse(message.data); } catch (e) { end = {}; }
      queue = queue.then(function () { return catchUp(end.last_seq || 0); })
        .then(function () { finish(end.state || "ended"); })
        .catch(function (err) { finish(end.state || "ended"); setStream("finished (" + err.message + ")", "pl-warn"); });
    });
  }

  // Fetch whatever is still missing up to seq `target` (the stream's end names its last event).
  function catchUp(target) {
    if (lastSeq >= target) { return null; }
    return T.api(cfg.api + "/events?after=" + lastSeq + "&limit=1000").then(function (data) {
      var before = lastSeq;
      (data.events || []).forEach(function (e) { if (e.seq === lastSeq + 1) { show(e); } });
      return lastSeq > before ? catchUp(target) : null;
    });
  }

  function finish(finalState) {
    finished = true;
    source = null;
    setStream("finished", "pl-muted");
    applyState(finalState === "failed" ? "failed" : "ended", 0);
    clearInterval(sessionPoll);
    pollSession();  // the connections table's last word; the state is final already
  }

  function onMessage(message) {
    var ev;
    try { ev = JSON.parse(message.data); } catch (e) { return; }
    if (!ev || typeof ev.seq !== "number") { return; }
    queue = queue.then(function () { return accept(ev); }).catch(function (err) {
      setStream("error: " + err.message, "pl-warn");
    });
  }

  // Fill any gap below ev.seq from the JSON API, then show ev.
  function accept(ev) {
    if (ev.seq <= lastSeq) { return null; }
    if (ev.seq === lastSeq + 1) { show(ev); return null; }
    return T.api(cfg.api + "/events?after=" + lastSeq + "&limit=" + Math.min(ev.seq - lastSeq, 1000))
      .then(function (data) {
        var before = lastSeq;
        (data.events || []).forEach(function (e) { if (e.seq === lastSeq + 1) { show(e); } });
        if (lastSeq === before) { throw new Error("could not fill the gap after #" + lastSeq); }
        return accept(ev);
      });
  }

  // Take an event in (state at once); the DOM is updated in batches by flush().
  function show(ev) {
    lastSeq = ev.seq;
    fresh.push(ev);
    switch (ev.kind) {
      case "cell.executed": cells = cells.concat([ev]).slice(-MAX_CELLS); cellsChanged = true; break;
      case "tests.run": case "checks.run": testRuns.push(ev); testsChanged = true; break;
      case "note": case "hint":
        if (ev.kind === "hint" && ev.payload && ev.payload.text) { givenHints[ev.payload.text] = true; }
        break;
      case "snapshot": refreshChanges(300); break;
      case "file.created": case "file.changed": case "file.renamed": case "file.deleted":
        refreshChanges(3000); break;
      case "time.extended": case "session.started": case "session.joined": case "session.left":
        pollLater(); break;
      case "workspace.ready": case "workspace.restarted": setWorkspace("live"); pollLater(); break;
      case "workspace.crashed": setWorkspace("restarting"); pollLater(); break;
      case "workspace.failed":
        setWorkspace("failed");
        setProblem("workspace-failed", "The workspace failed: " + reason(ev));
        pollLater(); break;
      case "session.ended": setWorkspace("closed"); problems = Object.create(null); renderProblems();
        pollLater(); break;
      case "kernel.failed":
        setProblem("kernel-failed", "A kernel could not start" + where(ev) + ": " + reason(ev)); break;
      case "kernel.died":
        setProblem("kernel-died:" + kernelId(ev), "The kernel" + where(ev) + " died."); break;
      case "kernel.started": case "kernel.restarted":
        setProblem("kernel-failed", null);
        setProblem("kernel-died:" + kernelId(ev), null);
        break;
      case "terminal.failed":
        setProblem("terminal-failed", "A terminal could not start: " + reason(ev)); break;
      case "terminal.command": case "terminal.output": setProblem("terminal-failed", null); break;
      default: break;
    }
    if (!flushPending) {  // the next frame, or soon if the tab is hidden (no frames then)
      flushPending = true;
      requestAnimationFrame(flush);
      setTimeout(flush, HIDDEN_FLUSH_MS);
    }
  }

  // One DOM update for everything that arrived since the last one (a backlog of thousands of
  // events costs one layout, not thousands).
  function flush() {
    if (!flushPending) { return; }
    flushPending = false;
    var batch = fresh, notes = document.createDocumentFragment();
    fresh = [];
    for (var i = batch.length - 1; i >= 0; i--) {
      if (batch[i].kind === "note" || batch[i].kind === "hint") { notes.appendChild(noteItem(batch[i])); }
    }
    if (backlog) {
      backlog = backlog.concat(batch); // shown (newest first, a page at a time) when loaded
    } else {
      var list = $("pl-timeline");
      list.insertBefore(eventItems(batch.reverse()), list.firstChild);
    }
    $("pl-notes").insertBefore(notes, $("pl-notes").firstChild);
    $("pl-last-seq").textContent = String(lastSeq);
    $("pl-note-at").textContent = String(lastSeq);
    if (cellsChanged) {
      cellsChanged = false;
      T.clear($("pl-cells"));
      cells.slice().reverse().forEach(function (ev) { $("pl-cells").appendChild(T.cellCard(ev, cfg.names)); });
    }
    if (testsChanged) { testsChanged = false; T.renderTests($("pl-tests"), testRuns); }
    markHints();
  }

  function eventItems(newestFirst) {
    var items = document.createDocumentFragment();
    newestFirst.forEach(function (ev) { items.appendChild(T.eventItem(ev, cfg.names, false)); });
    return items;
  }

  // After the backlog: the newest events at once, older ones on request (the replay has all).
  function showBacklog() {
    var loaded = backlog || [];
    backlog = null;
    older = loaded.slice(0, Math.max(0, loaded.length - FIRST_SHOWN));
    $("pl-timeline").appendChild(eventItems(loaded.slice(older.length).reverse()));
    showOlderButton();
  }

  function showOlderButton() {
    var button = $("pl-older");
    button.hidden = !older.length;
    button.textContent = "Show " + Math.min(older.length, OLDER_PAGE) + " older events (" +
      older.length + " not shown)";
  }

  $("pl-older").addEventListener("click", function () {
    var page = older.slice(Math.max(0, older.length - OLDER_PAGE));
    older = older.slice(0, older.length - page.length);
    $("pl-timeline").appendChild(eventItems(page.reverse()));
    showOlderButton();
  });

  function noteItem(ev) {
    var p = ev.payload || {};
    return T.el("li", { class: "pl-note pl-kind-" + ev.kind, data: { seq: ev.seq } }, [
      T.el("time", { datetime: ev.at }, [T.clock(ev.at)]), " ",
      T.el("strong", {}, [ev.kind === "hint" ? "Hint" : "Note"]), " ",
      T.el("span", { class: "pl-muted" }, [T.actorName(ev.actor, cfg.names) +
        (p.at_seq !== undefined && p.at_seq !== null ? " · at #" + p.at_seq : "")]),
      T.el("div", { class: "pl-notetext", text: p.text || "" })
    ]);
  }

  // The backlog comes in pages from the JSON API, then the stream takes over from lastSeq.
  function loadBacklog() {
    return T.api(cfg.api + "/events?after=" + lastSeq + "&limit=1000").then(function (data) {
      var page = data.events || [];
      page.forEach(function (ev) { if (ev.seq === lastSeq + 1) { show(ev); } });
      var more = data.more === undefined ? page.length > 0 : data.more;
      return more && page.length ? loadBacklog() : null;
    });
  }

  function markHints() {
    var buttons = document.querySelectorAll("button.pl-hint");
    Array.prototype.forEach.call(buttons, function (b) {
      if (givenHints[b.dataset.hint] && !b.classList.contains("pl-given")) {
        b.classList.add("pl-given");
        b.textContent = "✓ " + b.textContent + " again";
      }
    });
  }

  // ---- diff and tree at the latest snapshot ----------------------------------------------------

  var changesTimer = null;
  function refreshChanges(delay) {
    clearTimeout(changesTimer);
    changesTimer = setTimeout(loadChanges, delay);
  }

  function loadChanges() {
    T.api(cfg.api + "/snapshots").then(function (data) {
      var snaps = data.snapshots || [];
      if (!snaps.length) { return null; }
      var first = snaps[0], last = snaps[snaps.length - 1];
      latestSnapshot = last.seq;
      $("pl-diff-at").textContent = "(snapshot at #" + last.seq + ", " + T.clock(last.at) + ")";
      return Promise.all([
        T.api(cfg.api + "/diff?from=" + first.seq + "&to=" + last.seq),
        T.api(cfg.api + "/tree?at=" + last.seq)
      ]).then(function (both) {
        T.renderDiff($("pl-diff"), both[0].diff || "");
        T.renderTree($("pl-tree"), both[1], pickFile, selectedFile);
        if (selectedFile) { pickFile(selectedFile); }
      });
    }).catch(function (err) {
      T.clear($("pl-diff"));
      $("pl-diff").appendChild(T.el("p", { class: "pl-muted" }, ["Changes unavailable: " + err.message]));
    });
  }

  function pickFile(path) {
    selectedFile = path;
    Array.prototype.forEach.call(document.querySelectorAll("#pl-tree .pl-file"), function (b) {
      b.classList.toggle("pl-selected", b.dataset.path === path);
    });
    T.api(cfg.api + "/file?at=" + latestSnapshot + "&path=" + encodeURIComponent(path))
      .then(function (data) { T.renderFile($("pl-file"), data); })
      .catch(function (err) { T.clear($("pl-file")); $("pl-file").appendChild(T.el("p", {}, [err.message])); });
  }

  // ---- the workspace's health: a strip and a banner of problems -------------------------------

  function reason(ev) {
    var p = ev.payload || {};
    return p.reason ? T.clean(p.reason) : "no reason given";  // escapes stripped, shown as text
  }
  function where(ev) { return ev.path ? " for " + T.clean(ev.path) : ""; }
  function kernelId(ev) { return (ev.payload && ev.payload.kernel_id) || ""; }

  function setWorkspace(value) { workspace = value; renderHealth(); }

  function renderHealth() {
    var text = state === "ended" ? "closed" : state === "failed" ? "failed" :
      workspace || (state === "live" ? "live" : "not started");
    var node = $("pl-health");
    node.textContent = text;
    node.className = "pl-health " + (text === "live" ? "pl-ok" : text === "closed" ? "pl-muted" : "pl-warn");
  }

  var problemsPending = false;
  function setProblem(key, text) {
    if (text) { problems[key] = text; } else if (key in problems) { delete problems[key]; } else { return; }
    if (!problemsPending) {  // one DOM update per batch of events (a backlog has many)
      problemsPending = true;
      setTimeout(renderProblems, 0);
    }
  }

  function renderProblems() {
    problemsPending = false;
    var box = $("pl-problems");
    T.clear(box);
    Object.keys(problems).forEach(function (key) {
      box.appendChild(T.el("li", { class: "pl-problem", data: { problem: key.split(":")[0] } }, [problems[key]]));
    });
    box.hidden = !box.firstChild;
  }

  // ---- session status, countdown, connections --------------------------------------------------

  function renderCountdown() {
    var node = $("pl-countdown");
    if (state === "ended" || state === "failed") { node.textContent = "Session " + state; return; }
    // to the second near the end; whole days for a session far ahead (not "2022:13:20")
    node.textContent = secondsLeft >= 2 * 86400 ? Math.floor(secondsLeft / 86400) + " days left"
                                                : T.span(secondsLeft) + " left";
    node.classList.toggle("pl-warn", secondsLeft < 300);
  }

  // The session's state is asked every 15 s; every second until it is live (a start under
  // way, maybe waiting in the start queue, changes nothing else the page is sent).
  function pollEvery(ms) {
    if (finished || ms === pollEveryMs) { return; }
    clearInterval(sessionPoll);
    pollEveryMs = ms;
    sessionPoll = setInterval(pollSession, ms);
  }

  function pollLater() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(pollSession, 200);
  }

  // Show the session's state: the live controls only while it is open, the links once over.
  function applyState(newState, newSecondsLeft, queue) {
    if (finished && newState !== "ended" && newState !== "failed") { return; }  // ends are final
    state = newState;
    secondsLeft = newSecondsLeft;
    var open = state === "scheduled" || state === "provisioning" || state === "live";
    var over = state === "ended" || state === "failed";
    $("pl-state").textContent = queue ? "queued to start (" + queue.ahead + " ahead, about " +
      queue.starts_in_s + " s)" : state;
    pollEvery(state === "scheduled" || state === "provisioning" ? STARTING_POLL_MS : POLL_MS);
    $("pl-join-form").hidden = state !== "live";
    $("pl-extend-form").hidden = !open;
    $("pl-end-form").hidden = !open;
    $("pl-hint-save").hidden = over;
    if ($("pl-hints")) { $("pl-hints").hidden = over; }
    $("pl-over").hidden = !over;
    renderCountdown();
    renderHealth();
  }

  function pollSession() {
    T.api(cfg.api).then(function (data) {
      applyState(data.session.state, data.session.seconds_left, data.session.queue);
      var body = $("pl-connections").querySelector("tbody");
      T.clear(body);
      (data.connections || []).slice(-20).reverse().forEach(function (c) {
        body.appendChild(T.el("tr", {}, [T.el("td", {}, [T.clock(c.at)]), T.el("td", {}, [c.who]),
          T.el("td", {}, [c.kind]), T.el("td", {}, [c.address])]));
      });
      if (!body.firstChild) {
        body.appendChild(T.el("tr", {}, [T.el("td", { colspan: 4 }, ["Nobody has connected yet."])]));
      }
    }).catch(function () { /* keep the last values */ });
  }

  // ---- notes, hints and actions ---------------------------------------------------------------

  // One request at a time per control group: a second click on a hint, Save note or Extend
  // while the first is under way would send it twice (the candidate sees a hint twice; the
  // session is extended twice). Its buttons are disabled until the answer is back.
  // A request that never answers frees them after ONCE_MAX_MS; focus that was on one of them
  // goes back to it (disabling a focused button leaves keyboard users on the page's body).
  var ONCE_MAX_MS = 30000;
  function once(buttons, run) {
    if (buttons.some(function (b) { return b.disabled; })) { return Promise.resolve(false); }
    var focused = buttons.indexOf(document.activeElement) >= 0 ? document.activeElement : null;
    buttons.forEach(function (b) { b.disabled = true; });
    var released = false;
    var release = function () {
      if (released) { return; }
      released = true;
      clearTimeout(timer);
      buttons.forEach(function (b) { b.disabled = false; });
      var lost = !document.activeElement || document.activeElement === document.body;
      if (focused && lost && document.contains(focused)) { focused.focus(); }
    };
    var timer = setTimeout(release, ONCE_MAX_MS);
    return Promise.resolve().then(run).then(function (value) { release(); return value; },
                                            function (err) { release(); throw err; });
  }

  // The second click of a double click (detail 2) is no second request either, however fast
  // the first one was answered (a disabled button alone lets it through once the answer is
  // back). Keyboard presses have detail 0.
  function singleClicks(buttons) {
    buttons.forEach(function (b) {
      b.addEventListener("click", function (e) {
        if (e.detail > 1) { e.preventDefault(); e.stopImmediatePropagation(); }
      });
    });
    return buttons;
  }

  // The note form's buttons share its text: one request at a time for them; each hint button
  // on its own (two different hints clicked in turn are both given).
  var formButtons = singleClicks(Array.prototype.slice.call(
    document.querySelectorAll("#pl-note-form button")));

  function postNote(text, kind, result, buttons) {
    return once(buttons, function () {
      result.textContent = "saving…";
      return T.api(cfg.api + "/notes", { csrf: csrf, body: { text: text, kind: kind, at_seq: lastSeq } })
        .then(function () { result.textContent = kind === "hint" ? "hint recorded" : "saved"; return true; })
        .catch(function (err) { result.textContent = "not saved: " + err.message; return false; });
    });
  }

  $("pl-note-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var kind = e.submitter && e.submitter.value === "hint" ? "hint" : "note";
    var box = $("pl-note-text");
    if (!box.value.trim()) { return; }
    postNote(box.value, kind, $("pl-note-result"), formButtons)
      .then(function (ok) { if (ok) { box.value = ""; } });
  });

  Array.prototype.forEach.call(document.querySelectorAll("button.pl-hint"), function (b) {
    singleClicks([b]);
    b.addEventListener("click", function () {
      postNote(b.dataset.hint, "hint", $("pl-note-result"), [b]);
    });
  });

  function action(formId, run) {
    var form = $(formId);
    if (!form) { return; }
    var buttons = singleClicks(Array.prototype.slice.call(form.querySelectorAll("button")));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var out = $("pl-action-result");
      once(buttons, function () {
        out.textContent = "…";
        return run(form).then(function (msg) { out.textContent = msg || ""; pollSession(); })
          .catch(function (err) { out.textContent = err.message; });
      });
    });
  }

  action("pl-join-form", function () {
    return T.api(cfg.api + "/handoff", { csrf: csrf, body: {} }).then(function (data) {
      window.open(data.url, "_blank", "noopener");
      return "The workspace opened in a new tab.";
    });
  });
  action("pl-extend-form", function (form) {
    var minutes = Number(form.elements.minutes.value.trim());
    if (!Number.isInteger(minutes)) {
      return Promise.reject(new Error("Enter the minutes to add as a whole number, 1 to 120."));
    }
    return T.api(cfg.api + "/extend", { csrf: csrf, body: { minutes: minutes } })
      .then(function () { return "Extended by " + minutes + " min."; });
  });
  action("pl-end-form", function () {
    if (!window.confirm("End the session now? The candidate's workspace becomes read-only.")) {
      return Promise.resolve("");
    }
    return T.api(cfg.api + "/end", { csrf: csrf, body: {} }).then(function () { return "Session ended."; });
  });

  renderCountdown();
  setInterval(function () { if (secondsLeft > 0) { secondsLeft -= 1; } renderCountdown(); }, 1000);
  pollEvery(POLL_MS);
  pollSession();
  loadChanges();
  loadBacklog().catch(function (err) { setStream("backlog: " + err.message, "pl-warn"); })
    .then(function () { flushPending = true; flush(); showBacklog(); connect(); });
  window.pairlabObserver = { lastSeq: function () { return lastSeq; }, reconnect: connect,
    finished: function () { return finished; } };
})();

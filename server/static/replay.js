// pairlab: the replay page. Loads every event of a session, then lets a reviewer scrub through
// them (the range's value is an event seq): the workspace (tree and files) as of that event
// (the latest snapshot with the file events after it laid over, by the API), a diff between any two moments, and markers for notable
// ML-work signals. The position lives in the URL (#seq=N) so a moment can be linked.
(function () {
  "use strict";
  var T = window.PairlabTimeline;
  var cfg = T.config();
  var $ = function (id) { return document.getElementById(id); };
  var IDLE_SHOWN_S = 20;   // width of a compressed idle stretch on the track, in seconds

  var events = [];          // in seq order
  var bySeq = Object.create(null);
  var indexOf = Object.create(null); // seq -> position in events
  var snapshots = [];       // [{seq, commit, at}] in seq order
  var items = Object.create(null); // seq -> <li>
  var current = 0;
  var shownSnapshot = null;
  var selectedFile = null;

  // ---- loading -----------------------------------------------------------------------------

  function loadEvents(after) {
    return T.api(cfg.api + "/events?after=" + after + "&limit=1000").then(function (data) {
      var page = data.events || [];
      page.forEach(function (ev) {
        if (!bySeq[ev.seq]) { bySeq[ev.seq] = ev; events.push(ev); }
      });
      $("pl-load").textContent = "loading events… " + events.length;
      var more = data.more === undefined ? page.length > 0 : data.more && page.length > 0;
      return more ? loadEvents(page[page.length - 1].seq) : null;
    });
  }

  function loadSnapshots() {
    return T.api(cfg.api + "/snapshots").then(function (data) {
      snapshots = (data.snapshots || []).slice().sort(function (a, b) { return a.seq - b.seq; });
    }).catch(function () { snapshots = []; });
  }

  // ---- the event list ---------------------------------------------------------------------------

  function renderEvents() {
    var list = $("pl-events"), idle = idleSeconds() * 1000;
    T.clear(list);
    events.forEach(function (ev, i) {
      if (i > 0) {
        var gap = Date.parse(ev.at) - Date.parse(events[i - 1].at);
        if (gap > idle) {
          list.appendChild(T.el("li", { class: "pl-idle" }, ["idle for " + T.span(gap / 1000)]));
        }
      }
      var li = T.eventItem(ev, cfg.names, false);
      li.addEventListener("click", function (e) {
        if (e.target.closest("summary")) { go(ev.seq); }
      });
      items[ev.seq] = li;
      list.appendChild(li);
    });
    applyFilter();
  }

  // A filter shows one kind of event, with its details open (code, output, notes).
  function applyFilter() {
    var f = $("pl-filter").value;
    events.forEach(function (ev) {
      var li = items[ev.seq];
      li.hidden = !!f && ev.kind.indexOf(f) !== 0;
      if (f && !li.hidden) { li.querySelector("details").open = true; }
    });
    Array.prototype.forEach.call($("pl-events").querySelectorAll(".pl-idle"), function (li) {
      li.hidden = !!f;
    });
  }

  // ---- the track: events by time, idle stretches compressed, signal markers -------------------

  function idleSeconds() { return Math.max(1, Number($("pl-idle-min").value) || 5) * 60; }

  // x position (seconds on the track) of every event.
  function positions() {
    var compress = $("pl-compress").checked, idle = idleSeconds(), x = 0, out = [], gaps = [];
    events.forEach(function (ev, i) {
      if (i > 0) {
        var gap = Math.max(0, (Date.parse(ev.at) - Date.parse(events[i - 1].at)) / 1000);
        if (gap > idle) { gaps.push({ from: x, seconds: gap }); }
        x += compress && gap > idle ? IDLE_SHOWN_S : gap;
        if (gap > idle) { gaps[gaps.length - 1].to = x; }
      }
      out.push(x);
    });
    return { xs: out, total: x || 1, gaps: gaps };
  }

  var layout = { xs: [], total: 1, gaps: [] };

  function renderTrack(marks) {
    var track = $("pl-track"), head = $("pl-playhead");
    T.clear(track);
    track.appendChild(head);
    layout = positions();
    var pct = function (x) { return (100 * x / layout.total).toFixed(3) + "%"; };
    layout.gaps.forEach(function (g) {
      var block = T.el("div", { class: "pl-gap", title: "idle " + T.span(g.seconds) });
      block.style.left = pct(g.from);
      block.style.width = pct(g.to - g.from);
      track.appendChild(block);
    });
    var drawn = Object.create(null); // one tick per kind and 0.2% of the width is enough
    events.forEach(function (ev, i) {
      var kind = ev.kind.split(".")[0], key = kind + Math.round(500 * layout.xs[i] / layout.total);
      if (drawn[key]) { return; }
      drawn[key] = true;
      var tick = T.el("div", { class: "pl-tick " + kind });
      tick.style.left = pct(layout.xs[i]);
      track.appendChild(tick);
    });
    marks.forEach(function (m) {
      var i = indexOf[m.seq];
      var flag = T.el("div", { class: "pl-flag pl-" + m.kind, title: m.label + " (#" + m.seq + ")" });
      flag.style.left = pct(layout.xs[i]);
      track.appendChild(flag);
    });
    placeHead();
  }

  function placeHead() {
    var i = indexOf[current];
    if (i !== undefined) { $("pl-playhead").style.left = (100 * layout.xs[i] / layout.total) + "%"; }
  }

  $("pl-track").addEventListener("click", function (e) {
    var box = e.currentTarget.getBoundingClientRect();
    var x = (e.clientX - box.left) / box.width * layout.total, best = 0;
    layout.xs.forEach(function (v, i) {
      if (Math.abs(v - x) < Math.abs(layout.xs[best] - x)) { best = i; }
    });
    if (events[best]) { go(events[best].seq); }
  });

  function renderMarkers(marks) {
    var list = $("pl-markers");
    T.clear(list);
    if (!marks.length) { list.appendChild(T.el("li", { class: "pl-muted" }, ["No notable signals."])); }
    marks.forEach(function (m) {
      var button = T.el("button", { type: "button", class: "pl-marker pl-" + m.kind,
        data: { seq: m.seq, kind: m.kind } }, [m.label + " · #" + m.seq + " · " +
        T.clock(bySeq[m.seq].at)]);
      button.addEventListener("click", function () { go(m.seq); });
      list.appendChild(T.el("li", {}, [button]));
    });
  }

  // ---- the position -------------------------------------------------------------------------

  // Move to event seq: the position, the current event and the playhead at once; the event
  // list, the workspace and the URL once scrubbing pauses (they cost a layout or a request).
  function go(seq) {
    if (!events.length) { return; }
    seq = Math.max(events[0].seq, Math.min(events[events.length - 1].seq, seq));
    if (!bySeq[seq]) { return; }
    current = seq;
    $("pl-range").value = String(seq);
    var ev = bySeq[seq], start = Date.parse(events[0].at);
    $("pl-pos").textContent = "#" + seq + " of " + events[events.length - 1].seq + " · " +
      T.clock(ev.at) + " · " + T.span((Date.parse(ev.at) - start) / 1000) + " into the session";
    var box = $("pl-current");
    T.clear(box);
    box.appendChild(T.el("ol", { class: "pl-timeline" }, [T.eventItem(ev, cfg.names, true)]));
    placeHead();
    clearTimeout(settleTimer);
    settleTimer = setTimeout(settle, 120);
  }

  var settleTimer = null, marked = 0;
  function settle() {
    var seq = current;
    // Dim the events after the position (only those whose side changed since last time).
    var lo = marked ? Math.min(marked, seq) : events[0].seq;
    var hi = marked ? Math.max(marked, seq) : events[events.length - 1].seq;
    for (var s = lo; s <= hi; s++) {
      if (items[s]) { items[s].classList.toggle("pl-future", s > seq); items[s].classList.remove("pl-current"); }
    }
    marked = seq;
    items[seq].classList.add("pl-current");
    scrollList(items[seq]);
    Array.prototype.forEach.call(document.querySelectorAll("#pl-tests li[data-seq]"), function (li) {
      li.classList.toggle("pl-future", Number(li.dataset.seq) > seq);
    });
    history.replaceState(null, "", "#seq=" + seq);
    showWorkspace();
    // other panels (playback.js, castplayer.js) follow the position
    document.dispatchEvent(new CustomEvent("pl:moment", { detail: { seq: seq, event: bySeq[seq] } }));
    // ready once the first position has settled and the other panels were told about it
    document.body.dataset.replayReady = "1";
  }

  function scrollList(li) {
    var list = $("pl-events");
    if (li.hidden) { return; }
    var top = li.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - li.offsetHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
  }

  function snapshotAt(seq) {
    var found = null;
    snapshots.forEach(function (s) { if (s.seq <= seq) { found = s; } });
    return found;
  }

  // The tree and the selected file as of the position, exactly (the API lays the file events
  // since the latest snapshot over it).
  function showWorkspace() {
    var snap = snapshotAt(current);
    if (!snap) {
      shownSnapshot = null;
      $("pl-ws-at").textContent = "(no snapshot before #" + current + ")";
      T.clear($("pl-tree"));
      T.clear($("pl-file"));
      return;
    }
    if (shownSnapshot === current) { return; }
    shownSnapshot = current;
    var at = current;
    $("pl-ws-at").textContent = "(as of #" + at + ", " + T.clock(bySeq[at].at) + ")";
    T.api(cfg.api + "/tree?at=" + at).then(function (data) {
      if (shownSnapshot !== at) { return; }
      var files = data.files || [];
      var still = files.some(function (f) { return f.path === selectedFile; });
      T.renderTree($("pl-tree"), data, pickFile, still ? selectedFile : null);
      if (still) { pickFile(selectedFile); } else { pickHint(); }
    }).catch(function (err) { showError($("pl-tree"), err); });
  }

  function pickHint() {
    T.clear($("pl-file"));
    $("pl-file").appendChild(T.el("p", { class: "pl-muted" }, [
      "Pick a file to see it as it was at this moment."]));
  }

  function pickFile(path) {
    selectedFile = path;
    Array.prototype.forEach.call(document.querySelectorAll("#pl-tree .pl-file"), function (b) {
      b.classList.toggle("pl-selected", b.dataset.path === path);
    });
    var at = current;
    T.api(cfg.api + "/file?at=" + at + "&path=" + encodeURIComponent(path)).then(function (data) {
      if (at === current) { T.renderFile($("pl-file"), data); }
    }).catch(function (err) { showError($("pl-file"), err); });
  }

  function showError(box, err) {
    T.clear(box);
    box.appendChild(T.el("p", { class: "pl-muted" }, ["Unavailable: " + err.message]));
  }

  // ---- controls ---------------------------------------------------------------------------------

  $("pl-range").addEventListener("input", function (e) { go(Number(e.target.value)); });
  $("pl-prev").addEventListener("click", function () { go(current - 1); });
  $("pl-next").addEventListener("click", function () { go(current + 1); });
  document.addEventListener("keydown", function (e) {
    if (e.target.closest("input, textarea, select")) { return; }
    if (e.key === "ArrowLeft") { go(current - 1); }
    if (e.key === "ArrowRight") { go(current + 1); }
  });
  $("pl-filter").addEventListener("change", applyFilter);
  var marks = [];
  function relayout() { renderEvents(); marked = 0; renderTrack(marks); go(current); }
  $("pl-compress").addEventListener("change", function () { renderTrack(marks); });
  $("pl-idle-min").addEventListener("change", relayout);
  $("pl-set-from").addEventListener("click", function () { $("pl-diff-from").value = current; });
  $("pl-set-to").addEventListener("click", function () { $("pl-diff-to").value = current; });
  $("pl-diff-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var from = Number($("pl-diff-from").value), to = Number($("pl-diff-to").value);
    T.api(cfg.api + "/diff?from=" + from + "&to=" + to)
      .then(function (data) { T.renderDiff($("pl-diff"), data.diff || ""); })
      .catch(function (err) { showError($("pl-diff"), err); });
  });

  // For the code playback panel (playback.js): the events, the position, and a way to move.
  window.PairlabReplay = {
    events: function () { return events; },
    current: function () { return bySeq[current] || null; },
    go: go
  };

  Promise.all([loadEvents(0), loadSnapshots()]).then(function () {
    events.sort(function (a, b) { return a.seq - b.seq; });
    events.forEach(function (ev, i) { indexOf[ev.seq] = i; });
    $("pl-load").textContent = events.length + " events, " + snapshots.length + " snapshots";
    document.dispatchEvent(new CustomEvent("pairlab:replay-loaded", {  // replay_live.js follows on
      detail: { lastSeq: events.length ? events[events.length - 1].seq : 0 } }));
    if (!events.length) { return; }
    var range = $("pl-range");
    range.min = String(events[0].seq);
    range.max = String(events[events.length - 1].seq);
    range.disabled = false;
    marks = T.signals(events);
    renderEvents();
    renderMarkers(marks);
    renderTrack(marks);
    T.renderTests($("pl-tests"), events.filter(T.isTestRun));
    $("pl-diff-from").value = snapshots.length ? snapshots[0].seq : events[0].seq;
    $("pl-diff-to").value = events[events.length - 1].seq;
    var linked = /seq=(\d+)/.exec(location.hash);
    go(linked ? Number(linked[1]) : events[events.length - 1].seq);
  }).catch(function (err) { $("pl-load").textContent = "could not load: " + err.message; });
})();

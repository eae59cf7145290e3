// The replay page's "Terminal" panel: plays a recorded terminal connection (an asciicast v2
// file from /api/v1/sessions/<id>/casts) in xterm.js, the terminal JupyterLab itself uses, so
// full-screen programs and escape sequences look as they did. The terminal is display-only
// (no input, links inert) and drawn by the canvas renderer: xterm's DOM renderer injects
// <style> elements, which the page's CSP (style-src 'self') forbids, so the CanvasAddon is
// loaded before open(). Screen-reader mode keeps the visible rows as text in the DOM.
// When the replay moves to a terminal.command event that points into a cast (payload.cast =
// {id, t}), the player shows that cast just after that command ran.
(function () {
  "use strict";
  var T = window.PairlabTimeline;
  var $ = function (id) { return document.getElementById(id); };
  var panel = $("pl-cast");
  if (!panel || !T || !window.Terminal || !window.CanvasAddon) { return; }
  var cfg = T.config();
  var casts = [];          // the API's rows
  var cast = null;         // {id, width, height, records: [[t, code, data]], duration}
  var term = null;
  var pos = 0;             // seconds into the cast shown
  var next = 0;            // index of the first record not yet written
  var playing = null;      // interval id
  var speed = 1;
  var generation = 0;      // a newer load or seek makes older writes moot
  var TICK_MS = 50;
  var wanted = null;       // a position asked for before the list of casts came

  function status(text) { $("pl-cast-status").textContent = text; }

  function fmt(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var m = Math.floor(s / 60);
    return m + ":" + (s % 60 < 10 ? "0" : "") + (s % 60);
  }

  function parse(text) {
    var lines = text.split("\n");
    var header = JSON.parse(lines[0]);
    if (header.version !== 2) { throw new Error("not an asciicast v2 file"); }
    var records = [];
    for (var i = 1; i < lines.length; i++) {
      if (!lines[i]) { continue; }
      var rec = JSON.parse(lines[i]);
      if (Array.isArray(rec) && rec.length === 3 && typeof rec[0] === "number" &&
          typeof rec[2] === "string" && (rec[1] === "o" || rec[1] === "r" || rec[1] === "m")) {
        records.push(rec);
      }
    }
    var duration = records.length ? records[records.length - 1][0] : 0;
    return { width: header.width || 80, height: header.height || 24, records: records,
             duration: duration };
  }

  function makeTerminal(cols, rows) {
    if (term) { term.dispose(); }
    term = new window.Terminal({
      cols: cols, rows: rows, disableStdin: true, scrollback: 10000, cursorBlink: false,
      screenReaderMode: true, convertEol: false,
      linkHandler: { activate: function () {}, allowNonHttpProtocols: false }
    });
    term.loadAddon(new window.CanvasAddon.CanvasAddon());  // before open(): see above
    term.open($("pl-cast-screen"));
  }

  function resize(data) {
    var m = /^(\d+)x(\d+)$/.exec(data);
    if (m && term) {
      term.resize(Math.max(2, Math.min(500, Number(m[1]))), Math.max(2, Math.min(300, Number(m[2]))));
    }
  }

  // Write the records up to time t (from `next`); calls done once xterm has parsed them.
  function advance(t, done) {
    var chunk = "";
    var records = cast.records;
    while (next < records.length && records[next][0] <= t) {
      var rec = records[next];
      if (rec[1] === "o") { chunk += rec[2]; }
      else if (rec[1] === "r") { if (chunk) { term.write(chunk); chunk = ""; } resize(rec[2]); }
      else if (rec[1] === "m") { chunk += "\r\n\x1b[7m" + rec[2].replace(/[\x00-\x1f\x7f]/g, "") + "\x1b[27m\r\n"; }
      next++;
    }
    pos = t;
    showPos();
    term.write(chunk, done);
  }

  function seek(t) {
    if (!cast) { return; }
    var mine = ++generation;
    t = Math.max(0, Math.min(cast.duration, t));
    term.reset();
    term.resize(cast.width, cast.height);
    next = 0;
    advance(t, function () { if (mine === generation) { settled(); } });
  }

  function settled() {
    panel.dataset.castId = cast.id;
    panel.dataset.castT = pos.toFixed(3);
  }

  function showPos() {
    $("pl-cast-range").value = String(pos);
    $("pl-cast-time").textContent = fmt(pos) + " / " + fmt(cast.duration);
  }

  function pause() {
    if (playing !== null) { clearInterval(playing); playing = null; }
    $("pl-cast-play").textContent = "Play";
  }

  function play() {
    if (!cast) { return; }
    if (pos >= cast.duration) { seek(0); }
    $("pl-cast-play").textContent = "Pause";
    var last = performance.now();
    playing = setInterval(function () {
      var now = performance.now();
      var t = Math.min(cast.duration, pos + (now - last) / 1000 * speed);
      last = now;
      var mine = generation;
      advance(t, function () { if (mine === generation) { settled(); } });
      if (t >= cast.duration) { pause(); }
    }, TICK_MS);
  }

  function load(id, at) {
    pause();
    var mine = ++generation;
    var row = casts.filter(function (c) { return c.id === id; })[0];
    if (!row) { wanted = { id: id, t: at }; return Promise.resolve(); }
    $("pl-cast-pick").value = id;
    status("loading…");
    return fetch(row.url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
      return response.text();
    }).then(function (text) {
      if (mine !== generation) { return; }
      var parsed = parse(text);
      parsed.id = id;
      cast = parsed;
      makeTerminal(cast.width, cast.height);
      var range = $("pl-cast-range");
      range.max = String(cast.duration);
      range.disabled = false;
      var dropped = row.dropped_bytes ? " · " + row.dropped_bytes + " bytes not recorded" : "";
      status("terminal " + row.terminal + " · " + row.width + "x" + row.height + dropped);
      seek(at === undefined ? cast.duration : at);
    }).catch(function (err) { status("could not load the terminal: " + err.message); });
  }

  // When the next command of the same cast was entered (its t), or null.
  function nextCommand(ev, castId) {
    var all = window.PairlabReplay ? window.PairlabReplay.events() : [];  // sorted by seq
    var lo = 0, hi = all.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (all[mid].seq <= ev.seq) { lo = mid + 1; } else { hi = mid; }
    }
    for (var i = lo; i < all.length; i++) {
      var other = all[i], c = other.payload && other.payload.cast;
      if (other.seq > ev.seq && other.kind === "terminal.command" && c && c.id === castId &&
          typeof c.t === "number") { return c.t; }
    }
    return null;
  }

  // Follow the replay's position: a terminal command that points into a cast.
  document.addEventListener("pl:moment", function (e) {
    var ev = e.detail && e.detail.event;
    var where = ev && ev.kind === "terminal.command" && ev.payload && ev.payload.cast;
    if (!where || typeof where.id !== "string" || typeof where.t !== "number") { return; }
    var after = where.t + Math.max(0, Number(ev.payload.duration_ms) || 0) / 1000 + 0.05;
    // the screen once the command's output is drawn, but not yet the next command's keys
    var next = nextCommand(ev, where.id);
    if (next !== null && next > where.t) { after = Math.min(after, next - 0.001); }
    if (cast && cast.id === where.id) { pause(); seek(after); }
    else { load(where.id, after); }
  });

  $("pl-cast-play").addEventListener("click", function () {
    if (playing !== null) { pause(); } else { play(); }
  });
  $("pl-cast-range").addEventListener("input", function () {
    pause();
    seek(Number($("pl-cast-range").value));
  });
  $("pl-cast-speed").addEventListener("change", function () {
    speed = Number($("pl-cast-speed").value) || 1;
  });
  $("pl-cast-pick").addEventListener("change", function () { load($("pl-cast-pick").value); });

  T.api(cfg.api + "/casts").then(function (data) {
    casts = data.casts || [];
    var pick = $("pl-cast-pick");
    T.clear(pick);
    casts.forEach(function (c) {
      pick.appendChild(T.el("option", { value: c.id }, [
        "terminal " + c.terminal + " · " + (cfg.names && cfg.names[c.actor] || c.actor) +
        " · " + T.clock(c.started_at)]));
    });
    if (!casts.length) { status("No terminal was recorded."); return; }
    pick.disabled = false;
    var first = wanted || { id: casts[casts.length - 1].id };
    wanted = null;
    return load(first.id, first.t);
  }).catch(function (err) { status("could not list the terminals: " + err.message); });
})();

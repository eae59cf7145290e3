// pairlab: the replay page's "Code playback" panel. Plays a collaborative document's recorded
// updates like a video (play/pause, 1x-8x, skip idle, a slider over the updates), the text
// coloured by who typed it, from the frames API (plain text ops: no Yjs here). A replay
// position on a file.* event whose payload names a document update (doc: {id, n}) seeks the
// player there, and the player says which recorded event its position was saved as.
(function () {
  "use strict";
  var T = window.PairlabTimeline;
  var cfg = T.config();
  var $ = function (id) { return document.getElementById(id); };
  var panel = $("pb-panel");
  if (!panel) { return; }
  var PAGE = 5000, KEY_EVERY = 250, IDLE_MS = 2000, IDLE_SHOWN_MS = 400;

  var docs = [];          // from GET /docs
  var doc = null;         // the selected one
  var frames = [];        // frames[i] is update n = i + 1
  var keys = [];          // keys[k]: the state after KEY_EVERY * k updates
  var state = null;       // {n, text: {chars, who}} or {n, cells: [{id, type, chars, who}]}
  var authors = [];       // actor per author index
  var playing = false, timer = null, loading = 0;

  // ---- state: characters (code points) and who typed each ------------------------------------

  function chars(text) { return Array.from(String(text || "")); }

  function blank(base) {
    if (base.cells) {
      return { n: base.n, cells: base.cells.map(function (c) {
        var cs = chars(c.source);
        return { id: c.id, type: c.type, chars: cs, who: cs.map(function () { return -1; }) };
      }) };
    }
    var cs = chars(base.text);
    return { n: base.n, text: { chars: cs, who: cs.map(function () { return -1; }) } };
  }

  function copy(s) {
    var part = function (p) { return { chars: p.chars.slice(), who: p.who.slice() }; };
    if (s.cells) {
      return { n: s.n, cells: s.cells.map(function (c) {
        var p = part(c); p.id = c.id; p.type = c.type; return p;
      }) };
    }
    return { n: s.n, text: part(s.text) };
  }

  function authorIndex(actor) {
    var i = authors.indexOf(actor);
    if (i < 0) { authors.push(actor); i = authors.length - 1; }
    return i;
  }

  function splice(part, pos, deleted, inserted, who) {
    var cs = chars(inserted);
    Array.prototype.splice.apply(part.chars, [pos, deleted].concat(cs));
    Array.prototype.splice.apply(part.who, [pos, deleted].concat(cs.map(function () { return who; })));
  }

  function apply(s, frame) {
    var who = authorIndex(frame.actor);
    if (frame.cells) {  // cells added, removed, moved or retyped: the whole list after it
      var old = Object.create(null);
      (s.cells || []).forEach(function (c) { old[c.id] = c; });
      s.cells = frame.cells.map(function (c) {
        var cs = chars(c.source), before = old[c.id];
        var same = before && before.chars.join("") === c.source;
        return { id: c.id, type: c.type, chars: cs,
                 who: same ? before.who.slice() : cs.map(function () { return who; }) };
      });
    }
    (frame.ops || []).forEach(function (op) {
      if (s.cells) {
        var cell = s.cells.filter(function (c) { return c.id === op[0]; })[0];
        if (cell) { splice(cell, op[1], op[2], op[3], who); }
      } else {
        splice(s.text, op[0], op[1], op[2], who);
      }
    });
    s.n = frame.n;
  }

  // The state after update n: from the nearest kept state at or before it.
  function stateAt(n) {
    n = Math.max(0, Math.min(frames.length, n));
    var from = state && state.n <= n && n - state.n < KEY_EVERY ? state : keys[Math.floor(n / KEY_EVERY)];
    var s = from === state ? state : copy(from);
    while (s.n < n) { apply(s, frames[s.n]); }
    return s;
  }

  // ---- loading --------------------------------------------------------------------------------

  function loadDocs() {
    return T.api(cfg.api + "/docs").then(function (data) {
      docs = data.docs || [];
      var pick = $("pb-doc");
      T.clear(pick);
      docs.forEach(function (d) {
        var who = Object.keys(d.authors || {}).map(function (a) { return T.actorName(a, cfg.names); });
        pick.appendChild(T.el("option", { value: d.id }, [
          (d.path || d.room) + " · " + d.updates + " updates" + (who.length ? " · " + who.join(", ") : "")]));
      });
      if (!docs.length) {
        $("pb-status").textContent = "No collaborative editing was recorded in this session.";
        return null;
      }
      pick.disabled = false;
      var R = window.PairlabReplay, ev = R && R.current(), d = ev && ev.payload && ev.payload.doc;
      if (d && docs.some(function (x) { return x.id === Number(d.id); })) {
        return select(d.id, Number(d.n));
      }
      return select(docs[0].id, null);
    });
  }

  function fetchFrames(id, from, got) {
    return T.api(cfg.api + "/docs/" + id + "/frames?from=" + from + "&limit=" + PAGE).then(function (data) {
      got.push.apply(got, data.frames || []);
      if (from === 1) { got.base = data.base; }
      var last = data.last_n || 0;
      return got.length < last && (data.frames || []).length ? fetchFrames(id, got.length + 1, got) : got;
    });
  }

  // Select document id and show it after update n (null: its end).
  function select(id, n) {
    id = Number(id);
    if (doc && doc.id === id && loading === 0) { seek(n === null ? frames.length : n); return Promise.resolve(); }
    pause();
    doc = docs.filter(function (d) { return d.id === id; })[0] || null;
    if (!doc) { return Promise.resolve(); }
    $("pb-doc").value = String(id);
    var ticket = ++loading;
    panel.dataset.ready = "";
    $("pb-status").textContent = "loading " + (doc.path || doc.room) + "…";
    return fetchFrames(id, 1, []).then(function (got) {
      if (ticket !== loading) { return; }
      loading = 0;
      frames = got;
      authors = [];
      keys = [blank(got.base || { n: 0, text: "" })];
      var s = copy(keys[0]);
      frames.forEach(function (f, i) {
        apply(s, f);
        if ((i + 1) % KEY_EVERY === 0) { keys.push(copy(s)); }
      });
      state = null;
      var slider = $("pb-slider");
      slider.max = String(frames.length);
      slider.disabled = !frames.length;
      $("pb-capped").hidden = !doc.capped_at;
      renderLegend();
      seek(n === null ? frames.length : n);
      panel.dataset.ready = "1";
    }).catch(function (err) {
      loading = 0;
      $("pb-status").textContent = "could not load: " + err.message;
    });
  }

  // ---- showing ----------------------------------------------------------------------------------

  function whoClass(i) {
    if (i < 0) { return "pb-who-base"; }
    return authors[i] === "system" ? "pb-who-system" : "pb-who-" + (i % 8);
  }

  function runs(part) {
    var out = [], start = 0;
    for (var i = 1; i <= part.chars.length; i++) {
      if (i === part.chars.length || part.who[i] !== part.who[start]) {
        out.push(T.el("span", { class: whoClass(part.who[start]), data: { actor: authors[part.who[start]] || "" } },
          [part.chars.slice(start, i).join("")]));
        start = i;
      }
    }
    return out;
  }

  function render() {
    var box = $("pb-text");
    T.clear(box);
    if (state.cells) {
      state.cells.forEach(function (c) {
        box.appendChild(T.el("div", { class: "pb-cell pb-cell-" + c.type, data: { cell: c.id } }, [
          T.el("span", { class: "pl-muted pb-celltype" }, [c.type]),
          T.el("pre", { class: "pb-code" }, runs(c))]));
      });
    } else {
      box.appendChild(T.el("pre", { class: "pb-code" }, runs(state.text)));
    }
  }

  function renderLegend() {
    var box = $("pb-legend");
    T.clear(box);
    // Whoever changed what is shown: an update that changed nothing of it (a client's own
    // bookkeeping when someone only opened the document) names no author.
    var seen = Object.create(null);
    frames.forEach(function (f) { if ((f.ops && f.ops.length) || f.cells) { seen[f.actor] = true; } });
    authors.forEach(function (a, i) {
      if (!seen[a]) { return; }
      box.appendChild(T.el("li", { class: whoClass(i) }, [
        a === "system" ? "loaded from disk (system)" : T.actorName(a, cfg.names)]));
    });
  }

  // The recorded file.* event that saved this document at or before the player's position.
  function savedEvent() {
    var R = window.PairlabReplay, found = null;
    if (!R || !doc || !state) { return null; }
    R.events().forEach(function (ev) {
      var d = ev.payload && ev.payload.doc;
      if (d && Number(d.id) === doc.id && Number(d.n) <= state.n &&
          (!found || Number(d.n) >= Number(found.payload.doc.n))) { found = ev; }
    });
    return found;
  }

  function seek(n) {
    state = stateAt(n);
    $("pb-slider").value = String(state.n);
    render();
    var f = frames[state.n - 1];
    $("pb-pos").textContent = "update " + state.n + " of " + frames.length +
      (f ? " · " + T.clock(f.at) + " · " + T.actorName(f.actor, cfg.names) : "");
    var saved = savedEvent(), go = $("pb-event");
    go.hidden = !saved;
    panel.dataset.n = String(state.n);
    panel.dataset.event = saved ? String(saved.seq) : "";
    if (saved) {
      go.textContent = (Number(saved.payload.doc.n) === state.n ? "saved as " : "last saved as ") +
        "#" + saved.seq + " " + saved.kind;
    }
    $("pb-status").textContent = doc.path || doc.room;
  }

  // ---- playing ----------------------------------------------------------------------------------

  function delay(i) {  // ms between update i and i + 1 (0-based), at the chosen speed
    var gap = Math.max(0, Date.parse(frames[i + 1].at) - Date.parse(frames[i].at));
    if ($("pb-skip").checked && gap > IDLE_MS) { gap = IDLE_SHOWN_MS; }
    return gap / Number($("pb-speed").value || 1);
  }

  function tick() {
    if (!playing) { return; }
    if (state.n >= frames.length) { pause(); return; }
    seek(state.n + 1);
    if (state.n >= frames.length) { pause(); return; }
    timer = setTimeout(tick, Math.min(delay(state.n - 1), 60000));
  }

  function play() {
    if (!frames.length) { return; }
    if (state.n >= frames.length) { seek(0); }
    playing = true;
    $("pb-play").textContent = "Pause";
    $("pb-play").setAttribute("aria-pressed", "true");
    tick();
  }

  function pause() {
    playing = false;
    clearTimeout(timer);
    $("pb-play").textContent = "Play";
    $("pb-play").setAttribute("aria-pressed", "false");
  }

  $("pb-play").addEventListener("click", function () { if (playing) { pause(); } else { play(); } });
  $("pb-slider").addEventListener("input", function (e) { pause(); seek(Number(e.target.value)); });
  $("pb-doc").addEventListener("change", function (e) { select(e.target.value, null); });
  $("pb-event").addEventListener("click", function () {
    var saved = savedEvent();
    if (saved && window.PairlabReplay) { window.PairlabReplay.go(saved.seq); }
  });

  // The replay moved: an event that names an update of a document seeks the player there.
  document.addEventListener("pl:moment", function (e) {
    var ev = e.detail && e.detail.event, d = ev && ev.payload && ev.payload.doc;
    if (!d || !docs.some(function (x) { return x.id === Number(d.id); })) { return; }
    if (playing) { return; }
    select(d.id, Number(d.n));
  });

  loadDocs().catch(function (err) { $("pb-status").textContent = "could not load: " + err.message; });
})();

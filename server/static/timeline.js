// pairlab: shared rendering for the observation and replay pages.
//
// Everything in an event was written by the candidate or comes from their workspace, so it is
// only ever inserted with textContent (never innerHTML), after terminal escape sequences and
// control characters are removed. Candidate HTML outputs are never rendered.
(function () {
  "use strict";

  // ANSI CSI, OSC (BEL or ST terminated, or cut off), DCS/SOS/PM/APC strings, 8-bit forms,
  // two-character escapes, and a lone ESC at the end (mirrors workspaces/recording/excerpt.py).
  var SEQUENCES = new RegExp([
    "\\x1b\\][^\\x07\\x1b\\x9c]*(?:\\x07|\\x1b\\\\|\\x9c)?",
    "\\x9d[^\\x07\\x1b\\x9c]*(?:\\x07|\\x1b\\\\|\\x9c)?",
    "\\x1b[PX^_][\\s\\S]*?(?:\\x1b\\\\|\\x07|\\x9c|$)",
    "\\x1b\\[[0-?]*[ -/]*[@-~]?",
    "\\x9b[0-?]*[ -/]*[@-~]?",
    "\\x1b[ -/]*[0-~]",
    "\\x1b$"
  ].join("|"), "g");
  var CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
  var BIDI = /[\u202a-\u202e\u2066-\u2069]/g;

  function hex(ch) { return "[U+" + ch.charCodeAt(0).toString(16).toUpperCase() + "]"; }

  // Plain text as a terminal would roughly show it: escapes gone, "\r" overwrites applied,
  // bidirectional overrides made visible (they could disguise code).
  var NEEDS_CLEANING = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

  function clean(value) {
    if (value === null || value === undefined) { return ""; }
    var text = String(value);
    if (!NEEDS_CLEANING.test(text)) { return text; }
    text = text.replace(SEQUENCES, "").replace(/\r\n/g, "\n");
    if (text.indexOf("\r") >= 0) {
      text = text.split("\n").map(function (line) {
        var parts = line.split("\r").filter(function (p) { return p; });
        return parts.length ? parts[parts.length - 1] : "";
      }).join("\n");
    }
    return text.replace(CONTROLS, "").replace(BIDI, hex);
  }

  // el("li", {class: "x", data: {seq: 3}}, ["text", child]): strings become text nodes.
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var key;
    attrs = attrs || {};
    // Code and output blocks scroll when long: focusable, so a keyboard can scroll them too.
    if (tag === "pre") { node.setAttribute("tabindex", "0"); }
    for (key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] === undefined) { continue; }
      if (key === "class") { node.className = attrs[key]; }
      else if (key === "data") {
        Object.keys(attrs.data).forEach(function (k) { node.dataset[k] = String(attrs.data[k]); });
      } else if (key === "text") { node.textContent = clean(attrs.text); }
      else { node.setAttribute(key, String(attrs[key])); }
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === "") { return; }
      node.appendChild(typeof child === "object" ? child : document.createTextNode(clean(child)));
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function config() {
    var block = document.getElementById("pl-config");
    return JSON.parse(block.textContent);
  }

  function api(path, options) {
    options = options || {};
    var init = { credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (options.body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = options.csrf || "";
      init.body = JSON.stringify(options.body);
    }
    return fetch(path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          // The API's refusal is {"error": {"code", "message"}}: its sentence, as the server
          // wrote it; the status only when there is none.
          var error = data && data.error;
          var message = error && typeof error === "object" ? error.message : data && data.message;
          throw new Error(message || "The server answered " + response.status +
                          (response.statusText ? " " + response.statusText : "") + ".");
        }
        return data;
      });
    });
  }

  // ---- formatting ------------------------------------------------------------------------

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return String(iso || ""); }
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function span(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s);
  }

  function durationMs(p) {
    if (typeof p.duration_ms === "number") { return p.duration_ms; }
    if (typeof p.duration_s === "number") { return p.duration_s * 1000; }
    return null;
  }

  function firstLine(text, max) {
    var head = clean(String(text === null || text === undefined ? "" : text).slice(0, 4000));
    var line = head.split("\n").filter(function (l) { return l.trim(); })[0] || "";
    max = max || 100;
    return line.length > max ? line.slice(0, max) + "…" : line;
  }

  function actorName(actor, names) {
    var own = names && Object.prototype.hasOwnProperty.call(names, actor);
    return own ? String(names[actor]) : String(actor || "");
  }

  // ---- tests ----------------------------------------------------------------------------

  function testCounts(p) {
    var passed = Number(p.passed || 0), failed = Number(p.failed || 0);
    var errors = Number(p.errors || p.error_count || 0);
    return { passed: passed, failed: failed, errors: errors };
  }

  // "green", "red", or "skipped" (a run that did not happen or could not run).
  function testState(p) {
    if (p.status === "skipped" || (p.status === "error" && !p.passed && !p.failed)) { return "skipped"; }
    if (p.ok === true || p.status === "passed" || p.outcome === "passed") { return "green"; }
    if (p.ok === false || p.status === "failed" || p.outcome === "failed") { return "red"; }
    var c = testCounts(p);
    return c.passed > 0 && c.failed === 0 && c.errors === 0 ? "green" : "red";
  }

  function testsGreen(p) { return testState(p) === "green"; }

  function isTestRun(ev) { return ev.kind === "tests.run" || ev.kind === "checks.run"; }

  // ---- one line per event -----------------------------------------------------------------

  // Why a cell's recorded code may not be what ran (kernel_messages.py sets these).
  var CELL_FLAGS = { transformed: "ran transformed code", echo_differs: "kernel echoed other code",
                     unreported: "kernel did not report what ran" };

  function cellFlags(ev) {
    var p = ev.payload || {}, found = [];
    if (ev.kind !== "cell.executed") { return found; }
    if (p.origin) { found.push("run " + String(p.origin)); }
    (Array.isArray(p.flags) ? p.flags : []).forEach(function (f) {
      found.push(CELL_FLAGS[f] || String(f));
    });
    return found;
  }

  function flagNode(ev, tag) {
    var found = cellFlags(ev);
    return found.length ? el(tag, { class: "pl-flags" }, ["\u26a0 " + found.join(" · ")]) : null;
  }

  function summary(ev) {
    var p = ev.payload || {};
    switch (ev.kind) {
      case "cell.executed": {
        var ms = durationMs(p), err = p.error || {};
        var head = "[" + (p.execution_count === null || p.execution_count === undefined ? " " :
          p.execution_count) + "] " + (p.status || "") + (ms === null ? "" : " · " + span(ms / 1000));
        var tail = err.ename || p.ename ? " · " + (err.ename || p.ename) + ": " +
          firstLine(err.evalue || p.evalue || "", 80) : "";
        return head + tail + " · " + firstLine(p.code, 80);
      }
      case "terminal.command": return "$ " + firstLine(p.line || p.command || "", 120) + shellFlags(p);
      case "terminal.output": return "output of $ " + firstLine(p.line || "", 100);
      case "file.renamed": return (p.old_path || "?") + " → " + ev.path;
      case "file.created": case "file.changed": case "file.deleted":
        return ev.path + (typeof p.size === "number" ? " (" + p.size + " bytes)" : "");
      case "tests.run": case "checks.run": {
        var c = testCounts(p);
        var state = testState(p);
        if (state === "skipped") { return "not run: " + firstLine(p.reason || p.status, 120); }
        return state + ": " + c.passed + " passed, " + c.failed +
          " failed" + (c.errors ? ", " + c.errors + " errors" : "") +
          (p.note ? " · " + firstLine(p.note, 160) : "");
      }
      case "note": case "hint":
        return firstLine(p.text || "", 160) +
          (p.at_seq !== undefined && p.at_seq !== null ? " (at #" + p.at_seq + ")" : "");
      case "time.extended": return "+" + (p.minutes || "?") + " min" + (p.by ? " by " + p.by : "");
      case "snapshot": return String(p.commit || p.commit_sha || "").slice(0, 10);
      case "kernel.failed": case "terminal.failed": case "workspace.failed":
        return (ev.path ? ev.path + ": " : "") + firstLine(p.reason || "no reason given", 160);
      default: return ev.path || firstLine(p.why || p.reason || p.detail || "", 120);
    }
  }

  // Payload fields shown in full (code and outputs as preformatted text), the rest as a list.
  var BLOCKS = ["code", "code_ran", "code_echoed", "line", "command", "output", "text",
    "traceback", "late_output"];
  var SKIP = { requested_at: 1, entered_at: 1 };

  function details(ev) {
    var p = ev.payload || {};
    var box = el("div", { class: "pl-details" });
    var err = p.error && typeof p.error === "object" ? p.error : null;
    BLOCKS.forEach(function (key) {
      if (typeof p[key] === "string" && p[key]) {
        box.appendChild(el("div", { class: "pl-block pl-" + key }, [
          el("span", { class: "pl-label" }, [key]), el("pre", { text: p[key] })]));
      }
    });
    if (err) {
      box.appendChild(el("div", { class: "pl-block pl-error" }, [
        el("span", { class: "pl-label" }, ["error"]),
        el("pre", { text: (err.ename || "") + ": " + (err.evalue || "") +
          (err.traceback ? "\n" + err.traceback : "") })]));
    }
    if (Array.isArray(p.checks) && p.checks.length) {  // per-check results of a test run
      box.appendChild(el("ul", { class: "pl-checks" }, p.checks.map(function (c) {
        c = c && typeof c === "object" ? c : { name: String(c) };
        return el("li", { class: "pl-check-" + (c.status === "passed" ? "ok" : "bad") }, [
          el("strong", {}, [String(c.status || "")]), " ", String(c.name || ""),
          typeof c.output === "string" && c.output ? el("pre", { text: c.output }) : null]);
      })));
    }
    var dl = el("dl", { class: "pl-fields" });
    Object.keys(p).sort().forEach(function (key) {
      if (BLOCKS.indexOf(key) >= 0 || key === "error" || SKIP[key]) { return; }
      if (key === "checks" && Array.isArray(p.checks)) { return; }
      var value = p[key];
      var text = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
      dl.appendChild(el("dt", {}, [key]));
      dl.appendChild(el("dd", {}, [text.length > 400 ? text.slice(0, 400) + "…" : text]));
    });
    if (dl.firstChild) { box.appendChild(dl); }
    return box;
  }

  // A file change with several authors (a shared document's save): all of them, most first;
  // a change pairlab could only guess the author of says so.
  function authorsText(ev, names) {
    var p = ev.payload || {}, a = p.authors, text = "";
    if (a && typeof a === "object" && !Array.isArray(a) && Object.keys(a).length > 1) {
      var weight = function (k) { var c = a[k] || {}; return Number(c.ins || 0) + Number(c.del || 0); };
      text = " · by " + Object.keys(a).sort(function (x, y) { return weight(y) - weight(x); })
        .map(function (k) { return actorName(k, names); }).join(", ");
    }
    return text + (p.mixed === true ? " · with text written outside the editor" : "") +
      (p.inferred === true ? " · author inferred" : "");
  }

  function kindClass(kind) { return "pl-kind-" + String(kind).replace(/[^a-z0-9]+/gi, "-"); }

  // <li data-seq> with time, actor, kind, summary, and the payload in a <details>.
  // What the shell said about a terminal command (workspaces/recording/terminal_lines.py).
  function shellFlags(p) {
    if (p.reports_conflict) {
      return " · the shell's reports on this terminal contradict each other (a program printed fake ones): not confirmed";
    }
    if (p.keys_differ) { return " · bash ran this; the keys read: " + firstLine(p.keys_line || "", 80); }
    if (p.keys_missing) { return " · reported by bash (typed while the screen looked full-screen)"; }
    if (p.unverified) { return " · not confirmed by the shell"; }
    return "";
  }

  function eventItem(ev, names, open) {
    var p = ev.payload || {};
    var bad = (ev.kind === "cell.executed" && (p.status === "error" || p.error)) ||
      (isTestRun(ev) && (testState(p) === "red" || p.status === "error")) ||
      /crashed|died|failed/.test(ev.kind);
    var flagged = cellFlags(ev).length > 0;
    var li = el("li", { class: "pl-event " + kindClass(ev.kind) + (bad ? " pl-bad" : "") +
      (flagged ? " pl-flagged" : ""),
      data: { seq: ev.seq, kind: ev.kind } });
    var summaryNode = el("summary", {}, [
      el("span", { class: "pl-seq" }, ["#" + ev.seq]), " ",
      el("time", { datetime: ev.at }, [clock(ev.at)]), " ",
      el("span", { class: "pl-actor" }, [actorName(ev.actor, names)]), " ",
      el("span", { class: "pl-kind" }, [ev.kind]), " ",
      flagNode(ev, "span"), flagged ? " " : null,
      el("span", { class: "pl-summary" }, [summary(ev) + authorsText(ev, names)])
    ]);
    var box = el("details", open ? { open: "" } : {}, [summaryNode]);
    box.addEventListener("toggle", function fill() {
      if (box.open && box.childNodes.length === 1) { box.appendChild(details(ev)); }
    });
    if (open) { box.appendChild(details(ev)); }
    li.appendChild(box);
    return li;
  }

  // A cell run as a card: code, then output or error.
  function cellCard(ev, names) {
    var p = ev.payload || {}, err = p.error || {};
    var ms = durationMs(p);
    var failed = p.status === "error" || !!p.error;
    var card = el("article", { class: "pl-cell" + (failed ? " pl-bad" : ""),
      data: { seq: ev.seq } }, [
      el("header", {}, [
        el("span", { class: "pl-seq" }, ["#" + ev.seq]), " ",
        el("time", { datetime: ev.at }, [clock(ev.at)]), " ",
        el("span", {}, [(ev.path || "") + " [" + (p.execution_count === null ||
          p.execution_count === undefined ? " " : p.execution_count) + "] " + (p.status || "") +
          (ms === null ? "" : " · " + span(ms / 1000)) + " · " + actorName(ev.actor, names)])
      ]),
      flagNode(ev, "p"),
      el("pre", { class: "pl-code", text: p.code || "" })
    ]);
    if (typeof p.code_ran === "string") {
      card.appendChild(el("pre", { class: "pl-code pl-code-ran", text: p.code_ran }));
    }
    if (typeof p.code_echoed === "string") {
      card.appendChild(el("pre", { class: "pl-code pl-code-echoed", text: p.code_echoed }));
    }
    if (p.output) { card.appendChild(el("pre", { class: "pl-output", text: p.output })); }
    if (failed && (err.ename || p.ename)) {
      card.appendChild(el("pre", { class: "pl-error", text: (err.ename || p.ename) + ": " +
        (err.evalue || p.evalue || "") + (err.traceback ? "\n" + err.traceback : "") }));
    }
    if (p.mimetypes && p.mimetypes.some(function (m) { return m !== "text/plain"; })) {
      card.appendChild(el("p", { class: "pl-muted" }, [
        "Rich output (" + p.mimetypes.join(", ") + ") is not rendered here."]));
    }
    return card;
  }

  // Test runs as a strip of green/red boxes, oldest first, with the latest spelled out.
  function renderTests(container, runs) {
    clear(container);
    if (!runs.length) { container.appendChild(el("p", { class: "pl-muted" }, ["No test runs yet."])); return; }
    var strip = el("ol", { class: "pl-teststrip" });
    runs.forEach(function (ev) {
      var p = ev.payload || {}, c = testCounts(p), state = testState(p);
      strip.appendChild(el("li", { class: "pl-" + state, title: clock(ev.at) + " " + ev.kind +
        ": " + summary(ev), data: { seq: ev.seq } }, [state === "skipped" ? "–" :
        String(c.passed) + "/" + String(c.passed + c.failed + c.errors)]));
    });
    var last = runs[runs.length - 1];
    container.appendChild(el("p", { class: "pl-testlast" }, [
      "Latest (" + clock(last.at) + ", " + last.kind + "): " + summary(last)]));
    container.appendChild(strip);
  }

  // A unified diff, one line per element, coloured by its first character.
  function renderDiff(container, text) {
    clear(container);
    if (!text) { container.appendChild(el("p", { class: "pl-muted" }, ["No changes."])); return; }
    var pre = el("pre", { class: "pl-diff" });
    clean(text).split("\n").forEach(function (line) {
      var cls = /^(\+\+\+|---|diff |index )/.test(line) ? "pl-dh" : line[0] === "+" ? "pl-add" :
        line[0] === "-" ? "pl-del" : line.slice(0, 2) === "@@" ? "pl-hunk" : "";
      pre.appendChild(el("span", { class: cls }, [line + "\n"]));
    });
    container.appendChild(pre);
  }

  // The file tree of a /tree answer: one button per file, changed files marked (from each
  // file's "status", or a "changed" list of paths), deleted files listed struck through.
  function renderTree(container, data, onPick, selected) {
    clear(container);
    var marks = Object.create(null);
    (data.changed || []).forEach(function (p) { marks[typeof p === "string" ? p : p.path] = "changed"; });
    var files = data.files || [];
    var list = el("ul", { class: "pl-tree" });
    files.forEach(function (f) {
      var status = f.status && f.status !== "unchanged" ? f.status : marks[f.path] || "";
      var button = el("button", { type: "button", class: "pl-file" +
        (status ? " pl-changed" : "") + (f.path === selected ? " pl-selected" : ""),
        data: { path: f.path } }, [f.path]);
      if (onPick) { button.addEventListener("click", function () { onPick(f.path); }); }
      list.appendChild(el("li", {}, [button, " ", el("span", { class: "pl-muted" }, [
        (status ? status + " · " : "") + (f.large ? "large · " : "") + f.size + " B"])]));
    });
    (data.deleted || []).forEach(function (path) {
      list.appendChild(el("li", { class: "pl-deleted" }, [el("del", {}, [path]), " ",
        el("span", { class: "pl-muted" }, ["deleted"])]));
    });
    container.appendChild(list);
    if (!files.length) { container.appendChild(el("p", { class: "pl-muted" }, ["No files."])); }
  }

  // A /file answer: text as text; binary, large and missing files described, never shown.
  function renderFile(container, data) {
    clear(container);
    container.appendChild(el("h3", {}, [data.path || ""]));
    var size = data.size === null || data.size === undefined ? "?" : data.size;
    var hash = data.sha256 ? ", sha256 " + String(data.sha256).slice(0, 16) + "…" : "";
    if (data.kind === "missing" || data.exists === false) {
      container.appendChild(el("p", { class: "pl-muted" }, ["Not present at this moment."]));
    } else if (typeof data.text === "string" && (!data.kind || data.kind === "text")) {
      container.appendChild(el("pre", { class: "pl-filetext", text: data.text }));
    } else {
      container.appendChild(el("p", { class: "pl-muted" }, [
        (data.kind === "large" ? "Large file recorded by size and hash only: " :
          "Binary file, not shown: ") + size + " bytes" + hash + "."]));
    }
  }

  // ---- ML-work signals ----------------------------------------------------------------------

  // Markers computed from the events: first run, first green test, kernel restarts, cells run
  // out of order (execution counts going back within one notebook and kernel, or a cell index
  // going back when the payload has one), long-running cells (> 30 s).
  function signals(events) {
    var found = [], firstRun = false, firstGreen = false, last = {};
    events.forEach(function (ev) {
      var p = ev.payload || {};
      if (ev.kind === "cell.executed") {
        if (!firstRun) { firstRun = true; found.push({ seq: ev.seq, kind: "first-run", label: "First run" }); }
        if (cellFlags(ev).length) {
          found.push({ seq: ev.seq, kind: "code-flag", label: "Cell " + cellFlags(ev).join(", ") });
        }
        var ms = durationMs(p);
        if (ms !== null && ms > 30000) {
          found.push({ seq: ev.seq, kind: "long-cell", label: "Long cell (" + span(ms / 1000) + ")" });
        }
        // Position of the cell: its index if the payload has one, else the order in which its
        // cell_id was first run in this notebook (so re-running an earlier cell counts).
        var key = (ev.path || "") + "\u0000" + (p.kernel_id || "");
        var prev = last[key] || { ids: Object.create(null), next: 0 };
        var index = typeof p.cell_index === "number" ? p.cell_index : null;
        if (index === null && p.cell_id) {
          if (!(p.cell_id in prev.ids)) { prev.ids[p.cell_id] = prev.next++; }
          index = prev.ids[p.cell_id];
        }
        var count = typeof p.execution_count === "number" ? p.execution_count : null;
        if (count === 1 && prev.count > 1) {
          found.push({ seq: ev.seq, kind: "kernel-restart", label: "Kernel restart (counts reset)" });
          prev = { ids: Object.create(null), next: 0 };
          if (p.cell_id) { prev.ids[p.cell_id] = prev.next++; index = 0; }
        } else if ((index !== null && typeof prev.index === "number" && index < prev.index) ||
            (count !== null && typeof prev.count === "number" && count <= prev.count)) {
          found.push({ seq: ev.seq, kind: "out-of-order", label: "Out of order" +
            (ev.path ? " in " + ev.path : "") });
        }
        prev.index = index;
        prev.count = count;
        last[key] = prev;
      } else if (ev.kind === "kernel.restarted") {
        found.push({ seq: ev.seq, kind: "kernel-restart", label: "Kernel restart" });
        last = {};
      } else if (ev.kind === "kernel.started") {
        last = {};
      } else if (ev.kind === "kernel.died") {
        found.push({ seq: ev.seq, kind: "kernel-restart", label: "Kernel died" });
        last = {};
      } else if (/\.failed$/.test(ev.kind)) {
        found.push({ seq: ev.seq, kind: "failure", label: ev.kind === "kernel.failed" ?
          "Kernel could not start" : ev.kind === "terminal.failed" ? "Terminal could not start" :
          "Workspace could not start" });
      } else if (isTestRun(ev) && p.status === "error" && testState(p) === "skipped") {
        found.push({ seq: ev.seq, kind: "failure", label: (ev.kind === "checks.run" ?
          "Hidden checks" : "Tests") + " could not run" });
      } else if (ev.kind === "tests.run" && !firstGreen && testsGreen(p)) {
        firstGreen = true;
        found.push({ seq: ev.seq, kind: "first-green", label: "First green tests" });
      }
    });
    return found;
  }

  window.PairlabTimeline = {
    clean: clean, el: el, clear: clear, config: config, api: api, clock: clock, span: span,
    summary: summary, eventItem: eventItem, cellCard: cellCard, renderTests: renderTests,
    renderDiff: renderDiff, renderTree: renderTree, renderFile: renderFile, signals: signals,
    isTestRun: isTestRun, testsGreen: testsGreen, testState: testState, actorName: actorName
  };
})();

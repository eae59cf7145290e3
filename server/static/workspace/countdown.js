// pairlab: the countdown badge on a workspace's pages, and the end of the interview there
// (served by pairlab, same origin; the proxy puts it in the page's <head>, before JupyterLab).
//
// It asks pairlab for the session every 15 s, every 5 s in the last two minutes, and whenever
// the tab becomes visible again. It also watches JupyterLab's own requests: once the session
// has ended, pairlab answers every one of them "410, X-Pairlab-Session: ended", so the end
// shows within a request or two of it (a kernel's or document's reconnect, a save).
//
// At the end the page turns read-only: a banner says so (to the candidate: thank you, your
// work is saved), JupyterLab's own elements become inert under a veil, keys and pastes no
// longer reach its editors, and polling stops. A request answered "ended" is left unsettled
// instead of failing: nothing can be saved any more (the workspace is closed and its files
// were kept as they were saved), and JupyterLab would cover the banner with a "File Save
// Error ... 410" dialog about a save the candidate cannot do anything about.
//
// It is the one clock of the page: pairlab's side panel (the JupyterLab extension in
// workspaces/labextension) shows the time left it publishes, as window.pairlab (a snapshot) and
// a "pairlab:session" event on document at every change, and does not keep a second one.
//
// Written by hand, not in the extension: it must run before JupyterLab (to see its requests,
// WebSockets included) and on every page of the workspace, even when an extension fails.
(function () {
  "use strict";
  var script = document.currentScript;
  var sessionId = script && script.getAttribute("data-session");
  if (!sessionId) { return; }
  var person = script.getAttribute("data-person") || "candidate";
  var sessionPage = script.getAttribute("data-session-page");
  var own = /^\/w\/[^/]+\//.exec(window.location.pathname);
  var labUrl = own ? own[0] + "lab" : null;
  var POLL_MS = 15000, LAST_MINUTES_POLL_MS = 5000, LAST_MINUTES_S = 120;
  var ENDED_HEADER = "X-Pairlab-Session";
  var secondsLeft = null;
  var endsAt = null;
  var ended = false;
  var pollTimer = null;
  var badge = null, notice = null, veil = null;

  // ---- JupyterLab's requests: installed before JupyterLab reads window.fetch -------------
  var realFetch = window.fetch.bind(window);
  function isWorkspaceRequest(input) {
    var url = new URL(typeof input === "string" ? input : (input && input.url) || "",
                      window.location.href);
    return url.origin === window.location.origin && own !== null &&
      url.pathname.indexOf(own[0]) === 0;
  }
  window.fetch = function (input, init) {
    if (!isWorkspaceRequest(input)) { return realFetch(input, init); }
    if (ended) { return new Promise(function () { /* the session is over: never settles */ }); }
    return realFetch(input, init).then(function (response) {
      if (response.headers.get(ENDED_HEADER) !== "ended") { return response; }
      end();
      return new Promise(function () { /* as above: no error dialog over the banner */ });
    });
  };

  // XMLHttpRequest: refused once ended, and an "ended" answer ends the page too.
  var RealXHR = window.XMLHttpRequest;
  var realOpen = RealXHR.prototype.open, realSend = RealXHR.prototype.send;
  RealXHR.prototype.open = function (method, url) {
    this._pairlabOwn = isWorkspaceRequest(String(url));
    if (this._pairlabOwn) {
      this.addEventListener("readystatechange", function () {
        if (this.readyState >= 2 && this.getResponseHeader(ENDED_HEADER) === "ended") { end(); }
      });
    }
    return realOpen.apply(this, arguments);
  };
  RealXHR.prototype.send = function () {
    if (ended && this._pairlabOwn) { return; /* never settles, as fetch above */ }
    return realSend.apply(this, arguments);
  };

  // WebSockets (kernels, terminals, collaborative documents): once ended, a new one to the
  // workspace never opens (JupyterLab's reconnects would fail with errors over the banner);
  // a workspace socket that closes makes pairlab asked at once whether the interview ended.
  var RealWebSocket = window.WebSocket;
  function isWorkspaceSocket(url) {
    var parsed = new URL(String(url), window.location.href);
    return parsed.host === window.location.host && own !== null &&
      parsed.pathname.indexOf(own[0]) === 0;
  }
  // A socket that stays "connecting" for ever: still a WebSocket to whoever checks, its own
  // fields shadowing the prototype's (whose getters need a real socket).
  function dormantSocket(url) {
    var events = new EventTarget();
    var socket = Object.create(RealWebSocket.prototype);
    var fields = {
      url: String(url), readyState: 0, protocol: "", extensions: "", bufferedAmount: 0,
      binaryType: "blob", onopen: null, onclose: null, onerror: null, onmessage: null,
      send: function () {}, close: function () {},
      addEventListener: events.addEventListener.bind(events),
      removeEventListener: events.removeEventListener.bind(events),
      dispatchEvent: events.dispatchEvent.bind(events)
    };
    Object.keys(fields).forEach(function (name) {
      Object.defineProperty(socket, name, { value: fields[name], writable: true });
    });
    return socket;
  }
  function PairlabWebSocket(url, protocols) {
    var mine = isWorkspaceSocket(url);
    if (ended && mine) { return dormantSocket(url); }
    var socket = protocols === undefined ? new RealWebSocket(url)
      : new RealWebSocket(url, protocols);
    if (mine) { socket.addEventListener("close", function () { if (!ended) { poll(); } }); }
    return socket;
  }
  PairlabWebSocket.prototype = RealWebSocket.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (name) {
    PairlabWebSocket[name] = RealWebSocket[name];
  });
  window.WebSocket = PairlabWebSocket;

  // ---- what the side panel reads ---------------------------------------------------------
  function publish() {
    var snapshot = Object.freeze({
      sessionId: sessionId, person: person, secondsLeft: secondsLeft, endsAt: endsAt,
      ended: ended
    });
    window.pairlab = snapshot;
    document.dispatchEvent(new CustomEvent("pairlab:session", { detail: snapshot }));
  }
  publish();

  // ---- the badge and the banner --------------------------------------------------------
  function build() {
    badge = document.createElement("div");
    badge.id = "pairlab-countdown";
    badge.setAttribute("role", "timer");
    badge.style.cssText = "position:fixed;top:4px;right:120px;z-index:2147483001;" +
      "padding:2px 10px;border-radius:10px;background:#1d2330;color:#fff;" +
      "font:12px system-ui,sans-serif;";
    veil = document.createElement("div");
    veil.id = "pairlab-veil";
    veil.hidden = true;
    veil.style.cssText = "position:fixed;inset:0;z-index:2147483000;" +
      "background:rgba(247,248,250,.55);cursor:not-allowed;";
    notice = document.createElement("div");
    notice.id = "pairlab-ended";
    notice.setAttribute("role", "alert");
    notice.hidden = true;
    notice.style.cssText = "position:fixed;top:32px;left:50%;transform:translateX(-50%);" +
      "z-index:2147483002;max-width:36rem;padding:14px 20px;border-radius:6px;" +
      "background:#1d2330;color:#fff;font:15px/1.45 system-ui,sans-serif;" +
      "box-shadow:0 2px 12px rgba(0,0,0,.3);text-align:center;";
    var text = document.createElement("p");
    text.style.margin = "0 0 8px";
    // The candidate is thanked and may close the tab; an interviewer is told where the
    // interview is now (its page in pairlab), not thanked for their time.
    text.textContent = person === "candidate"
      ? "The interview has ended — thank you; your work is saved. The workspace is now " +
        "read-only, and you can close this tab."
      : "The interview has ended: the workspace is closed and read-only. Its recording " +
        "is on the session's page.";
    notice.appendChild(text);
    var away = person === "candidate" ? labUrl : (sessionPage || labUrl);
    if (away) {
      var leave = document.createElement("a");
      leave.id = "pairlab-leave";
      leave.href = away;
      leave.textContent = person === "candidate" ? "Leave the workspace"
        : "Go to the session's page";
      leave.style.cssText = "color:#fff;font-weight:600;";
      notice.appendChild(leave);
    }
  }

  // While ended, keys, pastes and drops reach nothing but the banner (its link).
  function refuse(event) {
    if (!ended || (notice && notice.contains(event.target))) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
  }
  ["keydown", "keypress", "keyup", "beforeinput", "paste", "drop", "cut"].forEach(
    function (kind) { window.addEventListener(kind, refuse, true); });

  function lock() {
    var children = document.body ? document.body.children : [];
    for (var i = 0; i < children.length; i++) {
      var element = children[i];
      if (element !== badge && element !== notice && element !== veil) {
        element.setAttribute("inert", "");
      }
    }
    if (document.activeElement && document.activeElement.blur) { document.activeElement.blur(); }
  }

  function render() {
    publish();
    if (!badge) { return; }
    if (ended) {
      badge.textContent = "Interview ended: the workspace is read-only";
      badge.style.background = "#1d2330";
      notice.hidden = false;
      veil.hidden = false;
      lock();
      return;
    }
    if (secondsLeft === null) { badge.textContent = "…"; return; }
    var m = Math.floor(secondsLeft / 60), s = secondsLeft % 60;
    badge.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    badge.style.background = secondsLeft < 300 ? "#b35c00" : "#1d2330";
  }

  function end() {
    if (ended) { return; }
    ended = true;
    clearTimeout(pollTimer);
    render();
  }

  // ---- polling -------------------------------------------------------------------------
  function schedule() {
    clearTimeout(pollTimer);
    if (ended) { return; }
    var soon = secondsLeft !== null && secondsLeft <= LAST_MINUTES_S;
    pollTimer = setTimeout(poll, soon ? LAST_MINUTES_POLL_MS : POLL_MS);
  }
  function poll() {
    clearTimeout(pollTimer);
    realFetch("/api/v1/sessions/" + encodeURIComponent(sessionId), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        secondsLeft = data.session.seconds_left;
        endsAt = data.session.ends_at;
        if (data.session.state === "ended" || data.session.state === "failed") { end(); }
        render();
      })
      .catch(function () { /* keep the last value */ })
      .then(schedule);
  }
  function tick() { if (secondsLeft !== null && secondsLeft > 0) { secondsLeft -= 1; } render(); }
  function mount() {
    build();
    document.body.appendChild(veil);
    document.body.appendChild(badge);
    document.body.appendChild(notice);
    // JupyterLab adds to the page as it goes (its shell, dialogs): whatever comes after the
    // end is inert too.
    new MutationObserver(function () { if (ended) { lock(); } })
      .observe(document.body, { childList: true });
    render();
    poll();
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !ended) { poll(); }
  });
  setInterval(tick, 1000);
})();

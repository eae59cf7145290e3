// pairlab: the replay page of a session that is not over yet does not pretend to be final.
//
// Once replay.js has loaded the events (it fires "pairlab:replay-loaded" with the last seq it
// shows), this follows the session's event stream from there and keeps a banner up to date:
// the session is live, how many events came since the page loaded (a reload shows them), and,
// when the stream's "end" message comes, that the session is over now. A session that was over
// when the page loaded gets no banner (its stream ends at once) unless something came since.
(function () {
  "use strict";
  var T = window.PairlabTimeline;
  var cfg = T.config();
  var $ = function (id) { return document.getElementById(id); };
  var OVER = { ended: true, failed: true };

  var shownUpTo = 0;     // the last seq replay.js loaded
  var newest = 0;        // the last seq the stream brought
  var fresh = 0;         // events since the page loaded
  var state = cfg.state;
  var finished = false;
  var source = null;

  function render() {
    var wasOver = !!OVER[cfg.state], isOver = !!OVER[state];
    var banner = $("pl-live-banner");
    banner.hidden = wasOver && !fresh;
    if (banner.hidden) { return; }
    var upTo = "the replay shows it up to #" + shownUpTo;
    var news = fresh ? fresh + " new event" + (fresh === 1 ? "" : "s") + " since (up to #" +
      newest + ")" : "no new events since";
    $("pl-live-text").textContent = !isOver ? "This session is " +
      (state === "live" ? "live" : "not over yet") + ": " + upTo + "; " + news + "." :
      wasOver ? news.charAt(0).toUpperCase() + news.slice(1) + " this page loaded." :
      "The session has " + state + " since this page loaded: " + upTo + "; " + news + ".";
    $("pl-live-stream").textContent = source ? " Following…" : "";
    $("pl-live-reload").hidden = !fresh;
    $("pl-replay-state").textContent = state;
  }

  function onEvent(message) {
    var ev;
    try { ev = JSON.parse(message.data); } catch (e) { return; }
    if (!ev || typeof ev.seq !== "number" || ev.seq <= Math.max(newest, shownUpTo)) { return; }
    newest = ev.seq;
    fresh = newest - shownUpTo;  // seqs are gap-free
    if (ev.kind === "session.started" && !OVER[state]) { state = "live"; }
    if (ev.kind === "session.ended") { state = "ended"; }
    if (ev.kind === "workspace.failed" && state !== "ended") { state = "failed"; }
    render();
  }

  function follow() {
    if (finished) { return; }
    var current = source = new EventSource(cfg.api + "/events/stream?after=" + Math.max(newest, shownUpTo));
    window.PairlabEventKinds.forEach(function (kind) { current.addEventListener(kind, onEvent); });
    current.addEventListener("end", function (message) {
      current.close();
      finished = true;
      source = null;
      try { state = JSON.parse(message.data).state || state; } catch (e) { /* keep */ }
      render();
    });
    current.onerror = function () {
      if (finished || current !== source) { return; }
      if (current.readyState === EventSource.CLOSED) { source = null; setTimeout(follow, 5000); }
    };
    render();
  }

  $("pl-live-reload").addEventListener("click", function () { location.reload(); });

  document.addEventListener("pairlab:replay-loaded", function (e) {
    shownUpTo = (e.detail && e.detail.lastSeq) || 0;
    follow();
  });
})();

// pairlab: a countdown badge on the candidate's workspace pages (served by pairlab, same origin).
//
// It asks pairlab for the session every 15 s, every 5 s in the last two minutes, and whenever
// the tab becomes visible again, so that the end (time up, or ended by the interviewer) shows
// promptly: then the badge and a notice across the page say so, and polling stops.
(function () {
  "use strict";
  var script = document.currentScript;
  var sessionId = script && script.getAttribute("data-session");
  if (!sessionId) { return; }
  var POLL_MS = 15000, LAST_MINUTES_POLL_MS = 5000, LAST_MINUTES_S = 120;
  var badge = document.createElement("div");
  badge.id = "pairlab-countdown";
  badge.setAttribute("role", "timer");
  badge.style.cssText = "position:fixed;top:4px;right:120px;z-index:10000;padding:2px 10px;" +
    "border-radius:10px;background:#1d2330;color:#fff;font:12px system-ui,sans-serif;";
  var notice = document.createElement("div");
  notice.id = "pairlab-ended";
  notice.setAttribute("role", "alert");
  notice.hidden = true;
  notice.style.cssText = "position:fixed;top:32px;left:50%;transform:translateX(-50%);" +
    "z-index:10001;max-width:36rem;padding:12px 18px;border-radius:6px;background:#a11;" +
    "color:#fff;font:14px system-ui,sans-serif;box-shadow:0 2px 12px rgba(0,0,0,.3);";
  notice.textContent = "This session has ended. Your work was saved and the workspace is now " +
    "read-only; you can close this tab.";
  var secondsLeft = null;
  var ended = false;
  var pollTimer = null;
  function render() {
    if (ended) {
      badge.textContent = "Session ended: the workspace is read-only";
      badge.style.background = "#a11";
      notice.hidden = false;
      return;
    }
    if (secondsLeft === null) { badge.textContent = "…"; return; }
    var m = Math.floor(secondsLeft / 60), s = secondsLeft % 60;
    badge.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    badge.style.background = secondsLeft < 300 ? "#b35c00" : "#1d2330";
  }
  function schedule() {
    clearTimeout(pollTimer);
    if (ended) { return; }
    var soon = secondsLeft !== null && secondsLeft <= LAST_MINUTES_S;
    pollTimer = setTimeout(poll, soon ? LAST_MINUTES_POLL_MS : POLL_MS);
  }
  function poll() {
    clearTimeout(pollTimer);
    fetch("/api/v1/sessions/" + encodeURIComponent(sessionId), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        secondsLeft = data.session.seconds_left;
        ended = data.session.state === "ended" || data.session.state === "failed";
        render();
      })
      .catch(function () { /* keep the last value */ })
      .then(schedule);
  }
  function tick() { if (secondsLeft !== null && secondsLeft > 0) { secondsLeft -= 1; } render(); }
  function mount() {
    document.body.appendChild(badge);
    document.body.appendChild(notice);
    render();
    poll();
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !ended) { poll(); }
  });
  setInterval(tick, 1000);
})();

// pairlab: a countdown badge on the candidate's workspace pages (served by pairlab, same origin).
(function () {
  "use strict";
  var script = document.currentScript;
  var sessionId = script && script.getAttribute("data-session");
  if (!sessionId) { return; }
  var badge = document.createElement("div");
  badge.id = "pairlab-countdown";
  badge.setAttribute("role", "timer");
  badge.style.cssText = "position:fixed;top:4px;right:120px;z-index:10000;padding:2px 10px;" +
    "border-radius:10px;background:#1d2330;color:#fff;font:12px system-ui,sans-serif;";
  var secondsLeft = null;
  var ended = false;
  function render() {
    if (ended) { badge.textContent = "Session ended: the workspace is read-only"; badge.style.background = "#a11"; return; }
    if (secondsLeft === null) { badge.textContent = "…"; return; }
    var m = Math.floor(secondsLeft / 60), s = secondsLeft % 60;
    badge.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
    badge.style.background = secondsLeft < 300 ? "#b35c00" : "#1d2330";
  }
  function poll() {
    fetch("/api/v1/sessions/" + encodeURIComponent(sessionId), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        secondsLeft = data.session.seconds_left;
        ended = data.session.state === "ended" || data.session.state === "failed";
        render();
      })
      .catch(function () { /* keep the last value */ });
  }
  function tick() { if (secondsLeft !== null && secondsLeft > 0) { secondsLeft -= 1; } render(); }
  function mount() { document.body.appendChild(badge); render(); poll(); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
  setInterval(tick, 1000);
  setInterval(poll, 15000);
})();

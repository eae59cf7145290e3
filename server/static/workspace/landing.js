// pairlab: the candidate's landing page (served by pairlab, same origin; no inline script).
//
// - Times (<time data-local>) are shown in the viewer's own zone by times.js, as on every page.
// - The time left is the server's wording (server/http/times.py: the page as rendered, then
//   the session API's "time_left", asked every 15 s: the same figure the workspace's badge
//   polls, so a wrong system clock does not matter and an extension shows without a reload).
// - Start shows "Preparing your workspace…" at once, the button disabled, until the workspace's
//   page replaces this one (the form still posts without this script). While the start is
//   under way the session API is asked after 250 ms, then every second: a start waiting in the
//   start queue shows the server's "Your workspace starts in about N s (k ahead of you)." (its
//   "queue.message"), then "Preparing your workspace…" again once it runs. The status is a
//   polite live region and changes only when the wording does.
// - The page loaded (or reloaded) while the start is under way asks the same every second and
//   says the same; once the workspace is live it goes on into it ("/s/<id>/open", as its
//   button would), and on any other state it reloads to show it. Without this script a
//   <noscript> refresh reloads the page every 2 s.
(function () {
  "use strict";
  var POLL_MS = 15000;
  var QUEUE_POLL_MS = 1000;
  var FIRST_ASK_MS = 250;

  function countDown() {
    var clock = document.getElementById("clock");
    var left = document.getElementById("time-left");
    var sessionId = clock && clock.getAttribute("data-session");
    if (!left || !sessionId) { return; }
    function poll() {
      askSession(sessionId, null).then(function (session) {
        if (session && typeof session.time_left === "string") {
          left.textContent = session.time_left;
        }
      });
    }
    setInterval(poll, POLL_MS);
  }

  var PREPARING = "Preparing your workspace… JupyterLab opens in this tab in a few seconds.";

  // The session as its API says now (null if it did not answer with one); a 4xx (the link
  // re-issued, the session gone) calls onGone.
  function askSession(sessionId, onGone) {
    return fetch("/api/v1/sessions/" + encodeURIComponent(sessionId),
                 { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status >= 400 && r.status < 500 && onGone) { onGone(); }
        return r.ok ? r.json() : null;
      })
      .then(function (data) { return data ? data.session : null; })
      .catch(function () { return null; });  // keep the last wording
  }

  // What the status says of a start under way: its place in the queue, or that it runs.
  function sayStarting(status, session) {
    var queue = session.queue;
    var text = queue && typeof queue.message === "string" ? queue.message : PREPARING;
    if (status.textContent !== text) { status.textContent = text; }
  }

  function preparing() {
    var form = document.getElementById("start-form");
    var button = document.getElementById("start");
    var status = document.getElementById("preparing");
    if (!form || !button || !status) { return; }
    var sent = false;
    var timer = null;
    var sessionId = form.getAttribute("data-session");
    function askQueue() {
      askSession(sessionId, null).then(function (session) {
        if (sent && session) { sayStarting(status, session); }
      });
    }
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      button.disabled = true;
      button.textContent = "Starting…";
      form.classList.add("busy");
      status.textContent = PREPARING;
      if (sessionId && timer === null) {
        setTimeout(askQueue, FIRST_ASK_MS);  // a place in the queue is known at once
        timer = setInterval(askQueue, QUEUE_POLL_MS);
      }
    });
    // Back to this page from the workspace (the browser's cache): ready to press again.
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) { return; }
      sent = false;
      if (timer !== null) { clearInterval(timer); timer = null; }
      button.disabled = false;
      button.textContent = "Start";
      form.classList.remove("busy");
      status.textContent = "";
    });
  }

  function underWay() {
    var status = document.getElementById("preparing");
    var open = status && status.getAttribute("data-open");
    var sessionId = status && status.getAttribute("data-session");
    if (!open || !sessionId) { return; }
    function gone() {
      clearInterval(timer);
      window.location.reload();  // the page says why
    }
    var timer = setInterval(function () {
      askSession(sessionId, gone).then(function (session) {
        if (!session) { return; }
        if (session.state === "provisioning") { sayStarting(status, session); return; }
        clearInterval(timer);
        if (session.state === "live") { window.location.assign(open); } else { gone(); }
      });
    }, QUEUE_POLL_MS);
  }

  function ready() { countDown(); preparing(); underWay(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else { ready(); }
})();

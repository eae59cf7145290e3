// pairlab: the candidate's landing page (served by pairlab, same origin; no inline script).
//
// - Every <time datetime> is shown in the viewer's own time zone (the server wrote UTC).
// - The time left counts down from the server's figure (the same one the workspace's badge
//   shows), by the page's own monotonic clock, so a wrong system clock does not matter.
// - Start shows "Preparing your workspace…" at once, the button disabled, until the workspace's
//   page replaces this one (the form still posts without this script).
(function () {
  "use strict";
  var loaded = performance.now();
  var format = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short"
  });

  function localTimes() {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        times[i].title = times[i].textContent;
        times[i].textContent = format.format(when);
      }
    }
  }

  function timeLeftText(seconds) {
    var minutes = Math.floor(seconds / 60);
    if (minutes >= 120) {
      var m = minutes % 60;
      return Math.floor(minutes / 60) + " h " + (m < 10 ? "0" : "") + m + " min";
    }
    if (minutes === 0) { return "less than a minute"; }
    return minutes + (minutes === 1 ? " minute" : " minutes");
  }

  function countDown() {
    var clock = document.getElementById("clock");
    var left = document.getElementById("time-left");
    if (!clock || !left) { return; }
    var start = parseInt(clock.getAttribute("data-seconds-left"), 10);
    if (isNaN(start)) { return; }
    function render() {
      var seconds = Math.max(0, start - Math.floor((performance.now() - loaded) / 1000));
      left.textContent = timeLeftText(seconds);
    }
    render();
    setInterval(render, 15000);
  }

  function preparing() {
    var form = document.getElementById("start-form");
    var button = document.getElementById("start");
    var status = document.getElementById("preparing");
    if (!form || !button || !status) { return; }
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      button.disabled = true;
      button.textContent = "Starting…";
      form.classList.add("busy");
      status.textContent = "Preparing your workspace… JupyterLab opens in this tab in a few " +
        "seconds.";
    });
    // Back to this page from the workspace (the browser's cache): ready to press again.
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) { return; }
      sent = false;
      button.disabled = false;
      button.textContent = "Start";
      form.classList.remove("busy");
      status.textContent = "";
    });
  }

  function ready() { localTimes(); countDown(); preparing(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else { ready(); }
})();

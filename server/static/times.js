// Times in the viewer's own time zone, and the schedule form's local start time sent as UTC.
// Every <time datetime="…" data-local> (or data-clock) keeps its server text (UTC) as a tooltip.
(function () {
  "use strict";
  var shown = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });

  // <time datetime="…" data-clock>: the time of day only (a draft saved a moment ago).
  function localise(root) {
    root.querySelectorAll("time[datetime][data-local], time[datetime][data-clock]")
      .forEach(function (el) {
        var moment = new Date(el.getAttribute("datetime"));
        if (isNaN(moment.getTime())) { return; }
        if (!el.title) { el.title = el.textContent; }
        el.textContent = el.hasAttribute("data-clock") ? moment.toLocaleTimeString()
                                                       : shown.format(moment);
      });
  }

  // <input type="datetime-local" data-utc-into="ID">: its value is read in the viewer's zone
  // and written, as ISO 8601 UTC, into the hidden field ID that the server reads.
  function pickers(root) {
    root.querySelectorAll("input[type=datetime-local][data-utc-into]").forEach(function (input) {
      var target = document.getElementById(input.getAttribute("data-utc-into"));
      var zone = document.getElementById(input.id + "-zone");
      if (zone) {
        zone.textContent = "in your time zone, " +
          Intl.DateTimeFormat().resolvedOptions().timeZone;
      }
      function fill() {
        if (!target) { return; }
        var moment = input.value ? new Date(input.value) : null;
        target.value = moment && !isNaN(moment.getTime()) ? moment.toISOString() : "";
      }
      input.addEventListener("input", fill);
      input.addEventListener("change", fill);
      if (input.form) { input.form.addEventListener("submit", fill); }
      fill();
    });
  }

  // The server needs the viewer's zone only for days (the home page's "Today"): a cookie. A
  // page whose day was cut in another zone (data-day-zone) is loaded once more when the cookie
  // has just changed; if the server does not know the zone it stays as it is.
  function reportZone() {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) { return; }
    var had = document.cookie.split("; ").filter(function (c) {
      return c.indexOf("pairlab_tz=") === 0;
    }).map(function (c) { return c.slice("pairlab_tz=".length); })[0];
    if (had === zone) { return; }
    document.cookie = "pairlab_tz=" + zone +
      "; path=/; max-age=31536000; samesite=lax";
    var day = document.querySelector("[data-day-zone]");
    if (day && day.getAttribute("data-day-zone") !== zone) { window.location.reload(); }
  }

  function ready() { reportZone(); localise(document); pickers(document); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
}());

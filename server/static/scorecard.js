// Autosave for the scorecard form: each change is sent (debounced) as the interviewer's
// draft with PUT /api/v1/sessions/{id}/scorecards/mine. Submitting stays a normal form post.
(function () {
  "use strict";
  var form = document.getElementById("scorecard-form");
  var status = document.getElementById("autosave-status");
  var cfg = JSON.parse(document.getElementById("pl-scorecard-config").textContent);
  if (!form || !status) { return; }
  var csrf = form.querySelector("input[name=csrf_token]").value;
  var timer = null;
  var pending = null;

  function value(name) {
    var el = form.querySelector("[name='" + name + "']:checked") || form.querySelector("textarea[name='" + name + "'], input[type=text][name='" + name + "'], input:not([type])[name='" + name + "']");
    return el ? el.value : "";
  }

  function body() {
    var scores = {};
    form.querySelectorAll("fieldset.dimension").forEach(function (fs) {
      var id = fs.getAttribute("data-dimension");
      var level = value("level-" + id);
      var moments = value("moments-" + id).split(/[\s,]+/).filter(function (t) { return t; })
        .map(function (t) { return /^\d+$/.test(t) ? parseInt(t, 10) : t; });
      scores[id] = { level: level ? parseInt(level, 10) : null, evidence: value("evidence-" + id), moments: moments };
    });
    return { scores: scores, recommendation: value("recommendation") || null, summary: value("summary") };
  }

  function save() {
    if (timer) { clearTimeout(timer); }
    timer = null;
    var sent = JSON.stringify(body());
    if (sent === pending) { return Promise.resolve(); }
    status.textContent = "Saving…";
    return fetch(cfg.api, {
      method: "PUT", credentials: "same-origin", body: sent,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        // every problem, as the server words them (rubric titles first), else its one sentence
        if (!response.ok) { throw new Error((data.problems && data.problems.join("; ")) || (data.error && data.error.message) || response.statusText); }
        pending = sent;
        // the time of day in the viewer's zone, as times.js shows the page's (data-clock)
        var saved = new Date(String(data.updated_at).replace(/\.\d+/, ""));
        status.textContent = isNaN(saved.getTime()) ? "Draft saved."
          : "Draft saved at " + saved.toLocaleTimeString() + ".";
      });
    }).catch(function (err) { status.textContent = "Not saved: " + err.message; });
  }

  function changed() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, 800);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  // scorecard_moments.js saves what is typed before the timeline's filter reloads the page
  window.PairlabScorecard = { saveNow: function () { return timer ? save() : Promise.resolve(); } };
})();

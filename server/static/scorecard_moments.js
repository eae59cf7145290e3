// pairlab: picking a scorecard's moments from the session's timeline (scorecard.html).
//
// Each event of the timeline gets an "Add to <question>" button for the question chosen in
// "Add moments to" (or the one last focused); each question's moments show as chips (a link
// into the replay and a Remove button). The chips write the question's text field of event
// numbers, which stays the form's field: the form post and the autosave (scorecard.js) read it
// as before, and without script that field is what the interviewer types in. Summaries are
// timeline.js's, the observe and replay pages' own. Event text is only ever set as text.
(function () {
  "use strict";
  var form = document.getElementById("scorecard-form");
  var list = document.getElementById("moment-timeline");
  var target = document.getElementById("moment-target");
  var statusLine = document.getElementById("moment-status");
  var T = window.PairlabTimeline;
  if (!form || !list || !target || !T) { return; }
  var cfg = JSON.parse(document.getElementById("pl-scorecard-config").textContent);
  var events = {};
  (cfg.events || []).forEach(function (ev) { events[ev.seq] = ev; });
  var questions = {};  // dimension id -> {title, input, chips}

  function kindLabel(ev) { return cfg.kinds[ev.kind] || ev.kind; }

  function label(seq) {
    var ev = events[seq];
    if (!ev) { return "#" + seq + ": not an event of this session"; }
    var text = T.summary(ev);
    if (text.length > 60) { text = text.slice(0, 60) + "…"; }
    return "#" + seq + " " + kindLabel(ev) + (text ? ": " + text : "");
  }

  function say(text) { statusLine.textContent = text; }

  // The field's tokens; null when one is not an event number (then the field stays in sight
  // for the interviewer to correct, and no chips stand in for it).
  function parse(input) {
    var tokens = input.value.split(/[\s,]+/).filter(function (t) { return t; });
    if (!tokens.every(function (t) { return /^\d{1,15}$/.test(t); })) { return null; }
    var seen = {};
    return tokens.map(Number).filter(function (n) {
      if (seen[n]) { return false; }
      seen[n] = true;
      return true;
    });
  }

  function renderChips(id) {
    var q = questions[id];
    var seqs = parse(q.input);
    q.typed.hidden = seqs !== null;
    T.clear(q.chips);
    if (seqs === null) { return; }
    if (!seqs.length) {
      q.chips.appendChild(T.el("p", { class: "moment-none" }, ["No moments yet."]));
      return;
    }
    var ul = T.el("ul", { class: "moment-chips", "aria-label": "Moments for " + q.title });
    seqs.forEach(function (seq) {
      var text = label(seq);
      var remove = T.el("button", { type: "button", class: "moment-remove", data: { seq: seq } }, [
        T.el("span", { "aria-hidden": "true" }, ["×"]),
        T.el("span", { class: "visually-hidden" }, ["Remove " + text + " from " + q.title])]);
      remove.addEventListener("click", function () { removeMoment(id, seq); });
      ul.appendChild(T.el("li", { class: "moment-chip", data: { seq: seq } }, [
        T.el("a", { href: cfg.replay + "#seq=" + seq }, [text]), " ", remove]));
    });
    q.chips.appendChild(T.el("p", { class: "moment-chips-title", "aria-hidden": "true" }, ["Moments"]));
    q.chips.appendChild(ul);
  }

  function write(id, seqs) {
    var q = questions[id];
    q.input.value = seqs.join(", ");
    renderChips(id);
    q.input.dispatchEvent(new Event("input", { bubbles: true }));  // autosave
  }

  function addMoment(id, seq) {
    var q = questions[id], seqs = parse(q.input);
    if (seqs === null) {
      say("First correct the moments typed for " + q.title + ".");
      q.input.focus();
      return;
    }
    if (seqs.indexOf(seq) >= 0) { say(label(seq) + " is already a moment of " + q.title + "."); return; }
    seqs.push(seq);
    write(id, seqs);
    say("Added " + label(seq) + " to " + q.title + ".");
  }

  function removeMoment(id, seq) {
    var q = questions[id], seqs = parse(q.input) || [];
    var next = seqs.filter(function (s) { return s !== seq; });
    write(id, next);
    say("Removed " + label(seq) + " from " + q.title + ".");
    // keep the keyboard in the question: on the next chip's button, else the chips' place
    var button = q.chips.querySelector(".moment-remove");
    (button || q.fieldset.querySelector("textarea")).focus();
  }

  function title() { return questions[target.value].title; }

  function relabel() {
    list.querySelectorAll(".moment-add").forEach(function (b) {
      b.querySelector(".moment-add-to").textContent = title();
    });
  }

  form.querySelectorAll("fieldset.dimension").forEach(function (fs) {
    var id = fs.getAttribute("data-dimension");
    var picks = fs.querySelector(".moment-picks");
    questions[id] = { title: picks.getAttribute("data-title"), fieldset: fs, chips: picks,
                      input: fs.querySelector("input[name='moments-" + id + "']"),
                      typed: fs.querySelector(".moments-typed") };
    renderChips(id);
    // the question being scored is the one moments go to
    fs.addEventListener("focusin", function () {
      if (target.value !== id) { target.value = id; relabel(); }
    });
  });

  list.querySelectorAll("li.moment-event").forEach(function (li) {
    var seq = Number(li.getAttribute("data-seq")), ev = events[seq];
    if (ev) { li.querySelector(".moment-summary").textContent = T.summary(ev); }
    var button = T.el("button", { type: "button", class: "moment-add" }, [
      "Add ", T.el("span", { class: "visually-hidden" }, ["#" + seq + " "]), "to ",
      T.el("span", { class: "moment-add-to" }, [""])]);
    button.addEventListener("click", function () { addMoment(target.value, seq); });
    li.querySelector(".moment-actions").appendChild(button);
  });
  target.addEventListener("change", relabel);
  relabel();
  document.querySelectorAll(".moment-target-row, .moment-help-script").forEach(function (el) {
    el.hidden = false;
  });

  // The filter: as typed, over this page's events; submitted, over the whole session (a page
  // load, after what was typed in the scorecard is saved).
  var kind = document.getElementById("timeline-kind");
  var text = document.getElementById("timeline-q");
  var count = document.getElementById("timeline-count");
  var countText = count.textContent;
  function filter() {
    var group = kind.value, needle = text.value.trim().toLowerCase(), shown = 0, all = 0;
    list.querySelectorAll("li.moment-event").forEach(function (li) {
      var ok = (!group || li.getAttribute("data-group") === group) &&
        (!needle || (li.querySelector(".moment-head").textContent + " " +
          li.querySelector(".moment-summary").textContent).toLowerCase().indexOf(needle) >= 0);
      li.hidden = !ok;
      all += 1;
      if (ok) { shown += 1; }
    });
    count.textContent = shown === all ? countText : "Showing " + shown + " of the " + all +
      " events on this page (Filter looks through the whole session).";
  }
  kind.addEventListener("change", filter);
  text.addEventListener("input", filter);
  var filterForm = document.getElementById("timeline-filter");
  filterForm.addEventListener("submit", function (e) {
    var saving = window.PairlabScorecard && window.PairlabScorecard.saveNow();
    if (!saving) { return; }
    e.preventDefault();
    saving.then(function () { filterForm.submit(); }, function () { filterForm.submit(); });
  });
})();

// pairlab's side panel in JupyterLab: the brief, the time left and the end, and the hints the
// interviewers have given so far (a JupyterLab 4 prebuilt extension; built by scripts/setup).
//
// Its data:
// - the time: from countdown.js, the page's one clock (pairlab's proxy puts it in every lab
//   page before JupyterLab): window.pairlab, and a "pairlab:session" event at every change;
// - the brief and the hints: GET /api/v1/sessions/<id>/panel on the workspace's own origin,
//   authorised like every other request of the workspace. The brief is HTML sanitised by
//   pairlab (common/markdown_safe.py); a hint is text and is only ever put in as text.
import { Widget } from "@lumino/widgets";

const POLL_MS = 5000;
const ID = "pairlab-panel";

const clockFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", timeZoneName: "short"
});
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", timeZoneName: "short"
});

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    node.setAttribute(name, value);
  }
  if (text !== undefined) { node.textContent = text; }
  return node;
}

function timeElement(iso, format) {
  const moment = new Date(iso);
  const node = element("time", { datetime: iso });
  node.textContent = isNaN(moment.getTime()) ? iso : format.format(moment);
  return node;
}

function timeLeft(seconds) {
  const m = Math.floor(seconds / 60), s = seconds % 60;
  if (m >= 120) { return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min left"; }
  return m + ":" + String(s).padStart(2, "0") + " left";
}

class PairlabPanel extends Widget {
  constructor(sessionId, person) {
    super();
    this.id = ID;
    this.addClass("pairlab-Panel");
    this.title.label = "Interview";
    this.title.caption = "pairlab: the brief, the time left and the hints";
    this.title.iconClass = "pairlab-PanelIcon";
    this.sessionId = sessionId;
    this.person = person;
    this.shownHints = new Set();
    this.ended = false;
    this.timer = null;
    this.build();
  }

  build() {
    const root = element("div");
    root.appendChild(element("h2", { id: "pairlab-panel-title" }, "Your interview"));

    const time = element("div", { class: "pairlab-Panel-time" });
    this.left = element("p", { id: "pairlab-panel-left", class: "pairlab-Panel-left" }, "…");
    this.endsLine = element("p", { id: "pairlab-panel-ends" });
    time.appendChild(this.left);
    time.appendChild(this.endsLine);
    root.appendChild(time);
    // Said once, politely, when the interview ends.
    this.status = element("p", { id: "pairlab-panel-status", role: "status",
      class: "pairlab-Panel-status" });
    root.appendChild(this.status);

    root.appendChild(element("h3", { id: "pairlab-hints-title" }, "Hints from your interviewer"));
    // A new hint is announced (polite: after whatever the screen reader is saying).
    this.hintsRegion = element("div", { id: "pairlab-hints", "aria-live": "polite",
      "aria-labelledby": "pairlab-hints-title" });
    this.noHints = element("p", { class: "pairlab-Panel-none" }, "No hints yet.");
    this.hintList = element("ol", { class: "pairlab-Panel-hints" });
    this.hintsRegion.appendChild(this.noHints);
    this.hintsRegion.appendChild(this.hintList);
    root.appendChild(this.hintsRegion);

    root.appendChild(element("h3", { id: "pairlab-brief-title" }, "The brief"));
    this.brief = element("div", { id: "pairlab-brief", class: "pairlab-Panel-brief" });
    this.brief.appendChild(element("p", {}, "Loading the brief…"));
    root.appendChild(this.brief);
    this.node.appendChild(root);
    // The panel scrolls (a long brief): reachable by keyboard, and named for what it is.
    this.node.setAttribute("tabindex", "0");
    this.node.setAttribute("role", "region");
    this.node.setAttribute("aria-labelledby", "pairlab-panel-title");
  }

  // ---- the clock: countdown.js's ----------------------------------------------------------
  showClock(state) {
    if (!state) { return; }
    if (state.ended) { this.showEnded(); return; }
    if (state.secondsLeft !== null && state.secondsLeft !== undefined) {
      this.left.textContent = timeLeft(state.secondsLeft);
    }
    if (state.endsAt && this.endsLine.getAttribute("data-at") !== state.endsAt) {
      this.endsLine.setAttribute("data-at", state.endsAt);
      this.endsLine.replaceChildren("Ends at ", timeElement(state.endsAt, clockFormat));
      this.endsLine.lastChild.title = dayFormat.format(new Date(state.endsAt));
    }
  }

  showEnded() {
    if (this.ended) { return; }
    this.ended = true;
    this.left.textContent = "Time is up";
    this.status.textContent = this.person === "candidate"
      ? "The interview has ended. Thank you — your work is saved."
      : "The interview has ended.";
    this.addClass("pairlab-mod-ended");
    clearTimeout(this.timer);
  }

  // ---- the brief and the hints: pairlab's endpoint ----------------------------------------
  async refresh() {
    clearTimeout(this.timer);
    if (this.ended) { return; }
    try {
      const response = await fetch(
        "/api/v1/sessions/" + encodeURIComponent(this.sessionId) + "/panel",
        { credentials: "same-origin", cache: "no-store" });
      if (response.ok) { this.showData((await response.json()).panel); }
    } catch (error) {
      // keep what is shown; the next poll tries again
    }
    if (!this.ended) { this.timer = setTimeout(() => this.refresh(), POLL_MS); }
  }

  showData(panel) {
    if (!this.briefShown) {
      // pairlab's sanitised HTML (nh3 allow-list on the server), never the raw Markdown.
      this.brief.innerHTML = panel.brief_html;
      this.briefShown = true;
    }
    for (const hint of panel.hints) {
      if (this.shownHints.has(hint.seq)) { continue; }
      this.shownHints.add(hint.seq);
      const item = element("li", { class: "pairlab-Panel-hint" });
      item.appendChild(timeElement(hint.at, clockFormat));
      item.appendChild(element("p", {}, hint.text));  // text, never HTML
      this.hintList.appendChild(item);
    }
    this.noHints.hidden = this.shownHints.size > 0;
    if (panel.state === "ended" || panel.state === "failed") { this.showEnded(); }
  }
}

const plugin = {
  id: "pairlab-panel:plugin",
  description: "pairlab's side panel: the brief, the time left and the hints given.",
  autoStart: true,
  activate: (app) => {
    const state = window.pairlab;
    if (!state || !state.sessionId) { return; }  // not a page pairlab's proxy served
    const panel = new PairlabPanel(state.sessionId, state.person);
    app.shell.add(panel, "right", { rank: 0 });
    panel.showClock(state);
    document.addEventListener("pairlab:session", (event) => panel.showClock(event.detail));
    panel.refresh();
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") { panel.refresh(); }
    });
    // Open for the candidate from the start; an interviewer opens it when they want it.
    if (state.person === "candidate") {
      app.restored.then(() => app.shell.activateById(ID));
    }
  }
};

export default plugin;

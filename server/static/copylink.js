// The Copy button beside a link: the clipboard where the browser allows it (a secure context),
// otherwise the link's field is selected for the person to copy with their keyboard.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-copy") + "-status");
    var label = button.textContent;
    function say(text) { if (status) { status.textContent = text; } }
    function selectField() {
      field.focus();
      field.select();
      say("Selected: press Ctrl+C (or \u2318C) to copy.");
    }
    button.addEventListener("click", function () {
      if (!field) { return; }
      if (!(navigator.clipboard && window.isSecureContext)) { selectField(); return; }
      navigator.clipboard.writeText(field.value).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        say("Copied to the clipboard.");
        window.setTimeout(function () {
          button.textContent = label;
          button.classList.remove("copied");
        }, 4000);
      }, selectField);
    });
  });
  // Forms with data-confirm ask before they post (the re-issue makes the old link stop working).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
}());

// The rubric editor: a live preview of the anchors as the scorecard shows them, and adding,
// removing and reordering dimensions. Without script the form still works: existing fields
// are edited in place and the last, empty fieldset adds one dimension.
(function () {
  "use strict";
  var form = document.getElementById("rubric-form");
  var list = document.getElementById("dimension-list");
  var preview = document.getElementById("preview-dimensions");
  var add = document.getElementById("add-dimension");
  if (!form || !list || !preview) { return; }
  var counter = list.querySelectorAll("fieldset.dimension-edit").length + 1000;

  function field(fs, key) {
    var el = fs.querySelector("[data-preview='" + key + "']");
    return el ? el.value.trim() : "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function render() {
    preview.textContent = "";
    list.querySelectorAll("fieldset.dimension-edit").forEach(function (fs) {
      var anchors = [1, 2, 3, 4].map(function (n) { return field(fs, "anchor-" + n); });
      var title = field(fs, "title");
      if (!title && !field(fs, "description") && !field(fs, "weight") &&
          !anchors.some(function (a) { return a; })) { return; }
      var box = el("div", "dimension preview-dimension");
      var head = el("p", "preview-title");
      head.appendChild(el("strong", "", title));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("small", "", "(weight " + field(fs, "weight") + ")"));
      box.appendChild(head);
      var desc = el("p");
      desc.appendChild(el("small", "", field(fs, "description")));
      box.appendChild(desc);
      anchors.forEach(function (text, i) {
        var p = el("p", "anchor");
        p.setAttribute("data-level", String(i + 1));
        p.appendChild(el("strong", "", String(i + 1)));
        p.appendChild(document.createTextNode(" " + text));
        box.appendChild(p);
      });
      preview.appendChild(box);
    });
  }

  function tools(fs) {
    var bar = fs.querySelector(".dimension-tools");
    if (bar) { bar.hidden = false; }
  }

  function blankCopy(from) {
    // a new, empty dimension: the fields of ``from`` with fresh ids and no values or errors
    var fs = from.cloneNode(true);
    counter += 1;
    fs.setAttribute("data-dimension", "");
    fs.querySelector("legend").textContent = "New dimension";
    fs.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    fs.querySelectorAll("input, textarea").forEach(function (input) {
      if (input.type !== "button") { input.value = ""; }
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      if (input.id) { input.id = input.id.replace(/^dim-\d+-/, "dim-" + counter + "-"); }
    });
    fs.querySelectorAll("label[for]").forEach(function (label) {
      label.htmlFor = label.htmlFor.replace(/^dim-\d+-/, "dim-" + counter + "-");
    });
    return fs;
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    var fs = button.closest("fieldset.dimension-edit");
    if (button.hasAttribute("data-remove")) {
      if (list.querySelectorAll("fieldset.dimension-edit").length > 1) { fs.remove(); }
    } else if (button.getAttribute("data-move") === "up" && fs.previousElementSibling) {
      list.insertBefore(fs, fs.previousElementSibling);
    } else if (button.getAttribute("data-move") === "down" && fs.nextElementSibling) {
      list.insertBefore(fs.nextElementSibling, fs);
    } else { return; }
    button.focus();
    render();
  });

  if (add) {
    add.hidden = false;
    add.addEventListener("click", function () {
      var all = list.querySelectorAll("fieldset.dimension-edit");
      var fs = blankCopy(all[all.length - 1]);
      list.appendChild(fs);
      tools(fs);
      fs.querySelector("[data-preview='title']").focus();
    });
  }
  list.querySelectorAll("fieldset.dimension-edit").forEach(tools);
  form.addEventListener("input", render);
  render();
})();

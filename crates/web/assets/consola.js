// The console's keyboard: j/k move in the queue, Enter opens, / searches,
// r reply, n internal note, e close the ticket, ? the list of keys.
// Nothing here is needed to work the console: every key has a control.
// It also tells the live updates (htmx, every 2 s) whether the reply box
// holds text, so that others see "está respondiendo".
(function () {
  "use strict";
  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table.cola tbody tr"));
  }
  function move(by) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.indexOf(document.activeElement && document.activeElement.closest("tr"));
    var next = all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + by))];
    var link = next.querySelector("a");
    if (link) { link.focus(); next.scrollIntoView({ block: "nearest" }); }
  }
  function write(note) {
    var box = document.getElementById("cuerpo");
    var switchNote = document.getElementById("nota");
    if (!box) { return; }
    if (switchNote) { switchNote.checked = note; }
    box.focus();
  }
  function close() {
    var state = document.getElementById("estado");
    if (!state) { return; }
    state.value = "cerrado";
    var form = state.form;
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey || typing(e.target)) { return; }
    var help = document.getElementById("teclas");
    var keys = {
      "j": function () { move(1); },
      "k": function () { move(-1); },
      "/": function () { var q = document.getElementById("q"); if (q) { q.focus(); } },
      "r": function () { write(false); },
      "n": function () { write(true); },
      "e": close,
      "?": function () { if (help && !help.open) { help.showModal(); } }
    };
    var act = keys[e.key];
    if (act) { e.preventDefault(); act(); }
  });
  function answering() {
    var box = document.getElementById("cuerpo");
    var flag = document.getElementById("respondiendo");
    if (box && flag) { flag.value = box.value.trim() ? "1" : ""; }
  }
  document.addEventListener("input", function (e) {
    if (e.target && e.target.id === "cuerpo") { answering(); }
  });
  answering();
  document.addEventListener("click", function (e) {
    if (e.target && e.target.id === "cerrar-teclas") { document.getElementById("teclas").close(); }
  });
})();

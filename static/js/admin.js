// The admin console's few lines of script; every page works without it.
// 1. Copy a new API key to the clipboard (the key is also selectable by hand).
// 2. On a tier's page, show how many members a threshold would move as the admin types (moves.json);
//    the Save button shows the same counts on a confirmation step before anything is saved.
(function () {
  "use strict";

  var copy = document.getElementById("copy-key");
  if (copy) {
    copy.addEventListener("click", function () {
      var text = document.getElementById(copy.dataset.copy).textContent.trim();
      var done = function () { copy.textContent = copy.dataset.copied; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(copy.dataset.copy); });
      } else {
        select(copy.dataset.copy);
        if (document.execCommand("copy")) done();
      }
    });
  }

  function select(id) {
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(id));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  var form = document.getElementById("tier-form");
  var input = document.getElementById("threshold");
  var live = document.getElementById("live-preview");
  if (!form || !input || !live || input.readOnly) return;
  var timer = null;
  var asked = 0;

  function show() {
    var threshold = input.value.trim();
    if (threshold === form.dataset.threshold || !/^\d+$/.test(threshold)) {
      live.textContent = "";
      return;
    }
    var ticket = ++asked;
    var url = form.dataset.movesUrl + "?threshold=" + encodeURIComponent(threshold);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (ticket === asked) live.textContent = body.text || body.error || "";
      })
      .catch(function () { if (ticket === asked) live.textContent = ""; });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(show, 400);
  });
})();

// ferry's console script: the only script besides htmx (no inline code, the
// Content-Security-Policy forbids it). It shows why an action was refused:
// the server answers refusals with an RFC 9457 problem document, whose
// title and detail go into the page's #flash box as text, never as HTML.
(function () {
  "use strict";
  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = text;
    box.className = "flash " + kind;
    box.hidden = false;
  }
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var text = "The request failed (HTTP " + xhr.status + ").";
    try {
      var p = JSON.parse(xhr.responseText);
      if (p && p.detail) { text = (p.title ? p.title + ": " : "") + p.detail; }
    } catch (_) { /* not a problem document: keep the status */ }
    flash(text, "error");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("ferry did not answer: is it running?", "error");
  });
})();

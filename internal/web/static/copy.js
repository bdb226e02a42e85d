// Gatehouse's copy buttons, on the page that shows a new API token once.
// Without this script the page works the same: the token and the snippets
// are ordinary text to select and copy, and the buttons stay hidden. No
// inline script (the CSP allows only files from the site).
"use strict";

(function () {
  // copyText selects the node's text, so Ctrl+C works whatever happens,
  // and puts it on the clipboard: with the Clipboard API where the page is
  // a secure context (https, or localhost), else with the older selection
  // command. It resolves to false when neither works.
  function copyText(node) {
    var sel = window.getSelection(), range = document.createRange();
    range.selectNodeContents(node);
    sel.removeAllRanges();
    sel.addRange(range);
    var legacy = function () {
      try { return document.execCommand("copy"); } catch (e) { return false; }
    };
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(node.textContent).then(function () { return true; }, legacy);
    }
    return Promise.resolve(legacy());
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (b) {
      var src = document.getElementById(b.getAttribute("data-copy"));
      var status = document.getElementById(b.getAttribute("data-copy") + "-status");
      if (!src) return;
      b.hidden = false;
      b.addEventListener("click", function () {
        copyText(src).then(function (ok) {
          if (status) status.textContent = ok ? "Copied." : "Selected: press Ctrl+C (or ⌘C) to copy.";
        });
      });
    });
  });
})();

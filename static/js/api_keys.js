// The copy button of a new API key (shown only when scripts run; the field can always be
// selected and copied by hand).
(function () {
  var button = document.querySelector("[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.dataset.copy);
  var status = document.querySelector("[data-copy-status]");
  function say(text) { if (status) status.textContent = text; }
  function fallback() {
    field.focus();
    field.select();
    // execCommand is deprecated but is the only way without the Clipboard API (plain http).
    say(document.execCommand && document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
  }
  button.hidden = false;
  field.addEventListener("focus", function () { field.select(); });
  button.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { say("Copied."); }, fallback);
    } else {
      fallback();
    }
  });
})();

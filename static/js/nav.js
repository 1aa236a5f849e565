// The phone navigation: the menu button folds the navigation panel away and opens it again.
// Without this script the button stays hidden and the panel open, so nothing is unreachable.
(function () {
  "use strict";
  var bar = document.querySelector("[data-topbar]");
  var button = bar && bar.querySelector("[data-menu-button]");
  var panel = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!panel) return;

  function setOpen(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    panel.classList.toggle("open", open);
  }

  button.hidden = false;
  bar.classList.add("collapsible");
  button.addEventListener("click", function () {
    setOpen(button.getAttribute("aria-expanded") !== "true");
  });
  // Escape closes the open menu and gives the focus back to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      button.focus();
    }
  });
})();

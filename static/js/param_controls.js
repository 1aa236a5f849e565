// Parameter controls rendered from a model's JSON Schema (templates/jobs/_param_controls.html).
// The named number field or select is what the form sends, and empty means "not given"
// (the preset's or the default applies). Here bounded numbers get a slider and booleans
// a switch that mirror it; "Use default" empties it again. A control's `data-resolved`
// (set by the page from the server's preview) is the value that applies while it is empty.
(function () {
  function numberOf(input) {
    return input.value === "" ? null : Number(input.value);
  }

  function enhanceSlider(range) {
    var input = document.getElementById(range.dataset.rangeFor);
    var state = range.closest(".param").querySelector(".slider-state");
    var output = state.querySelector("output");
    range.hidden = false;
    state.hidden = false;
    function show() {
      var value = numberOf(input);
      // Unset: what applies instead, as the page last resolved it (the preset's value
      // or the default), else the schema's default.
      var fallback = input.dataset.resolved !== undefined ? input.dataset.resolved : input.placeholder;
      if (value === null) {
        range.value = fallback !== "" ? fallback : range.min;
        output.textContent = fallback !== "" ? "Not set: " + fallback + " applies" : "Not set";
        range.classList.add("unset");
      } else {
        range.value = value;
        output.textContent = "Set: " + input.value;
        range.classList.remove("unset");
      }
    }
    range.addEventListener("input", function () {
      input.value = range.value;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    // Focusing the slider says its value to a screen reader; so does the output.
    input.addEventListener("input", show);
    input.addEventListener("change", show);
    input.addEventListener("param-refresh", show);
    show();
  }

  function enhanceSwitch(row) {
    var select = document.getElementById(row.dataset.switchFor);
    var box = row.querySelector("input[type=checkbox]");
    var state = row.querySelector("output");
    select.hidden = true;
    row.hidden = false;
    document.getElementById(select.id + "-label").htmlFor = box.id;
    function show() {
      var resolved = select.dataset.resolved !== undefined ? select.dataset.resolved : row.dataset.default;
      var on = select.value === "" ? resolved === "true" : select.value === "true";
      box.checked = on;
      state.textContent = (on ? "On" : "Off") + (select.value === "" ? " (preset or default)" : "");
    }
    select.addEventListener("param-refresh", show);
    box.addEventListener("change", function () {
      select.value = box.checked ? "true" : "false";
      select.dispatchEvent(new Event("change", { bubbles: true }));
      show();
    });
    select.addEventListener("change", show);
    show();
  }

  // A colour: the named text field (a hex colour, "transparent", or empty for the preset's
  // or the default) is what is sent; the picker and the "Transparent" box mirror it.
  function hexOf(text) {
    var t = String(text || "").trim().toLowerCase();
    if (/^#[0-9a-f]{3}$/.test(t)) t = "#" + t[1] + t[1] + t[2] + t[2] + t[3] + t[3];
    return /^#[0-9a-f]{6}$/.test(t) ? t : null;
  }

  function enhanceColour(row) {
    var input = document.getElementById(row.dataset.colourFor);
    var picker = row.querySelector("input[type=color]");
    var transparentLabel = row.querySelector(".colour-transparent");
    var transparent = transparentLabel && transparentLabel.querySelector("input");
    picker.hidden = false;
    if (transparentLabel) transparentLabel.hidden = false;
    var unset = row.querySelector("[data-unset]");
    if (unset) unset.hidden = false;
    function applied() {
      if (input.value.trim() !== "") return input.value.trim();
      return input.dataset.resolved !== undefined ? input.dataset.resolved : input.placeholder;
    }
    function show() {
      var value = applied();
      var isTransparent = value.trim().toLowerCase() === "transparent";
      if (transparent) transparent.checked = isTransparent;
      picker.disabled = isTransparent || input.disabled;
      var hex = hexOf(value);
      if (hex) picker.value = hex;
    }
    picker.addEventListener("input", function () {
      input.value = picker.value.toUpperCase();
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    if (transparent) {
      transparent.addEventListener("change", function () {
        input.value = transparent.checked ? "transparent" : picker.value.toUpperCase();
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
    input.addEventListener("input", show);
    input.addEventListener("change", show);
    input.addEventListener("param-refresh", show);
    show();
  }

  document.querySelectorAll("[data-colour-for]").forEach(enhanceColour);
  document.querySelectorAll("input[data-range-for]").forEach(enhanceSlider);
  document.querySelectorAll("[data-switch-for]").forEach(enhanceSwitch);
  document.querySelectorAll("[data-unset]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.unset);
      field.value = "";
      field.dispatchEvent(new Event(field.tagName === "SELECT" ? "change" : "input", { bubbles: true }));
      field.dispatchEvent(new Event("change", { bubbles: true }));
    });
  });
})();

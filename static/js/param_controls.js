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

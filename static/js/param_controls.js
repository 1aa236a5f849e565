// Parameter controls rendered from a model's JSON Schema (templates/jobs/_param_controls.html).
// The named number field or select is what the form sends, and empty means "not given"
// (the preset's or the default applies). Here bounded numbers get a slider and booleans
// a switch that mirror it; "Use default" empties it again.
(function () {
  function numberOf(input) {
    return input.value === "" ? null : Number(input.value);
  }

  function enhanceSlider(range) {
    var input = document.getElementById(range.dataset.rangeFor);
    var state = range.closest(".param").querySelector(".slider-state");
    var output = state.querySelector("output");
    var fallback = input.placeholder;
    range.hidden = false;
    state.hidden = false;
    function show() {
      var value = numberOf(input);
      if (value === null) {
        range.value = fallback !== "" ? fallback : range.min;
        output.textContent = fallback !== "" ? "Default: " + fallback : "Not set";
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
    show();
  }

  function enhanceSwitch(row) {
    var select = document.getElementById(row.dataset.switchFor);
    var box = row.querySelector("input[type=checkbox]");
    var state = row.querySelector("output");
    var fallback = row.dataset.default === "true";
    select.hidden = true;
    row.hidden = false;
    document.getElementById(select.id + "-label").htmlFor = box.id;
    function show() {
      var on = select.value === "" ? fallback : select.value === "true";
      box.checked = on;
      state.textContent = (on ? "On" : "Off") + (select.value === "" ? " (default)" : "");
    }
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

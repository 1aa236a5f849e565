// The gallery and an image's page: selection, favourites without a reload, confirmations
// and the before/after slider. Everything works without it, through plain forms.
(function () {
  // Delete buttons ask first; once confirmed, the server's own confirmation page is skipped.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (event.defaultPrevented || !button || !button.dataset.confirm) return;
    if (!window.confirm(button.dataset.confirm)) { event.preventDefault(); return; }
    var form = event.target;
    if (!form.querySelector("input[name=confirm]")) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "confirm"; input.value = "1";
      form.appendChild(input);
    }
  });

  var selection = document.getElementById("selection");
  if (selection) {
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=asset][form=selection]"));
    var count = document.getElementById("selected-count");
    var all = document.getElementById("select-all");
    var hint = count.textContent;
    var update = function () {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      count.textContent = n ? n + " selected" : hint;
      all.textContent = n === boxes.length ? "Clear selection" : "Select all on this page";
    };
    all.hidden = false;
    all.addEventListener("click", function () {
      var every = boxes.every(function (b) { return b.checked; });
      boxes.forEach(function (b) { b.checked = !every; });
      update();
    });
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    selection.addEventListener("submit", function (event) {
      if (!event.defaultPrevented && !boxes.some(function (b) { return b.checked; })) {
        event.preventDefault();
        count.textContent = "Select at least one image first.";
      }
    });
    update();
  }

  // Favourites toggle in place.
  document.querySelectorAll("form.favourite-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var value = form.querySelector("input[name=favourite]");
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (data) {
          var button = form.querySelector("button.favourite");
          button.setAttribute("aria-pressed", data.favourite ? "true" : "false");
          button.querySelector("[aria-hidden]").textContent = data.favourite ? "★" : "☆";
          value.value = data.favourite ? "0" : "1";
          form.closest(".tile").classList.toggle("is-favourite", data.favourite);
        })
        .catch(function () { form.submit(); });
    });
  });

  // Before/after: the range moves the divider; left of it the photo, right of it the result.
  var compare = document.getElementById("compare");
  var range = document.getElementById("compare-range");
  if (compare && range) {
    // Sized from the script: the CSP refuses style attributes in the page's HTML.
    compare.style.aspectRatio = compare.dataset.width + " / " + compare.dataset.height;
    compare.style.maxWidth = compare.dataset.width + "px";
    var move = function () {
      compare.style.setProperty("--split", range.value + "%");
      range.setAttribute("aria-valuetext", (100 - range.value) + "% of the width shows the result");
    };
    range.addEventListener("input", move);
    move();
  }
})();

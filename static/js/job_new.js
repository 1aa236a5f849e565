// The new-job page: show the chosen model's preset and settings, and preview what the
// job will send (resolved by the server's validator) as the form changes.
(function () {
  var form = document.getElementById("new-job");
  if (!form) return;
  var timer = null;

  document.querySelectorAll("[data-fill-url]").forEach(function (b) {
    b.addEventListener("click", function () { var i = document.getElementById("id_image_url"); i.value = b.dataset.fillUrl; i.focus(); });
  });

  function selectedModel() {
    var checked = form.querySelector("input[name=model]:checked");
    return checked ? checked.value : "";
  }

  function showModel() {
    var model = selectedModel();
    var radio = form.querySelector("input[name=model]:checked");
    var available = !radio || radio.dataset.available === "true";
    document.getElementById("submit-job").disabled = !available;
    document.getElementById("needs-segmind").hidden = available;
    form.querySelectorAll(".model-settings").forEach(function (section) {
      var active = section.dataset.model === model;
      section.hidden = !active;
      // Only the chosen model's controls are submitted.
      section.querySelectorAll("select, input, textarea").forEach(function (el) { el.disabled = !active; });
    });
  }

  function render(data) {
    var list = document.getElementById("preview-params");
    var status = document.getElementById("preview-status");
    var size = document.getElementById("output-size");
    list.textContent = "";
    var errors = data.errors || {};
    var names = Object.keys(errors);
    var priceLine = document.getElementById("price-line");
    var notEnough = document.getElementById("not-enough");
    if (names.length) {
      status.textContent = "Fix these before submitting:";
      names.forEach(function (name) { add(list, name, errors[name], true); });
      size.hidden = true;
      priceLine.hidden = true;
      notEnough.hidden = true;
      return;
    }
    document.getElementById("price").textContent =
      data.price === 0 ? "free" : data.price + (data.price === 1 ? " credit" : " credits");
    document.getElementById("balance").textContent = data.balance;
    priceLine.hidden = false;
    notEnough.hidden = data.enough_credits;
    status.textContent = "The product photo is added when you submit.";
    Object.keys(data.params).forEach(function (name) { add(list, name, data.params[name], false); });
    if (data.output_size) {
      size.textContent = "Output " + data.output_size.width + " × " + data.output_size.height + " px";
      size.hidden = false;
    } else {
      size.hidden = true;
    }
  }

  function add(list, name, value, isError) {
    var dt = document.createElement("dt");
    dt.textContent = name;
    var dd = document.createElement("dd");
    dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
    if (isError) dd.className = "error";
    list.appendChild(dt);
    list.appendChild(dd);
  }

  function preview() {
    if (!selectedModel()) return;
    var data = new FormData(form);
    data.delete("image");
    fetch(form.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(render)
      .catch(function () { document.getElementById("preview-status").textContent = "Preview unavailable."; });
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(preview, 250); }

  form.addEventListener("change", function (e) {
    if (e.target.name === "model") showModel();
    schedule();
  });
  form.addEventListener("input", schedule);
  showModel();
  preview();
})();

// The new-job page: photos from pasted lines, a CSV or dropped files (one job each);
// the chosen model's preset and settings; a preview of what will be sent and the total
// price (resolved by the server's validator) as the form changes; and the placement
// canvas for models placed by x_value, y_value and scale.
(function () {
  var form = document.getElementById("new-job");
  if (!form) return;
  var timer = null;
  var urls = document.getElementById("id_image_url");
  var files = document.getElementById("id_image");
  var csvInput = document.getElementById("id_csv_file");
  var csvRows = 0;
  var firstPhoto = null; // an Image of the first chosen photo, for the placement preview

  var samples = document.querySelectorAll("[data-fill-url]");
  samples.forEach(function (b) {
    b.addEventListener("click", function () {
      // A second click takes the sample out again.
      var lines = urlLines();
      var at = lines.indexOf(b.dataset.fillUrl);
      if (at >= 0) lines.splice(at, 1);
      else lines.push(b.dataset.fillUrl);
      urls.value = lines.join("\n");
      urls.dispatchEvent(new Event("input", { bubbles: true }));
    });
  });

  function showSamples() {
    var lines = urlLines();
    samples.forEach(function (b) {
      b.setAttribute("aria-pressed", lines.indexOf(b.dataset.fillUrl) >= 0 ? "true" : "false");
    });
  }

  // Photos -------------------------------------------------------------------------------

  function urlLines() {
    return urls.value.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(Boolean);
  }

  function photoCount() {
    return urlLines().length + csvRows + (files.files ? files.files.length : 0);
  }

  function showPhotos() {
    var count = photoCount();
    var max = Number(form.dataset.maxItems);
    var line = document.getElementById("photo-count");
    if (count === 0) line.textContent = "";
    else if (count === 1) line.textContent = "1 photo: one job.";
    else line.textContent = count + " photos: one job each, grouped as a batch.";
    if (count > max) line.textContent += " That is more than " + max + " photos: split them.";
    showSamples();
    line.classList.toggle("error", count > max);
    var list = document.getElementById("file-list");
    list.textContent = "";
    Array.prototype.forEach.call(files.files || [], function (f) {
      var li = document.createElement("li");
      li.textContent = f.name;
      if (!/^image\/(jpeg|png|webp)$/.test(f.type)) {
        li.textContent += ": not a JPEG, PNG or WebP photo; it will be left out";
        li.className = "error";
      }
      list.appendChild(li);
    });
    loadFirstPhoto();
  }

  function loadFirstPhoto() {
    var src = null;
    var chosen = Array.prototype.filter.call(files.files || [], function (f) { return /^image\//.test(f.type); });
    if (chosen.length) src = URL.createObjectURL(chosen[0]);
    else if (urlLines().length && /^https?:\/\//i.test(urlLines()[0])) src = urlLines()[0];
    if (firstPhoto && firstPhoto.dataset.src === src) return;
    if (!src) { firstPhoto = null; drawPlacement(); return; }
    var img = new Image();
    img.dataset.src = src;
    img.onload = function () { firstPhoto = img; drawPlacement(); };
    img.onerror = function () { firstPhoto = null; drawPlacement(); };
    img.src = src;
  }

  csvInput.addEventListener("change", function () {
    csvRows = 0;
    var file = csvInput.files && csvInput.files[0];
    if (!file) { showPhotos(); schedule(); return; }
    var reader = new FileReader();
    reader.onload = function () {
      // Rows after the header with something in them: the server counts them the same way.
      var lines = String(reader.result).split(/\r?\n/).filter(function (l) { return l.replace(/[,;\s"]/g, ""); });
      csvRows = Math.max(0, lines.length - 1);
      showPhotos();
      schedule();
    };
    reader.readAsText(file);
  });

  var zone = document.getElementById("dropzone");
  document.getElementById("dropzone-hint").hidden = false;
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    // Dropped files join those already chosen, in the same multipart field.
    var all = new DataTransfer();
    Array.prototype.forEach.call(files.files || [], function (f) { all.items.add(f); });
    Array.prototype.forEach.call(e.dataTransfer.files, function (f) { all.items.add(f); });
    files.files = all.files;
    files.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // Model and settings -------------------------------------------------------------------

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
    drawPlacement();
  }

  // Preview and total price --------------------------------------------------------------

  var outputRatio = null;

  function credits(n) { return n === 0 ? "free" : n + (n === 1 ? " credit" : " credits"); }

  function render(data) {
    var list = document.getElementById("preview-params");
    var status = document.getElementById("preview-status");
    var size = document.getElementById("output-size");
    list.textContent = "";
    var errors = data.errors || {};
    var names = Object.keys(errors);
    var priceLine = document.getElementById("price-line");
    var notEnough = document.getElementById("not-enough");
    labels = data.labels || {};
    if (names.length) {
      status.textContent = "Fix these before submitting:";
      names.forEach(function (name) { add(list, name, errors[name], true); });
      size.hidden = true;
      priceLine.hidden = true;
      notEnough.hidden = true;
      return;
    }
    var count = data.count || 1;
    var price = credits(data.price);
    if (count > 1) price = data.price === 0 ? count + " images, free" : count + " images × " + price + " = " + credits(data.total);
    document.getElementById("price").textContent = price;
    showResolved(data.params);
    document.getElementById("balance").textContent = data.balance;
    priceLine.hidden = false;
    notEnough.hidden = data.enough_credits;
    document.getElementById("not-enough-text").textContent = count > 1
      ? "This batch needs " + data.total + " credits; your balance is " + data.balance + "."
      : "This job needs " + data.price + " credits; your balance is " + data.balance + ".";
    status.textContent = "The product photo is added to each job when you submit.";
    Object.keys(data.params).forEach(function (name) { add(list, name, data.params[name], false); });
    if (data.output_size) {
      size.textContent = "Output " + data.output_size.width + " × " + data.output_size.height + " px";
      size.hidden = false;
      outputRatio = data.output_size.width / data.output_size.height;
    } else {
      size.hidden = true;
      outputRatio = null;
    }
    var label = count > 1 ? "Submit " + count + " jobs" : "Submit job";
    // A preview answered while the form is being sent must not undo the button's progress.
    if (form.dataset.submitting === "true") idleLabel = label;
    else document.getElementById("submit-job").textContent = label;
    drawPlacement();
  }

  // What applies to each empty control (the preset's value or the default), for the
  // sliders, switches and placement marker to show.
  function showResolved(params) {
    var section = form.querySelector('.model-settings[data-model="' + selectedModel() + '"]');
    if (!section) return;
    var prefix = "param-" + selectedModel() + "-";
    section.querySelectorAll("[name^='" + prefix + "']").forEach(function (control) {
      var name = control.name.slice(prefix.length);
      if (!(name in params) || typeof params[name] === "object") return;
      control.dataset.resolved = String(params[name]);
      control.dispatchEvent(new Event("param-refresh"));
    });
  }

  var labels = {};

  // A parameter in words, its API name in small print under it (what an integrator sends).
  function add(list, name, value, isError) {
    var dt = document.createElement("dt");
    dt.textContent = labels[name] || name;
    if (labels[name] && labels[name] !== name) {
      var code = document.createElement("small");
      code.textContent = name;
      dt.appendChild(code);
    }
    var dd = document.createElement("dd");
    dd.textContent = typeof value === "string" ? value
      : typeof value === "boolean" ? (value ? "on" : "off") : JSON.stringify(value);
    if (!isError && typeof value === "string" && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(value)) {
      // The colour itself beside its code (set through the CSSOM, which the CSP allows).
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.setAttribute("aria-hidden", "true");
      swatch.style.backgroundColor = value;
      dd.insertBefore(swatch, dd.firstChild);
    }
    if (isError) dd.className = "error";
    list.appendChild(dt);
    list.appendChild(dd);
  }

  function preview() {
    if (!selectedModel()) return;
    var data = new FormData(form);
    data.delete("image");
    data.delete("csv_file");
    data.set("count", String(Math.max(1, photoCount())));
    fetch(form.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(render)
      .catch(function () { document.getElementById("preview-status").textContent = "Preview unavailable."; });
  }

  function schedule() { clearTimeout(timer); timer = setTimeout(preview, 250); }

  // Placement ----------------------------------------------------------------------------

  function placementParts() {
    var section = form.querySelector('.model-settings[data-model="' + selectedModel() + '"]');
    var canvas = section && section.querySelector(".placement-canvas");
    if (!canvas) return null;
    return {
      canvas: canvas,
      x: document.getElementById(canvas.dataset.x),
      y: document.getElementById(canvas.dataset.y),
      scale: document.getElementById(canvas.dataset.scale),
    };
  }

  function valueOf(input) {
    if (input.value !== "") return Number(input.value);
    return Number(input.dataset.resolved !== undefined ? input.dataset.resolved : input.placeholder || 0);
  }

  function drawPlacement() {
    var p = placementParts();
    if (!p) return;
    var canvas = p.canvas;
    // The position is in the output's frame: its shape when the preview knows it, the
    // photo's otherwise; the photo is fitted inside it.
    var photoRatio = firstPhoto ? firstPhoto.naturalWidth / firstPhoto.naturalHeight : null;
    var ratio = outputRatio || photoRatio || 1;
    canvas.width = 320;
    canvas.height = Math.round(320 / ratio);
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#eef0f6";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (firstPhoto) {
      var fit = Math.min(canvas.width / firstPhoto.naturalWidth, canvas.height / firstPhoto.naturalHeight);
      var w = firstPhoto.naturalWidth * fit, h = firstPhoto.naturalHeight * fit;
      ctx.drawImage(firstPhoto, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
    }
    var x = valueOf(p.x) / 100 * canvas.width;
    var y = valueOf(p.y) / 100 * canvas.height;
    var side = Math.max(6, valueOf(p.scale) * Math.min(canvas.width, canvas.height));
    ctx.strokeStyle = "#4338ca";
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.strokeRect(x - side / 2, y - side / 2, side, side);
    ctx.setLineDash([]);
    ctx.fillStyle = "#4338ca";
    ctx.beginPath();
    ctx.arc(x, y, 5, 0, 2 * Math.PI);
    ctx.fill();
    canvas.setAttribute("aria-label", "Placement preview: the product at " + Math.round(valueOf(p.x)) +
      "% across and " + Math.round(valueOf(p.y)) + "% down; click or use the arrow keys to move it");
  }

  function setPlacement(p, x, y) {
    var clamp = function (v) { return Math.min(100, Math.max(1, Math.round(v))); };
    p.x.value = clamp(x);
    p.y.value = clamp(y);
    [p.x, p.y].forEach(function (input) { input.dispatchEvent(new Event("input", { bubbles: true })); });
  }

  form.querySelectorAll(".placement").forEach(function (block) {
    block.hidden = false;
    var canvas = block.querySelector("canvas");
    canvas.addEventListener("click", function (e) {
      var p = placementParts();
      if (!p) return;
      var box = canvas.getBoundingClientRect();
      setPlacement(p, (e.clientX - box.left) / box.width * 100, (e.clientY - box.top) / box.height * 100);
    });
    canvas.addEventListener("keydown", function (e) {
      var p = placementParts();
      var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (!p || !moves[e.key]) return;
      e.preventDefault();
      var step = e.shiftKey ? 10 : 1;
      setPlacement(p, valueOf(p.x) + moves[e.key][0] * step, valueOf(p.y) + moves[e.key][1] * step);
    });
  });

  // Wiring -------------------------------------------------------------------------------

  form.addEventListener("change", function (e) {
    if (e.target.name === "model") showModel();
    if (e.target === files) showPhotos();
    drawPlacement();
    schedule();
  });
  form.addEventListener("input", function (e) {
    if (e.target === urls) showPhotos();
    drawPlacement();
    schedule();
  });
  // Submitting: every photo is fetched and checked before any job is made, which takes
  // seconds for a batch. Say so at once, and keep a second click from sending it twice.
  var submitButton = document.getElementById("submit-job");
  var progress = document.getElementById("submit-progress");
  var idleLabel = submitButton.textContent;

  form.addEventListener("submit", function (e) {
    if (form.dataset.submitting === "true") { e.preventDefault(); return; }
    form.dataset.submitting = "true";
    var count = photoCount();
    var uploads = files.files ? files.files.length : 0;
    var what = count === 1 ? "your photo" : count + " photos";
    var text = (uploads ? "Uploading and checking " : "Checking ") + what + "…";
    idleLabel = submitButton.textContent;
    submitButton.disabled = true;
    submitButton.setAttribute("aria-busy", "true");
    submitButton.textContent = "";
    var spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    submitButton.appendChild(spinner);
    submitButton.appendChild(document.createTextNode(text));
    // Said to screen readers too (a live region): the button's new text is not.
    progress.textContent = count > 1
      ? "The " + count + " photos are fetched and checked before the batch is made; this page moves on by itself."
      : "Your photo is " + (uploads ? "sent and " : "") + "checked before the job is made.";
  });

  // Back from the next page (the browser's cache keeps this one as it was left).
  window.addEventListener("pageshow", function () {
    if (form.dataset.submitting !== "true") return;
    form.dataset.submitting = "false";
    submitButton.removeAttribute("aria-busy");
    submitButton.textContent = idleLabel;
    progress.textContent = "";
    showModel();
  });

  // A setting the server refused: open its section and put the cursor in it.
  var refused = form.querySelector(".model-settings:not([hidden]) .param.has-error");
  if (refused) {
    var section = refused.closest("details");
    if (section) section.open = true;
    var control = refused.querySelector("input:not([type=hidden]):not([hidden]), select:not([hidden]), textarea");
    if (control) control.focus();
  }

  showModel();
  showPhotos();
  preview();
})();

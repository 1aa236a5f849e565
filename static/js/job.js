// Keeps the job page current without reloading it: the status badge, the time taken
// against the usual, why it failed or waits, and the result images once done.
(function () {
  var box = document.getElementById("job-status");
  if (!box) return;
  var T = window.psTiming;
  var status = box.dataset.status;
  var elapsed = parseFloat(box.dataset.elapsed) || 0;
  var typical = parseFloat(box.dataset.typical) || null;
  var since = Date.now();
  var $ = function (id) { return document.getElementById(id); };

  function show(id, visible) { var el = $(id); if (el) el.hidden = !visible; }

  function renderTiming() {
    var now = T.isTerminal(status) ? elapsed : elapsed + (Date.now() - since) / 1000;
    $("job-timing").textContent = T.text(status, now, typical);
    var bar = $("job-progress-bar");
    bar.hidden = T.isTerminal(status);
    if (typical) { bar.max = typical; bar.value = Math.min(now, typical); }
  }

  function renderOutputs(outputs) {
    var list = $("job-outputs");
    if (!list || list.children.length || !outputs.length) return;
    outputs.forEach(function (output) {
      var figure = document.createElement("figure");
      figure.className = "output";
      var img = document.createElement("img");
      // The checkerboard only behind an image that has transparent pixels.
      img.className = output.transparent ? "preview checker" : "preview";
      img.src = output.url;
      img.alt = "The result of this job";
      img.width = output.width;
      img.height = output.height;
      var caption = document.createElement("figcaption");
      caption.className = "muted small";
      caption.textContent = output.width + " \u00d7 " + output.height + " " + output.format;
      var p = document.createElement("p");
      var link = document.createElement("a");
      link.className = "btn";
      link.href = output.download_url;
      link.textContent = "Download";
      p.appendChild(link);
      figure.append(img, caption, p);
      list.appendChild(figure);
    });
  }

  function render(data) {
    var badge = box.querySelector(".status");
    badge.className = "status status-" + data.status;
    badge.textContent = data.label;
    badge.removeAttribute("title");
    box.dataset.status = data.status;
    $("job-price").textContent = data.price_note;
    $("job-error-message").textContent = data.error_message;
    $("job-error-code").textContent = data.error_code;
    $("job-waiting-message").textContent = data.waiting_message;
    var notice = $("job-notice-message");
    if (notice) notice.textContent = data.notice || "";
    show("job-notice", !!data.notice);
    show("job-failed", data.status === "failed");
    show("job-waiting", data.status === "waiting_for_provider");
    show("job-progress", data.status !== "waiting_for_provider");
    show("job-pending", !data.terminal);
    show("job-no-result", data.terminal && !data.outputs.length);
    var pending = $("job-pending-text");
    if (pending) {
      pending.textContent = (data.status === "waiting_for_provider" ? "Waiting for Segmind\u2026" : "Working on it\u2026") + " this page updates by itself.";
    }
    show("job-cancel", data.status === "queued" || data.status === "waiting_for_provider");
    renderOutputs(data.outputs);
  }

  // A queued job's place in line and estimated start, said again at each poll.
  function renderQueue(queue) {
    var line = $("job-queue");
    if (!line) return;
    line.textContent = queue ? queue.text : "";
    line.hidden = !queue;
    // Waiting its turn is not taking longer than usual: the line says when it starts.
    show("job-progress", !queue && status !== "waiting_for_provider");
  }

  var ticker = T.isTerminal(status) ? null : setInterval(renderTiming, 1000);
  T.isTerminal(status) || T.poll(box.dataset.statusUrl, function (data) {
    var changed = data.status !== status;
    status = data.status;
    elapsed = data.elapsed_seconds;
    typical = data.typical_seconds;
    since = Date.now();
    if (changed) {
      render(data);
      var said = data.label + (data.status === "failed" ? ": " + data.error_message : "");
      $("job-announce").textContent = "Job status: " + said;
    }
    renderQueue(data.queue);
    renderTiming();
    if (data.terminal) { clearInterval(ticker); return true; }
    return changed ? "changed" : false;
  });
})();

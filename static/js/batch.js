// Keeps the batch page current without reloading it: the progress bar and counts, each
// job's status and time, retry buttons for failed jobs, and "All done" at the end.
(function () {
  var box = document.getElementById("batch");
  if (!box) return;
  var T = window.psTiming;
  var $ = function (id) { return document.getElementById(id); };
  var elapsed = parseFloat(box.dataset.elapsed) || 0;
  var complete = box.dataset.complete === "1";
  var since = Date.now();
  var jobs = {};  // id -> {status, elapsed, typical}

  function tick() {
    var extra = (Date.now() - since) / 1000;
    if (!complete) $("batch-elapsed").textContent = "Running for " + T.words(elapsed + extra);
    document.querySelectorAll("#batch-jobs tr[data-job-id]").forEach(function (row) {
      var job = jobs[row.dataset.jobId];
      if (!job || T.isTerminal(job.status)) return;
      row.querySelector(".job-timing").textContent = T.text(job.status, job.elapsed + extra, job.typical);
    });
  }

  function statusBadge(job) {
    var badge = document.createElement("span");
    badge.className = "status status-" + job.status;
    badge.textContent = job.label;
    return badge;
  }

  function newRow(job) {
    var row = document.createElement("tr");
    row.dataset.jobId = job.id;
    row.innerHTML = '<td class="job-result"></td><td class="job-photo"><a></a><p class="error job-error" hidden></p></td><td class="job-sku"><span class="no-sku">\u2013</span></td>' +
      '<td class="job-status"></td><td class="job-timing muted small"></td><td class="job-actions"></td>';
    var link = row.querySelector("a");
    link.href = job.url;
    link.textContent = "New job";
    $("batch-jobs").appendChild(row);
    return row;
  }

  // A finished job's first result, as a thumbnail linking to the image's page.
  function renderResult(row, result) {
    var cell = row.querySelector(".job-result");
    if (!result || cell.querySelector("img")) return;
    var link = document.createElement("a");
    link.href = result.url;
    var img = document.createElement("img");
    if (result.transparent) img.className = "checker";
    img.src = result.thumbnail_url;
    img.alt = result.alt;
    img.width = 64;
    img.height = 64;
    link.appendChild(img);
    cell.replaceChildren(link);
  }

  function renderJob(job) {
    var row = document.querySelector('#batch-jobs tr[data-job-id="' + job.id + '"]') || newRow(job);
    renderResult(row, job.result);
    var changed = row.dataset.status !== job.status || row.dataset.retried !== String(job.retried);
    row.querySelector(".job-timing").textContent = job.timing;
    if (!changed) return false;
    row.dataset.status = job.status;
    row.dataset.retried = String(job.retried);
    var cell = row.querySelector(".job-status");
    cell.replaceChildren(statusBadge(job));
    var error = row.querySelector(".job-error");
    error.textContent = job.error_message;
    error.hidden = job.status !== "failed";
    var actions = row.querySelector(".job-actions");
    actions.replaceChildren();
    if (job.status === "failed" && job.retried) {
      var note = document.createElement("span");
      note.className = "muted small";
      note.textContent = "Retried";
      actions.appendChild(note);
    } else if (job.status === "failed") {
      var form = $("job-retry-template").content.firstElementChild.cloneNode(true);
      form.action = job.rerun_url;
      actions.appendChild(form);
    }
    return true;
  }

  function render(data) {
    var p = data.progress;
    var bar = $("batch-progress");
    bar.max = p.total || 1;
    bar.value = p.done;
    $("batch-progress-label").textContent = p.done + " of " + p.total + " done";
    document.querySelectorAll("#batch-counts [data-count]").forEach(function (item) {
      var n = p[item.dataset.count] || 0;
      item.querySelector("strong").textContent = n;
      if (item.dataset.count === "waiting_for_provider" || item.dataset.count === "canceled") item.hidden = !n;
    });
    $("batch-elapsed").textContent = data.elapsed_text;
    var estimate = $("batch-estimate");
    estimate.textContent = data.estimated_finish_text;
    estimate.hidden = !data.estimated_finish_text;
    $("batch-retry").hidden = !data.retryable;
    var changed = false;
    data.jobs.forEach(function (job) {
      jobs[job.id] = { status: job.status, elapsed: job.elapsed_seconds, typical: job.typical_seconds };
      changed = renderJob(job) || changed;
    });
    $("batch-results").textContent = data.results;
    $("batch-results-plural").textContent = data.results === 1 ? "" : "s";
    $("batch-done").hidden = !data.complete;
    return changed;
  }

  var ticker = complete ? null : setInterval(tick, 1000);
  complete || T.poll(box.dataset.statusUrl, function (data) {
    elapsed = data.elapsed_seconds;
    since = Date.now();
    var changed = render(data);
    if (changed) {
      $("batch-announce").textContent = data.complete
        ? "All done: " + data.results + " result" + (data.results === 1 ? "" : "s") + "."
        : data.progress.done + " of " + data.progress.total + " jobs done.";
    }
    if (data.complete) { complete = true; clearInterval(ticker); return true; }
    return changed ? "changed" : false;
  });
})();

// Refreshes the job page once the job's status changes, so the result appears by itself.
(function () {
  var el = document.getElementById("job-status");
  if (!el || ["succeeded", "failed", "canceled"].indexOf(el.dataset.status) !== -1) return;
  var delay = 1000;
  function poll() {
    fetch(el.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.status !== el.dataset.status) { window.location.reload(); return; }
        delay = Math.min(delay * 1.3, 5000);
        setTimeout(poll, delay);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, delay);
})();

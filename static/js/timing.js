// The time a job has taken against the usual, said as jobs.views.progress.timing_text says it:
// the job and batch pages tick it between two polls.
window.psTiming = (function () {
  function words(seconds) {
    seconds = Math.round(seconds);
    if (seconds < 60) return seconds + " s";
    var rest = seconds % 60;
    return Math.floor(seconds / 60) + " min " + (rest < 10 ? "0" : "") + rest + " s";
  }
  function text(status, elapsed, typical) {
    var usual = typical ? "about " + words(typical) : "";
    if (status === "succeeded") return "Took " + words(elapsed) + (usual ? " (usually " + usual + ")" : "");
    if (status === "failed" || status === "canceled") return "Ended after " + words(elapsed);
    if (!typical) return words(elapsed) + " so far";
    if (elapsed <= typical) return words(elapsed) + " of " + usual;
    return words(elapsed) + " so far, longer than the usual " + words(typical);
  }
  var TERMINAL = ["succeeded", "failed", "canceled"];
  function isTerminal(status) { return TERMINAL.indexOf(status) !== -1; }
  // Polls `url` with a growing delay (reset when something changes) until `onData`
  // returns true (finished); a failed request waits longer before trying again.
  function poll(url, onData) {
    var delay = 1000;
    function next() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { delay = 5000; setTimeout(next, delay); return; }
          var result = onData(data);
          if (result === true) return;
          delay = result === "changed" ? 1000 : Math.min(delay * 1.3, 5000);
          setTimeout(next, delay);
        })
        .catch(function () { setTimeout(next, 5000); });
    }
    setTimeout(next, delay);
  }
  return { words: words, text: text, isTerminal: isTerminal, poll: poll };
})();

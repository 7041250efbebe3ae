// Live progress for an attempt: poll the JSON status and redraw the stages; reload once it has finished so the
// report (or the failure reason) appears. Without JavaScript a <meta refresh> does the same, more slowly.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || box.dataset.finished === "true") { return; }
  var url = box.dataset.statusUrl;
  var delay = 1500;

  function draw(data) {
    var stageNames = data.stages.map(function (s) { return s.name; });
    Array.prototype.forEach.call(box.querySelectorAll("ol.stages li"), function (li) {
      var name = li.dataset.stage, state = "waiting";
      if (name === "queued") {
        state = data.status === "queued" ? "current" : "done";
      } else if (name === "end") {
        state = data.status === "scored" ? "done" : (data.status === "failed" ? "failed" : "waiting");
        li.textContent = data.status === "failed" ? "failed" : "scored";
      } else if (stageNames.indexOf(name) >= 0) {
        state = data.stages[stageNames.indexOf(name)].state;
      }
      li.className = "stage-" + state;
    });
    var text = document.getElementById("status-text");
    if (text) { text.textContent = data.status + (data.status === "running" && data.stage ? ": " + data.stage : ""); }
    var message = document.getElementById("status-message");
    if (message) {
      message.textContent = data.status === "failed" ? "Failed: " + (data.failure_reason || "")
        : data.status === "queued" ? "Waiting for a worker to pick this up…" : (data.message || "");
    }
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (data) {
        draw(data);
        if (data.finished) { window.location.reload(); return; }
        delay = 1500;
        window.setTimeout(poll, delay);
      })
      .catch(function () { delay = Math.min(delay * 2, 15000); window.setTimeout(poll, delay); });
  }
  window.setTimeout(poll, delay);
})();

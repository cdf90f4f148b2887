// The progress of a CSV import (templates/admin/crm/importjob/detail.html):
// polls the import's JSON every 2 s until it has finished, then reloads the
// page once so that the refused rows and the error CSV link appear.
(function () {
  "use strict";
  if (!window.fetch) { return; }

  function start() {
    var box = document.getElementById("import-progress");
    if (!box || box.dataset.finished === "1") { return; }
    function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
    var timer = window.setInterval(function () {
      fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          field("bar").value = data.percent;
          field("percent").textContent = data.percent;
          field("done").textContent = data.done;
          field("total").textContent = data.total;
          field("status_label").textContent = data.status_label;
          data.counts.forEach(function (item) {
            var cell = box.querySelector('[data-count="' + item.key + '"]');
            if (cell) { cell.textContent = item.count; }
          });
          if (data.finished) {
            window.clearInterval(timer);
            box.dataset.finished = "1";
            window.location.reload();
          }
        })
        .catch(function () { /* a missed poll: the next one tries again */ });
    }, 2000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// Live progress of the sends on a page (templates/admin/outreach/includes/
// send_progress.html): every box with a data-url polls its JSON every 3 s
// until its send has finished and nothing is pending. A change of state
// (finished, paused elsewhere) reloads the page, so its buttons are redrawn.
// Included once per box; each box is watched once.
(function () {
  "use strict";
  if (!window.fetch) { return; }
  var finished = ["completed", "cancelled"];

  function number(n) { return Number(n).toLocaleString(); }
  function done(status, pending) { return finished.indexOf(status) !== -1 && pending === 0; }

  function watch(box) {
    if (box.dataset.watched) { return; }
    box.dataset.watched = "1";
    var none = box.dataset.none || "";
    function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
    function show(data) {
      field("bar").value = data.percent;
      field("percent").textContent = data.percent;
      field("done").textContent = number(data.done);
      field("total").textContent = number(data.total);
      var notice = field("notice");
      if (notice) {
        notice.textContent = data.notice || "";
        notice.hidden = !data.notice;
      }
      var heldOut = field("held_out");
      if (heldOut) { heldOut.textContent = number(data.held_out || 0); }
      data.by_status.forEach(function (item) {
        var cell = box.querySelector('[data-status="' + item.status + '"]');
        if (cell) { cell.textContent = number(item.count); }
      });
      var list = field("reasons");
      list.replaceChildren();
      data.by_reason.forEach(function (item) {
        var li = document.createElement("li");
        li.textContent = item.label + ": " + number(item.count);
        list.appendChild(li);
      });
      if (!data.by_reason.length) {
        var li = document.createElement("li");
        li.className = "quiet";
        li.textContent = none;
        list.appendChild(li);
      }
    }
    if (done(box.dataset.status, parseInt(box.dataset.pending, 10))) { return; }
    var timer = window.setInterval(function () {
      fetch(box.dataset.url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          show(data);
          if (data.status !== box.dataset.status) {
            window.clearInterval(timer);
            window.location.reload();
          } else if (done(data.status, data.pending)) {
            window.clearInterval(timer);
          }
        })
        .catch(function () { /* a missed poll: the next one tries again */ });
    }, 3000);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".send-progress[data-url]"), watch);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

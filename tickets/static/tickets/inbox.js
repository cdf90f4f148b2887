/* The inbox (tickets/admin/inbox.py): asks every few seconds, and when the
   agent comes back to the tab, how many inquiries of the list as filtered
   had a customer message since the page was drawn; shows 「新着 N件 — 更新」,
   which reloads the same list (filters, search, page) with the same rows
   ticked. A static file: the Content-Security-Policy allows no inline script. */
(function () {
  "use strict";
  var SELECTED_KEY = "madoguchi.inbox.selected";

  // After the admin's actions.js has set up the checkboxes (it does so on
  // DOMContentLoaded, which a deferred script runs before).
  function ready(fn) {
    if (document.readyState === "complete") {
      fn();
    } else {
      window.addEventListener("load", fn);
    }
  }

  function checkboxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#result_list input.action-select"));
  }

  function restoreSelection() {
    var saved;
    try {
      saved = JSON.parse(sessionStorage.getItem(SELECTED_KEY) || "null");
    } catch (error) {
      saved = null;
    }
    sessionStorage.removeItem(SELECTED_KEY);
    if (!saved || saved.path !== location.pathname + location.search) {
      return;
    }
    checkboxes().forEach(function (box) {
      if (saved.ids.indexOf(box.value) !== -1) {
        // Ticked again (the browser may have restored the tick itself); the
        // admin's actions.js listens for this: row colour and "N of M selected".
        box.checked = true;
        box.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }

  function saveSelection() {
    var ids = checkboxes().filter(function (box) { return box.checked; }).map(function (box) { return box.value; });
    sessionStorage.setItem(SELECTED_KEY, JSON.stringify({ path: location.pathname + location.search, ids: ids }));
  }

  ready(function () {
    var status = document.getElementById("inbox-status");
    if (!status) {
      return;
    }
    var link = document.getElementById("inbox-new");
    var unread = document.getElementById("inbox-unread-count");
    var seconds = Math.max(parseInt(status.dataset.pollSeconds, 10) || 30, 5);
    var busy = false;

    restoreSelection();
    link.addEventListener("click", function (event) {
      event.preventDefault();
      saveSelection();
      location.reload();
    });

    function poll() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      var params = new URLSearchParams(location.search);
      params.set("since", status.dataset.since);
      fetch(status.dataset.newsUrl + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) {
            return;
          }
          unread.textContent = data.unread_text;
          if (data.new > 0) {
            link.textContent = data.new_text;
            link.hidden = false;
          }
        })
        .catch(function () { /* offline for a moment: the next poll tries again */ })
        .then(function () { busy = false; });
    }

    setInterval(poll, seconds * 1000);
    window.addEventListener("focus", poll);
    document.addEventListener("visibilitychange", poll);
  });
})();

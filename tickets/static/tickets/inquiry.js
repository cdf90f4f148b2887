/* The inquiry page (tickets/admin/inquiry_page.py): the reply-template
 * picker, the presence heartbeat with its warnings, and "rewrite a returned
 * reply". Plain JavaScript, no library. */
(function () {
  "use strict";

  var page = document.getElementById("inquiry-page");
  if (!page) { return; }
  var body = document.getElementById("id_reply-body");
  var status = document.getElementById("template-status");

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function fill(pattern, names) {
    return pattern.replace("%(names)s", names.join("、"));
  }

  function say(text) {
    if (!status) { return; }
    status.textContent = text || "";
    status.hidden = !text;
  }

  // --- Template picker: the server renders the template with this inquiry's
  // customer, the chosen order and the date; the agent edits the result.
  var picker = {
    template: document.getElementById("id_pick-template"),
    order: document.getElementById("id_pick-order"),
    date: document.getElementById("id_pick-date"),
    time: document.getElementById("id_pick-time"),
    channel: document.getElementById("id_reply-channel")
  };
  var lastFilled = null;

  function render() {
    if (!body || !picker.template || !picker.template.value) { return; }
    var params = new URLSearchParams({
      template: picker.template.value,
      order: picker.order ? picker.order.value : "",
      date: picker.date ? picker.date.value : "",
      time: picker.time ? picker.time.value : "",
      channel: picker.channel ? picker.channel.value : ""
    });
    fetch(page.dataset.templateUrl + "?" + params.toString(), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.error) { say(data.error); return; }
        var typed = body.value.trim();
        if (typed && typed !== (lastFilled || "").trim() &&
            !window.confirm(page.dataset.replaceConfirm)) {
          return;
        }
        body.value = data.body;
        lastFilled = data.body;
        say(data.missing && data.missing.length ? fill(page.dataset.missingPattern, data.missing) : "");
      })
      .catch(function () { say("⚠"); });
  }

  ["template", "order", "date", "time", "channel"].forEach(function (name) {
    if (picker[name]) { picker[name].addEventListener("change", render); }
  });

  // --- A returned reply goes back into the reply box to be rewritten.
  Array.prototype.forEach.call(document.querySelectorAll(".js-reuse"), function (button) {
    button.addEventListener("click", function () {
      if (!body) { return; }
      body.value = button.dataset.body;
      body.focus();
      body.scrollIntoView({ behavior: "smooth", block: "center" });
    });
  });

  // --- Presence: who else has this inquiry open, and did someone reply
  // since the page loaded? The send itself is checked again on the server.
  var presenceAlert = document.getElementById("presence-alert");
  var newerAlert = document.getElementById("newer-alert");
  var seen = page.dataset.latest;
  var seconds = parseInt(page.dataset.heartbeat, 10) || 20;

  function heartbeat() {
    var form = new FormData();
    form.append("csrfmiddlewaretoken", csrfToken());
    form.append("seen", seen);
    fetch(page.dataset.presenceUrl, { method: "POST", body: form, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (presenceAlert) {
          presenceAlert.textContent = data.viewers.length ? fill(page.dataset.presencePattern, data.viewers) : "";
          presenceAlert.hidden = !data.viewers.length;
        }
        if (newerAlert) {
          if (data.newer_replies.length) {
            newerAlert.textContent = fill(page.dataset.newerPattern, data.newer_replies);
          } else if (data.newer_messages) {
            newerAlert.textContent = page.dataset.newerMessagesPattern;
          }
          newerAlert.hidden = !(data.newer_replies.length || data.newer_messages);
        }
      })
      .catch(function () { /* a missed heartbeat is harmless */ });
  }

  heartbeat();
  window.setInterval(heartbeat, seconds * 1000);
  window.addEventListener("pagehide", function () {
    if (!navigator.sendBeacon) { return; }
    var form = new FormData();
    form.append("csrfmiddlewaretoken", csrfToken());
    form.append("leave", "1");
    navigator.sendBeacon(page.dataset.presenceUrl, form);
  });
})();

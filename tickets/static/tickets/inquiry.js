/* The inquiry page (tickets/admin/inquiry_page.py): the controls without a
 * reload, the reply-template picker, the presence heartbeat with its
 * warnings, and "rewrite a returned reply". Plain JavaScript, no library. */
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

  // --- The controls (assign, category, priority, status, note...): a form
  // with data-update-url is posted there instead of reloading the page; the
  // answer carries the parts of the page that show the change (each element
  // with data-fragment="<name>"), or the reason it was refused, shown above
  // the form. Without this script the forms post as usual.
  var updateMessages = document.getElementById("update-messages");

  function tell(text) {
    if (!updateMessages) { return; }
    updateMessages.textContent = "";
    if (text) {
      var item = document.createElement("li");
      item.className = "success";
      item.textContent = text;
      updateMessages.appendChild(item);
    }
    updateMessages.hidden = !text;
  }

  function refusal(form, text) {
    var note = form.querySelector(".update-error");
    if (!text) {
      if (note) { note.remove(); }
      return;
    }
    if (!note) {
      note = document.createElement("p");
      note.className = "errornote update-error";
      note.setAttribute("role", "alert");
      form.insertBefore(note, form.firstChild);
    }
    note.textContent = text;
  }

  function replaceFragments(fragments) {
    Object.keys(fragments).forEach(function (name) {
      var old = page.querySelector('[data-fragment="' + name + '"]');
      if (!old) { return; }
      var holder = document.createElement("div");
      holder.innerHTML = fragments[name];
      var fresh = holder.querySelector('[data-fragment="' + name + '"]');
      if (!fresh) { return; }
      // an open timeline stays open
      var details = old.querySelector("details");
      var freshDetails = fresh.querySelector("details");
      if (details && freshDetails && details.open) { freshDetails.open = true; }
      old.replaceWith(fresh);
      // a note of mine is no news for the heartbeat
      if (fresh.dataset.latest) { seen = fresh.dataset.latest; }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.matches("form[data-update-url]") || !page.contains(form)) {
      return;
    }
    event.preventDefault();
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    fetch(form.dataset.updateUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") !== 0) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        if (data.error) {
          refusal(form, data.error);
          tell("");
          return;
        }
        refusal(form, "");
        if (data.fragments) { replaceFragments(data.fragments); }
        var box = form.querySelector("textarea");
        if (box && document.body.contains(form)) { box.value = ""; }
        tell(data.message);
      })
      .catch(function () { refusal(form, page.dataset.updateFailed); })
      .then(function () {
        Array.prototype.forEach.call(buttons, function (button) { button.disabled = false; });
      });
  });

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

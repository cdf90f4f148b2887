// The broadcast panel (templates/admin/crisis/incident/includes/broadcast.html):
// offer only the templates of the chosen channel, show the quiet-hours reason
// only when the manager chooses to send now, and copy an announcement.
(function () {
  "use strict";
  function channelFilter(form) {
    var channel = form.querySelector("select[name$='-channel']");
    var template = form.querySelector("select[name$='-template']");
    if (!channel || !template) { return; }
    function filter() {
      Array.prototype.forEach.call(template.options, function (option) {
        var other = option.dataset.channel && option.dataset.channel !== channel.value;
        option.hidden = option.disabled = Boolean(other);
        if (other && option.selected) { template.value = ""; }
      });
    }
    channel.addEventListener("change", filter);
    filter();
  }
  function reasonToggle(form) {
    var box = form.querySelector("input[name$='-override_quiet_hours']");
    var reason = form.querySelector(".broadcast-reason");
    if (!box || !reason) { return; }
    function show() { reason.hidden = !box.checked; }
    box.addEventListener("change", show);
    show();
  }
  function copyButtons(panel) {
    Array.prototype.forEach.call(panel.querySelectorAll(".broadcast-copy"), function (button) {
      button.addEventListener("click", function () {
        var area = document.getElementById(button.dataset.target);
        var copied = button.parentNode.querySelector(".broadcast-copied");
        function done() { if (copied) { copied.hidden = false; } }
        area.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(area.value).then(done, function () {
            if (document.execCommand("copy")) { done(); }
          });
        } else if (document.execCommand("copy")) {
          done();
        }
      });
    });
  }
  function start() {
    var panel = document.getElementById("broadcast-panel");
    if (!panel) { return; }
    Array.prototype.forEach.call(panel.querySelectorAll("form.broadcast-form"), channelFilter);
    Array.prototype.forEach.call(panel.querySelectorAll("form.broadcast-form"), reasonToggle);
    copyButtons(panel);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

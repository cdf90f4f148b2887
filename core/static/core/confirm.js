/* Asks before a grave step, without inline event handlers (the
   Content-Security-Policy allows none): a form with data-confirm asks when
   it is submitted, a button with data-confirm when it is clicked. The text
   is the attribute's value; "Cancel" stops the step. */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-confirm], input[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();

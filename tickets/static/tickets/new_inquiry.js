/* The new-inquiry form (tickets/admin/inquiries.py): the order picker asks
 * the server for the chosen customer's orders only (tickets/admin/calls.py,
 * PickerAutocompleteView), and forgets its choice when the customer
 * changes. Runs after the admin's autocomplete.js has set up the pickers. */
"use strict";
{
  const $ = django.jQuery;

  $(function () {
    const order = document.getElementById("id_order");
    const customer = document.getElementById("id_customer");
    if (!order || !customer || !order.classList.contains("admin-autocomplete")) { return; }
    $(order).select2("destroy");
    $(order).select2({
      ajax: {
        data: function (params) {
          return {
            term: params.term,
            page: params.page,
            app_label: order.dataset.appLabel,
            model_name: order.dataset.modelName,
            field_name: order.dataset.fieldName,
            customer: customer.value
          };
        }
      }
    });
    $(customer).on("change", function () { $(order).val(null).trigger("change"); });
  });
}

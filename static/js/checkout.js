/* The checkout page: Stripe's Payment Element for the order's PaymentIntent.
 * Works with real Stripe.js and with the local emulator's stand-in (same calls). After a
 * confirmation the page goes to the order, which asks Stripe itself whether it is paid. */
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  if (!form || typeof window.Stripe !== "function") return;
  var button = document.getElementById("pay-button");
  var message = document.getElementById("payment-message");
  var stripe = window.Stripe(form.dataset.publishableKey);
  var elements = stripe.elements({clientSecret: form.dataset.clientSecret});
  var payment = elements.create("payment");
  payment.mount("#payment-element");
  button.disabled = false;

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    show("");
    stripe.confirmPayment({
      elements: elements,
      redirect: "if_required",
      confirmParams: {return_url: form.dataset.returnUrl},
    }).then(function (result) {
      if (result.error) {
        show(result.error.message || "The payment did not go through.");
        button.disabled = false;
        return;
      }
      window.location.assign(form.dataset.returnUrl);
    }, function () {
      show("The payment service could not be reached. Try again.");
      button.disabled = false;
    });
  });
})();

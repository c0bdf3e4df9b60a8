/* Stripe.js stand-in served by the marketplace's Stripe emulator (test mode only).
 *
 * The subset of Stripe.js v3 a Payment Element checkout uses, so one checkout page works with
 * real Stripe.js and with this file:
 *   const stripe = Stripe(publishableKey);
 *   const elements = stripe.elements({clientSecret});
 *   const payment = elements.create("payment"); payment.mount("#payment-element");
 *   const {error, paymentIntent} = await stripe.confirmPayment({elements, redirect: "if_required",
 *                                                               confirmParams: {return_url}});
 * Instead of Stripe's iframe it draws plain inputs (card number, expiry, CVC). Test cards:
 * 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var API = script && script.src ? new URL(script.src).origin : window.location.origin;

  function encode(params, prefix, out) {
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      var name = prefix ? prefix + "[" + key + "]" : key;
      if (value === undefined || value === null) return;
      if (typeof value === "object") encode(value, name, out);
      else out.append(name, String(value));
    });
    return out;
  }

  function post(path, params) {
    return fetch(API + path, {method: "POST", body: encode(params, "", new URLSearchParams())})
      .then(function (response) {
        return response.json().then(function (body) {
          return {ok: response.ok, status: response.status, body: body};
        });
      });
  }

  function intentId(clientSecret) {
    return String(clientSecret || "").split("_secret_")[0];
  }

  function stripeError(result) {
    var error = (result.body && result.body.error) || {};
    return {
      type: result.status === 402 ? "card_error" : (error.type || "invalid_request_error"),
      code: error.code || (result.status === 402 ? "card_declined" : undefined),
      message: error.message || "The payment could not be completed.",
    };
  }

  function field(container, label, attrs) {
    var id = "stripe-emulator-" + attrs.name + "-" + Math.random().toString(36).slice(2, 8);
    var wrap = document.createElement("div");
    wrap.className = "stripe-emulator__field field";
    var labelEl = document.createElement("label");
    labelEl.htmlFor = id;
    labelEl.textContent = label;
    var input = document.createElement("input");
    input.id = id;
    input.type = "text";
    Object.keys(attrs).forEach(function (k) { if (k !== "name") input.setAttribute(k, attrs[k]); });
    input.dataset.stripeField = attrs.name;
    wrap.appendChild(labelEl);
    wrap.appendChild(input);
    container.appendChild(wrap);
    return input;
  }

  function PaymentElement(elements) {
    this._elements = elements;
    this._handlers = {};
    this._inputs = null;
    this._error = null;
  }

  PaymentElement.prototype.on = function (event, handler) {
    (this._handlers[event] = this._handlers[event] || []).push(handler);
    return this;
  };

  PaymentElement.prototype._emit = function (event, payload) {
    (this._handlers[event] || []).forEach(function (h) { h(payload); });
  };

  PaymentElement.prototype.mount = function (target) {
    var host = typeof target === "string" ? document.querySelector(target) : target;
    if (!host) throw new Error("Stripe emulator: mount target not found: " + target);
    var box = document.createElement("div");
    box.className = "stripe-emulator";
    var note = document.createElement("p");
    note.className = "stripe-emulator__note";
    note.textContent = "Test mode (Stripe emulator): card 4242 4242 4242 4242 succeeds, " +
      "4000 0000 0000 0002 is declined.";
    box.appendChild(note);
    this._inputs = {
      number: field(box, "Card number", {name: "number", autocomplete: "cc-number",
                                        inputmode: "numeric", placeholder: "1234 1234 1234 1234"}),
      expiry: field(box, "Expiry (MM / YY)", {name: "expiry", autocomplete: "cc-exp",
                                              inputmode: "numeric", placeholder: "MM / YY"}),
      cvc: field(box, "CVC", {name: "cvc", autocomplete: "cc-csc", inputmode: "numeric",
                              placeholder: "123"}),
    };
    this._error = document.createElement("p");
    this._error.className = "stripe-emulator__error field__error";
    this._error.setAttribute("role", "alert");
    this._error.hidden = true;
    box.appendChild(this._error);
    host.appendChild(box);
    this._box = box;
    var self = this;
    Object.keys(this._inputs).forEach(function (name) {
      self._inputs[name].addEventListener("input", function () {
        var card = self._card();
        self._emit("change", {elementType: "payment", empty: !self._inputs.number.value,
                              complete: !card.error, value: {type: "card"}});
      });
    });
    this._emit("ready", {elementType: "payment"});
  };

  PaymentElement.prototype.unmount = function () {
    if (this._box && this._box.parentNode) this._box.parentNode.removeChild(this._box);
  };

  PaymentElement.prototype.destroy = PaymentElement.prototype.unmount;

  PaymentElement.prototype.focus = function () {
    if (this._inputs) this._inputs.number.focus();
  };

  PaymentElement.prototype._showError = function (message) {
    if (!this._error) return;
    this._error.textContent = message || "";
    this._error.hidden = !message;
  };

  PaymentElement.prototype._card = function () {
    if (!this._inputs) return {error: "The payment form is not on the page."};
    var number = this._inputs.number.value.replace(/\D/g, "");
    var expiry = this._inputs.expiry.value.replace(/\s/g, "").match(/^(\d{1,2})\/?(\d{2}|\d{4})$/);
    var cvc = this._inputs.cvc.value.trim();
    if (number.length !== 16) return {error: "Your card number is incomplete."};
    if (!expiry || +expiry[1] < 1 || +expiry[1] > 12) {
      return {error: "Your card's expiration date is incomplete."};
    }
    if (!/^\d{3}$/.test(cvc)) return {error: "Your card's security code is incomplete."};
    var year = +expiry[2];
    return {card: {number: number, exp_month: +expiry[1], exp_year: year < 100 ? 2000 + year : year,
                   cvc: cvc}};
  };

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._clientSecret = (options || {}).clientSecret;
    this._payment = null;
  }

  Elements.prototype.create = function (type) {
    if (type !== "payment") {
      throw new Error("Stripe emulator: only the Payment Element ('payment') is offered.");
    }
    this._payment = new PaymentElement(this);
    return this._payment;
  };

  Elements.prototype.getElement = function (type) {
    return type === "payment" ? this._payment : null;
  };

  Elements.prototype.submit = function () {
    var card = this._payment ? this._payment._card() : {error: "No Payment Element."};
    if (card.error) {
      if (this._payment) this._payment._showError(card.error);
      return Promise.resolve({error: {type: "validation_error", message: card.error}});
    }
    return Promise.resolve({});
  };

  Elements.prototype.update = function (options) {
    if (options && options.clientSecret) this._clientSecret = options.clientSecret;
  };

  function Stripe(publishableKey) {
    if (!publishableKey || String(publishableKey).indexOf("pk_") !== 0) {
      throw new Error("Stripe emulator: a publishable key (pk_...) is required.");
    }
    var stripe = {_key: publishableKey};

    stripe.elements = function (options) {
      return new Elements(stripe, options);
    };

    stripe.confirmPayment = function (args) {
      var elements = args && args.elements;
      var clientSecret = (args && args.clientSecret) || (elements && elements._clientSecret);
      var params = (args && args.confirmParams) || {};
      var redirect = (args && args.redirect) || "always";
      var element = elements && elements._payment;
      var card = element ? element._card() : {error: "No Payment Element."};
      if (card.error) {
        if (element) element._showError(card.error);
        return Promise.resolve({error: {type: "validation_error", message: card.error}});
      }
      if (element) element._showError("");
      var body = {key: publishableKey, client_secret: clientSecret,
                  payment_method_data: {type: "card", card: card.card}};
      return post("/v1/payment_intents/" + encodeURIComponent(intentId(clientSecret)) + "/confirm",
                  body).then(function (result) {
        if (!result.ok) {
          var error = stripeError(result);
          if (element) element._showError(error.message);
          return {error: error};
        }
        var intent = result.body;
        if (redirect === "if_required" || !params.return_url) return {paymentIntent: intent};
        var url = new URL(params.return_url, window.location.href);
        url.searchParams.set("payment_intent", intent.id);
        url.searchParams.set("payment_intent_client_secret", clientSecret);
        url.searchParams.set("redirect_status", intent.status === "succeeded" ? "succeeded" : "failed");
        window.location.assign(url.toString());
        return new Promise(function () {});
      }, function () {
        var error = {type: "api_connection_error",
                     message: "Could not reach the payment service. Nothing was charged."};
        if (element) element._showError(error.message);
        return {error: error};
      });
    };

    stripe.retrievePaymentIntent = function (clientSecret) {
      var url = API + "/v1/payment_intents/" + encodeURIComponent(intentId(clientSecret)) +
        "?" + new URLSearchParams({key: publishableKey, client_secret: clientSecret});
      return fetch(url).then(function (response) {
        return response.json().then(function (body) {
          return response.ok ? {paymentIntent: body} : {error: stripeError({status: response.status, body: body})};
        });
      });
    };

    return stripe;
  }

  Stripe.emulated = true;
  window.Stripe = Stripe;
})();

// Progressive enhancement of the licence terms fields:
// - show the price and uses only when "license" is chosen;
// - read the typed price back as the server reads it ("that is $2.50 per image") while the
//   artist types, and keep the token that confirms it. A form whose price has not been read
//   back yet is held on submit until it has, so the amount is always seen before it is saved.
document.querySelectorAll("[data-terms]").forEach(function (fieldset) {
  var licenseOnly = fieldset.querySelector("[data-license-only]");
  if (!licenseOnly) return;
  var form = fieldset.closest("form");
  var price = fieldset.querySelector("input[name='price']");
  var token = fieldset.querySelector("[data-price-token]");
  var said = fieldset.querySelector("[data-price-said]");
  var checkUrl = fieldset.getAttribute("data-price-check");
  var checkedText = price ? price.value : null; // the pre-filled price comes with its token
  var pending = null;

  function licensing() {
    var chosen = fieldset.querySelector("input[name='kind']:checked");
    return !!chosen && chosen.value === "license";
  }
  function update() {
    licenseOnly.hidden = !licensing();
  }
  fieldset.querySelectorAll("input[name='kind']").forEach(function (radio) {
    radio.addEventListener("change", update);
  });
  update();
  if (!price || !token || !said || !checkUrl || !window.fetch) return;

  function check() {
    var text = price.value;
    pending = fetch(checkUrl + "?price=" + encodeURIComponent(text), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (price.value !== text) return; // typed on meanwhile: a newer check follows
        checkedText = text;
        token.value = answer.ok ? answer.token : "";
        said.textContent = answer.ok
          ? "“" + text.trim() + "” reads as " + answer.display + " per image per dataset sale."
          : answer.message;
        said.hidden = false;
      })
      .catch(function () { checkedText = null; })
      .finally(function () { pending = null; });
    return pending;
  }
  var timer = null;
  price.addEventListener("input", function () {
    token.value = "";
    said.hidden = true;
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  if (form) {
    form.addEventListener("submit", function (event) {
      if (!licensing() || price.value === checkedText) return;
      event.preventDefault(); // not read back yet: show the amount, let the artist submit again
      clearTimeout(timer);
      check().then(function () { said.focus(); });
    });
  }
});

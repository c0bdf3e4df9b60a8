// Progressive enhancement: show the price and uses only when "license" is chosen.
document.querySelectorAll("[data-terms]").forEach(function (fieldset) {
  var licenseOnly = fieldset.querySelector("[data-license-only]");
  if (!licenseOnly) return;
  function update() {
    var chosen = fieldset.querySelector("input[name='kind']:checked");
    licenseOnly.hidden = !chosen || chosen.value !== "license";
  }
  fieldset.querySelectorAll("input[name='kind']").forEach(function (radio) {
    radio.addEventListener("change", update);
  });
  update();
});

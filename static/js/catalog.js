// Catalog filters collapse behind a button on small screens, so results come first.
// Without this script the filters simply stay open above the results.
(function () {
  "use strict";
  var toggle = document.querySelector("[data-filters-toggle]");
  var panel = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (!panel) {
    return;
  }
  var small = window.matchMedia("(max-width: 50rem)");
  function show(open) {
    toggle.setAttribute("aria-expanded", String(open));
    panel.classList.toggle("facets--collapsed", !open);
  }
  function fit() {
    toggle.hidden = !small.matches;
    // A filter with an error stays in view: its message is beside it.
    show(!small.matches || panel.hasAttribute("data-has-errors"));
  }
  toggle.addEventListener("click", function () {
    show(toggle.getAttribute("aria-expanded") !== "true");
  });
  small.addEventListener("change", fit);
  fit();
})();

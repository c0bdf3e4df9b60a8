// Starts Redoc on /api/v1/redoc from data attributes (no inline script: see the CSP).
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  if (!root || typeof Redoc === "undefined") {
    return;
  }
  var config = JSON.parse(root.getAttribute("data-config") || "{}");
  Redoc.init(root.getAttribute("data-spec-url"), config, root);
})();

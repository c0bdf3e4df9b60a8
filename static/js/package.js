// The package page while its build runs: poll the status route, show the progress, and
// reload the page once the build has ended (so the file list and links appear).
(function () {
  "use strict";
  var box = document.getElementById("package-status");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  function show(status) {
    Object.keys(status).forEach(function (name) {
      var field = box.querySelector('[data-field="' + name + '"]');
      if (field) field.textContent = Number(status[name]).toLocaleString();
    });
    var bar = box.querySelector("progress");
    if (bar) bar.value = status.percent;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) return;
        if (status.status !== "queued" && status.status !== "building") {
          window.location.reload();
          return;
        }
        show(status);
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
})();

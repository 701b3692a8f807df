// The coupon batch page: while the job runs, poll its progress (progress.json) once a second and move
// the bar; when it is done, show the CSV download. Without JavaScript, reloading the page does the same.
(function () {
  "use strict";
  var section = document.getElementById("batch");
  if (!section) return;
  var url = section.dataset.progressUrl;
  var bar = document.getElementById("batch-progress");
  var issued = document.getElementById("batch-issued");
  var status = document.getElementById("batch-status");
  var error = document.getElementById("batch-error");
  var download = document.getElementById("batch-download");
  var format = new Intl.NumberFormat(document.documentElement.lang || undefined);

  function show(progress) {
    bar.max = progress.requested;
    bar.value = progress.issued;
    issued.textContent = format.format(progress.issued);
    status.textContent = progress.status_label;
    section.dataset.status = progress.status;
    if (progress.error) {
      error.textContent = progress.error;
      error.hidden = false;
    }
    download.hidden = !progress.csv_url;
  }

  function finished(state) {
    return state === "done" || state === "failed";
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (progress) {
        show(progress);
        if (!finished(progress.status)) window.setTimeout(poll, 1000);
      })
      .catch(function () {
        // A dropped connection: try again a little later.
        window.setTimeout(poll, 3000);
      });
  }

  if (!finished(section.dataset.status)) window.setTimeout(poll, 500);
})();

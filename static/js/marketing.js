/* The marketer's dashboard: draws each chart with Chart.js (static/vendor/chartjs, served by the app)
 * from the JSON the page carries, and follows a "rescore now" run by polling the jobs' status.
 * The numbers are also in each chart's table and CSV; this script only draws them.
 */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  var source = document.getElementById("dashboard-data");
  if (!root || !source) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var labels = JSON.parse(document.getElementById("dashboard-labels").textContent);
  var palette = ["#0b6e4f", "#2f80ed", "#f2994a", "#9b51e0", "#eb5757", "#27ae60", "#56ccf2",
                 "#f2c94c", "#6d4c41", "#828282", "#bdbdbd", "#1d2430"];
  var bandColours = {low: "#27ae60", medium: "#f2994a", high: "#eb5757"};
  var unit = Math.pow(10, data.overview.currency_digits || 0);

  function name(key) {
    return labels.names[key] || key;
  }

  function money(minor) {
    return minor / unit;
  }

  function pick(rows, key) {
    return rows.map(function (row) { return row[key]; });
  }

  function draw(name, config) {
    var canvas = document.getElementById("canvas-" + name);
    if (!canvas || typeof Chart === "undefined") {
      return;
    }
    config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: false},
                                   config.options || {});
    new Chart(canvas, config);
  }

  function twoAxes() {
    return {scales: {y: {beginAtZero: true, position: "left"},
                     y2: {beginAtZero: true, position: "right", grid: {drawOnChartArea: false}}}};
  }

  draw("sales_trend", {
    type: "bar",
    data: {labels: pick(data.sales_trend, "month"), datasets: [
      {label: labels.net_amount + " (" + data.overview.currency + ")",
       data: data.sales_trend.map(function (row) { return money(row.net_amount); }),
       backgroundColor: palette[0], yAxisID: "y"},
      {label: labels.sales, type: "line", data: pick(data.sales_trend, "sales"), borderColor: palette[2],
       backgroundColor: palette[2], yAxisID: "y2"}
    ]},
    options: twoAxes()
  });

  draw("tiers", {
    type: "doughnut",
    data: {labels: pick(data.tiers, "name"), datasets: [
      {label: labels.members, data: pick(data.tiers, "members"), backgroundColor: palette}
    ]}
  });

  draw("rfm_segments", {
    type: "bar",
    data: {labels: data.rfm_segments.map(function (row) { return name(row.segment); }), datasets: [
      {label: labels.members, data: pick(data.rfm_segments, "members"), backgroundColor: palette[1], yAxisID: "y"},
      {label: labels.value + " (" + data.overview.currency + ")", type: "line",
       data: data.rfm_segments.map(function (row) { return money(row.monetary); }),
       borderColor: palette[2], backgroundColor: palette[2], yAxisID: "y2"}
    ]},
    options: twoAxes()
  });

  draw("churn_bands", {
    type: "bar",
    data: {labels: data.churn_bands.map(function (row) { return name(row.band); }), datasets: [
      {label: labels.members, data: pick(data.churn_bands, "members"),
       backgroundColor: data.churn_bands.map(function (row) { return bandColours[row.band]; })}
    ]},
    options: {plugins: {legend: {display: false}}}
  });

  var movement = data.segment_movement;
  draw("segment_movement", {
    type: "bar",
    data: {labels: movement.from.map(name), datasets: movement.segments.map(function (target, column) {
      return {label: name(target), backgroundColor: palette[column % palette.length],
              data: movement.counts.map(function (row) { return row[column]; })};
    })},
    options: {indexAxis: "y",
              plugins: {legend: {title: {display: true, text: labels.current}}},
              scales: {x: {stacked: true, beginAtZero: true, title: {display: true, text: labels.members}},
                       y: {stacked: true, title: {display: true, text: labels.previous}}}}
  });

  ["top_pairs", "top_category_pairs"].forEach(function (name) {
    draw(name, {
      type: "bar",
      data: {labels: data[name].map(function (pair) { return pair.first + " + " + pair.second; }), datasets: [
        {label: labels.together, data: pick(data[name], "together"), backgroundColor: palette[5]}
      ]},
      options: {indexAxis: "y", plugins: {legend: {display: false}}}
    });
  });

  /* --- rescore progress ------------------------------------------------------------------------- */

  var since = root.getAttribute("data-rescore-since");
  var progress = document.getElementById("rescore-progress");
  var status = document.getElementById("rescore-status");
  var button = document.getElementById("rescore");

  function anyRunning(jobs) {
    return jobs.some(function (job) { return job.status === "running"; });
  }

  function show(jobs) {
    jobs.forEach(function (job) {
      var row = document.getElementById("job-" + job.job);
      if (!row) {
        return;
      }
      var cell = row.querySelector(".job-status");
      cell.textContent = job.status ? name(job.status) : "";
      cell.setAttribute("data-status", job.status || "");
      row.querySelector(".job-started").textContent = job.started_at ? new Date(job.started_at).toLocaleString() : "—";
      row.querySelector(".job-duration").textContent =
        job.duration_ms === null ? "—" : (job.duration_ms / 1000).toFixed(1) + " s";
    });
  }

  function poll() {
    fetch(root.getAttribute("data-jobs-url"), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (body) {
        var jobs = body.jobs;
        show(jobs);
        // A job counts as done for this rescore once a run that started after the request has ended.
        var done = jobs.filter(function (job) {
          return job.started_at && (!since || job.started_at >= since) && job.status !== "running";
        });
        var failed = done.some(function (job) { return job.status === "failed"; });
        progress.hidden = false;
        progress.value = done.length;
        if (failed) {
          status.textContent = labels.failed;
          button.disabled = false;
        } else if (done.length === jobs.length) {
          status.textContent = labels.done;
          window.location.replace(root.getAttribute("data-dashboard-url"));
        } else {
          status.textContent = labels.running.replace("{done}", done.length).replace("{total}", jobs.length);
          button.disabled = true;
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (since || anyRunning(data.jobs)) {
    if (!since) {
      since = data.jobs.reduce(function (earliest, job) {
        return job.status === "running" && (!earliest || job.started_at < earliest) ? job.started_at : earliest;
      }, null);
    }
    poll();
  }
}());

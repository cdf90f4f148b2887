// The monthly report's charts (Chart.js, vendored): one per table that has
// one, from the JSON the page carries (#report-charts).
"use strict";
(function () {
  const PALETTE = [
    "#2f6db3", "#e0823d", "#3a9a5b", "#c9453b", "#8a63b8",
    "#8c6d46", "#d46fb0", "#6f7780", "#b5b83a", "#3ab1c2",
  ];

  function draw() {
    const source = document.getElementById("report-charts");
    if (!source || typeof Chart === "undefined") return;
    const charts = JSON.parse(source.textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const spec = charts[canvas.dataset.chart];
      if (!spec) return;
      const doughnut = spec.kind === "doughnut";
      const datasets = spec.datasets.map(function (dataset, index) {
        const colour = PALETTE[index % PALETTE.length];
        return Object.assign({}, dataset, {
          backgroundColor: doughnut ? PALETTE.slice(0, dataset.data.length) : colour,
          borderColor: doughnut ? "#fff" : colour,
        });
      });
      const options = {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: spec.horizontal ? "y" : "x",
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      };
      if (!doughnut) {
        const valueAxis = { beginAtZero: true, stacked: spec.stacked };
        if (spec.percent) valueAxis.max = 100;
        const labelAxis = { stacked: spec.stacked };
        options.scales = spec.horizontal
          ? { x: valueAxis, y: labelAxis }
          : { x: labelAxis, y: valueAxis };
        if (spec.datasets.length === 1) options.plugins.legend.display = false;
      }
      new Chart(canvas, { type: spec.kind, data: { labels: spec.labels, datasets: datasets }, options: options });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

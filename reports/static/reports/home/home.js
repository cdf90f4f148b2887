// The manager's home: first-reply compliance per channel (Chart.js, vendored).
// The figures come from the page (json_script), computed on the server.
(function () {
  "use strict";
  function draw() {
    const canvas = document.getElementById("home-health-chart");
    const source = document.getElementById("home-health-chart-data");
    if (!canvas || !source || typeof Chart === "undefined") {
      return;
    }
    const data = JSON.parse(source.textContent);
    const colours = ["#79aec8", "#417893", "#264b5d"];
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (set, index) {
          return {
            label: set.label,
            data: set.data,
            backgroundColor: colours[index % colours.length],
          };
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: { min: 0, max: 100, title: { display: true, text: data.axis } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

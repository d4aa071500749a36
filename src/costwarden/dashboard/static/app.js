// costwarden dashboard: draws the charts of the page (uPlot) after each load and htmx swap.
(function () {
  "use strict";
  var PALETTE = ["#1f6f5c", "#3b82c4", "#d9822b", "#8e5ac8", "#c2416b", "#5a9e3a", "#c9a227", "#4a5568", "#9aa5ae"];
  var charts = [];
  window.cwCharts = charts;

  function usd(v) {
    if (v == null) return "";
    return "$" + v.toFixed(v >= 100 ? 0 : v >= 1 ? 2 : 4);
  }

  function stacked(data) {
    // cumulative sums, so bars drawn from the top series down look stacked
    var n = data.x.length, acc = new Array(n).fill(0), out = [];
    data.series.forEach(function (s) {
      acc = acc.map(function (a, i) { return a + (s.values[i] || 0); });
      out.push(acc.slice());
    });
    return out;
  }

  function draw(el) {
    var spec = JSON.parse(el.querySelector("script[type='application/json']").textContent);
    var cum = stacked(spec);
    var idx = spec.x.map(function (_, i) { return i; });
    var series = [{}], data = [idx];
    for (var k = spec.series.length - 1; k >= 0; k--) {
      (function (k) {
        series.push({
          label: spec.series[k].label,
          fill: PALETTE[k % PALETTE.length],
          stroke: PALETTE[k % PALETTE.length],
          width: 0,
          paths: uPlot.paths.bars({ size: [0.8, 64] }),
          points: { show: false },
          value: function (u, v, si, i) { return i == null ? "" : usd(spec.series[k].values[i]); },
        });
        data.push(cum[k]);
      })(k);
    }
    var width = Math.max(280, el.clientWidth || 600);
    var opts = {
      width: width,
      height: width < 500 ? 240 : 320,
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, idx.length - 0.5)] } },
      axes: [
        { values: function (u, splits) { return splits.map(function (i) { return spec.labels[i] || ""; }); },
          space: 70, incrs: [1, 2, 5, 7, 10, 14, 30, 60, 90] },
        { values: function (u, splits) { return splits.map(usd); }, size: 64 },
      ],
      series: series,
      legend: { live: true },
    };
    var u = new uPlot(opts, data, el);
    u.cwSpec = spec;
    charts.push(u);
  }

  function drawAll() {
    while (charts.length) charts.pop().destroy();
    document.querySelectorAll("[data-chart]").forEach(draw);
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawAll, 150);
  });
  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();

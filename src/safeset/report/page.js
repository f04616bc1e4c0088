// safeset report: sortable tables and the charts, drawn by the vendored uPlot from the data
// block in the page. Nothing here fetches anything; the page's CSP forbids it anyway.
"use strict";

(function () {
  function sortTable(th) {
    const table = th.closest("table");
    const body = table.tBodies[0];
    const index = Array.prototype.indexOf.call(th.parentNode.children, th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const value = (row) => {
      const cell = row.cells[index];
      if (!cell) return "";
      return cell.dataset.sort !== undefined ? Number(cell.dataset.sort) : cell.textContent;
    };
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const order =
        typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
  }

  document.querySelectorAll("table.sortable th").forEach((th) => {
    th.tabIndex = 0;
    th.addEventListener("click", () => sortTable(th));
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        sortTable(th);
      }
    });
  });

  const COLOURS = { remove: "#c0392b", review: "#d68910", keep: "#1e8449", bar: "#2e6da4" };

  function chart(spec, el) {
    const width = Math.max(320, Math.min(el.clientWidth || 640, 900));
    const half = (spec.binWidth || 1) / 2;
    const series = [{ label: spec.xlabel }];
    const data = [spec.x];
    const axes = [{ label: spec.xlabel }, { label: spec.series[0].label, size: 80 }];
    // Counts and rates start at zero, so bar heights compare.
    const fromZero = { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] };
    const scales = { x: { time: false }, y: fromZero };
    if (spec.type === "bars") {
      scales.x.range = (u, min, max) => [min - half, max + half];
    }
    spec.series.forEach((s, i) => {
      const scale = i === 0 ? "y" : "y" + i;
      const entry = {
        label: s.label,
        scale: scale,
        stroke: s.colour || COLOURS.bar,
        width: spec.type === "bars" ? 0 : 2,
        points: { show: spec.type !== "bars" && spec.x.length < 3 },
      };
      if (spec.type === "bars") {
        entry.fill = s.colour || COLOURS.bar;
        entry.paths = uPlot.paths.bars({ size: [0.9, 60], align: 0 });
      } else if (i === 0) {
        entry.fill = "rgba(46, 109, 164, 0.15)";
      }
      if (i > 0) {
        scales[scale] = fromZero;
        axes.push({ side: 1, scale: scale, label: s.label, size: 80, grid: { show: false } });
      }
      series.push(entry);
      data.push(s.values);
    });
    return new uPlot(
      { width: width, height: 240, series: series, axes: axes, scales: scales, cursor: { drag: { x: false } } },
      data,
      el
    );
  }

  const block = document.getElementById("chart-data");
  if (block) {
    const specs = JSON.parse(block.textContent);
    specs.forEach((spec) => {
      const el = document.getElementById(spec.id);
      if (el) chart(spec, el);
    });
  }
})();

// Draws every figure on the page (figure JSON sits in <script type="application/json" class="figure"> right
// after its container) and makes tables with [data-sort] buttons sortable. No inline script anywhere.
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("script.figure").forEach(function (block) {
      var target = block.previousElementSibling;
      if (!target || !window.Plotly) { return; }
      var figure = JSON.parse(block.textContent);
      window.Plotly.newPlot(target, figure.data, figure.layout, figure.config);
    });
  }
  function sortable(table) {
    table.querySelectorAll("th button[data-sort]").forEach(function (button, column) {
      var index = Array.prototype.indexOf.call(button.closest("tr").children, button.closest("th"));
      var ascending = false;
      button.addEventListener("click", function () {
        ascending = !ascending;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[index], y = b.cells[index];
          if (button.getAttribute("data-sort") === "number") {
            var p = parseFloat(x.getAttribute("data-value")), q = parseFloat(y.getAttribute("data-value"));
            p = isNaN(p) ? -Infinity : p; q = isNaN(q) ? -Infinity : q;
            return ascending ? p - q : q - p;
          }
          return ascending ? x.textContent.localeCompare(y.textContent) : y.textContent.localeCompare(x.textContent);
        });
        rows.forEach(function (row) { body.appendChild(row); });
        table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
        button.closest("th").setAttribute("aria-sort", ascending ? "ascending" : "descending");
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    draw();
    document.querySelectorAll("table.sortable").forEach(sortable);
  });
})();

// Draws every figure on the page (figure JSON sits in <script type="application/json" class="figure"> right
// after its container) and makes tables with [data-sort] buttons sortable. No inline script anywhere.
// plotly.js (4.8 MB) is fetched only when the page has a figure: its URL is this script's data-plotly.
// Figures come from the server without colours for a scheme; they are themed here from the page's CSS variables
// (--fg, --muted, --border, --card, --accent), and again when the reader's light/dark preference changes.
(function () {
  "use strict";
  var plotlyUrl = document.currentScript && document.currentScript.getAttribute("data-plotly");
  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  // pulse/charts.py PALETTE (for light pages) and the lighter shade of each that reads on a dark page
  var DARK_SHADES = {
    "#0b5cad": "#7db7f0", "#c2410c": "#fb923c", "#15803d": "#4ade80", "#7c3aed": "#a78bfa",
    "#b91c1c": "#f87171", "#0e7490": "#22d3ee", "#a16207": "#facc15", "#be185d": "#f472b6",
    "#8a94a0": "#8a94a0", "#1b1f24": "#eef1f4"
  };
  var drawn = [];

  function withPlotly(callback) {
    if (window.Plotly) { callback(); return; }
    if (!plotlyUrl) { return; }
    var script = document.createElement("script");
    script.src = plotlyUrl;
    script.async = true;
    script.onload = callback;
    document.head.appendChild(script);
  }

  function cssColours() {
    var style = window.getComputedStyle(document.documentElement);
    var read = function (name) { return style.getPropertyValue(name).trim(); };
    return {
      dark: !!(darkQuery && darkQuery.matches),
      fg: read("--fg") || "#1b1f24", muted: read("--muted") || "#4f5966", border: read("--border") || "#d5dae0",
      card: read("--card") || "#fff", accent: read("--accent") || "#0b5cad"
    };
  }

  function withAlpha(colour, alpha) {
    var hex = colour.replace("#", "");
    if (hex.length === 3) { hex = hex.replace(/(.)/g, "$1$1"); }
    if (!/^[0-9a-fA-F]{6}$/.test(hex)) { return colour; }
    var n = parseInt(hex, 16);
    return "rgba(" + (n >> 16) + ", " + ((n >> 8) & 255) + ", " + (n & 255) + ", " + alpha + ")";
  }

  function shade(value, colours) {
    if (!colours.dark) { return value; }
    if (Array.isArray(value)) { return value.map(function (v) { return shade(v, colours); }); }
    return typeof value === "string" && DARK_SHADES[value.toLowerCase()] ? DARK_SHADES[value.toLowerCase()] : value;
  }

  function merge(base, extra) { return Object.assign({}, base || {}, extra); }

  // A themed copy: the figure read from the page stays as it came, so it can be themed again.
  function themed(figure, colours) {
    var copy = JSON.parse(JSON.stringify(figure));
    var layout = copy.layout || {};
    var axis = { gridcolor: colours.border, linecolor: colours.border, zerolinecolor: colours.border };
    layout.font = merge(layout.font, { color: colours.fg });
    layout.paper_bgcolor = "rgba(0,0,0,0)";
    layout.plot_bgcolor = "rgba(0,0,0,0)";
    layout.hoverlabel = merge(layout.hoverlabel, { bgcolor: colours.card, bordercolor: colours.border,
                                                   font: { color: colours.fg } });
    layout.legend = merge(layout.legend, { font: merge(layout.legend && layout.legend.font, { color: colours.fg }) });
    Object.keys(layout).filter(function (key) { return /^[xy]axis\d*$/.test(key); }).concat(["xaxis", "yaxis"])
      .forEach(function (key) {
        var a = layout[key] = merge(axis, layout[key]);
        a.tickfont = merge(a.tickfont, { color: colours.muted });
        if (a.title && typeof a.title === "object") { a.title.font = merge(a.title.font, { color: colours.fg }); }
      });
    (layout.annotations || []).forEach(function (note) { note.font = merge(note.font, { color: colours.fg }); });
    (copy.data || []).forEach(function (trace) {
      if (trace.fill === "toself" || trace.fill === "tonexty") {
        // the 95% band: the page's accent, opaque enough to see on either background
        trace.fillcolor = withAlpha(colours.accent, colours.dark ? 0.32 : 0.18);
      }
      if (trace.line && trace.line.color) { trace.line.color = shade(trace.line.color, colours); }
      if (trace.marker && trace.marker.color) { trace.marker.color = shade(trace.marker.color, colours); }
      if (trace.error_y && trace.error_y.color) { trace.error_y.color = shade(trace.error_y.color, colours); }
      if (trace.type === "scatter" && trace.mode && trace.mode.indexOf("text") >= 0) {
        trace.textfont = merge(trace.textfont, { color: colours.fg });
      }
    });
    return copy;
  }

  function draw() {
    var colours = cssColours();
    document.querySelectorAll("script.figure").forEach(function (block) {
      var target = block.previousElementSibling;
      if (!target || !window.Plotly) { return; }
      var figure = JSON.parse(block.textContent);
      var look = themed(figure, colours);
      window.Plotly.newPlot(target, look.data, look.layout, figure.config);
      drawn.push({ target: target, figure: figure });
    });
  }

  function retheme() {
    var colours = cssColours();
    drawn.forEach(function (chart) {
      var look = themed(chart.figure, colours);
      window.Plotly.react(chart.target, look.data, look.layout, chart.figure.config);
    });
  }

  function sortable(table) {
    table.querySelectorAll("th button[data-sort]").forEach(function (button) {
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
    if (document.querySelector("script.figure")) { withPlotly(draw); }
    document.querySelectorAll("table.sortable").forEach(sortable);
    if (darkQuery) {
      var onChange = function () { if (drawn.length) { retheme(); } };
      if (darkQuery.addEventListener) { darkQuery.addEventListener("change", onChange); }
      else if (darkQuery.addListener) { darkQuery.addListener(onChange); }
    }
  });
})();

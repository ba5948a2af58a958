/* Lepton's one shared script: Plotly figures from json_script tags, and small htmx glue.
 *
 * Figures: a page renders `{{ figure|json_script:"fig-1" }}` and an element
 * `<div class="figure" data-plotly-figure="fig-1"></div>`; the figure is a Plotly dict
 * ({data, layout, config}) built in Python. Pages with figures also load
 * static/vendor/plotly.min.js. Figures swapped in by htmx are drawn too.
 */
(function () {
  "use strict";

  function drawFigures(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-plotly-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-plotly-figure"));
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign({ autosize: true, margin: { t: 36, r: 16, b: 40, l: 48 } }, figure.layout || {});
      var config = Object.assign({ responsive: true, displaylogo: false }, figure.config || {});
      // react() redraws in place, so a refreshed figure keeps its zoom state cheaply.
      window.Plotly.react(el, figure.data || [], layout, config);
    });
  }

  function autosubmit(event) {
    var el = event.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) el.form.requestSubmit();
      else el.form.submit();
    }
  }

  function confirmSubmit(event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }

  function copyText(event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () {
      var label = button.getAttribute("data-copied-label");
      if (label) {
        var original = button.textContent;
        button.textContent = label;
        setTimeout(function () { button.textContent = original; }, 2000);
      }
    };
    // The clipboard API needs a secure context; fall back to selecting the text and copying it.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected for Ctrl-C */ }
    }
  }

  function closeMenusOnOutsideClick(event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  }

  document.addEventListener("change", autosubmit);
  document.addEventListener("submit", confirmSubmit, true);
  document.addEventListener("click", copyText);
  document.addEventListener("click", closeMenusOnOutsideClick);
  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); });
  // htmx 4 event names (colon-separated).
  document.addEventListener("htmx:after:swap", function () { drawFigures(document); });

  window.lepton = { drawFigures: drawFigures };
})();

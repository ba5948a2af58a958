/* Lepton's one shared script: Plotly figures from json_script tags, and small htmx glue.
 *
 * Figures: a page renders `{{ figure|json_script:"fig-1" }}` and an element
 * `<div class="figure" data-plotly-figure="fig-1"></div>`; the figure is a Plotly dict
 * ({data, layout, config}) built in Python. Pages with figures also load
 * static/vendor/plotly.min.js. Figures swapped in by htmx are drawn too. Points whose
 * `customdata` is a site path open it on click (followLinks).
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
      Promise.resolve(window.Plotly.react(el, figure.data || [], layout, config)).then(function () { followLinks(el); });
    });
  }

  /* A point whose `customdata` is a path on this site ("/data/…") opens it when clicked: the
   * lineage graph (datalake/figures.py) links its datasets this way. Other customdata is ignored. */
  function followLinks(el) {
    if (el.getAttribute("data-plotly-links") || !el.on) return;
    el.setAttribute("data-plotly-links", "1");
    el.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var url = point && point.customdata;
      if (typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/") window.location.assign(url);
    });
  }

  /* `<pre data-json-pretty="some-id">` shows the json_script tag "some-id" indented (a run's spec). */
  function prettyJson(root) {
    (root || document).querySelectorAll("[data-json-pretty]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-json-pretty"));
      if (source) el.textContent = JSON.stringify(JSON.parse(source.textContent), null, 1);
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

  /* Uploads with a byte progress bar: a form with `data-upload-progress` is sent with
   * XMLHttpRequest so the bar (`[data-upload-bar]` inside the form) follows the bytes sent;
   * the server's answer replaces the page as a normal submit would (redirect or form errors).
   * A file dropped anywhere on the form goes into its file input. */
  function uploadWithProgress(event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-upload-progress") || !window.FormData) return;
    event.preventDefault();
    var bar = form.querySelector("[data-upload-bar]");
    var label = form.querySelector("[data-upload-label]");
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    if (bar) bar.parentElement.hidden = false;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((100 * e.loaded) / e.total);
      if (bar) bar.style.width = pct + "%";
      if (label) label.textContent = pct + " % (" + Math.round(e.loaded / 1048576) + " / " + Math.round(e.total / 1048576) + " MB)";
    };
    xhr.onload = function () {
      // Show the answer itself (after a redirect, the page it led to): fetching it again would
      // lose its one-time messages. The address bar follows the redirect.
      if (xhr.responseURL) window.history.replaceState(null, "", xhr.responseURL);
      document.open(); document.write(xhr.responseText); document.close();
    };
    xhr.onerror = function () {
      if (button) button.disabled = false;
      if (label) label.textContent = form.getAttribute("data-upload-error") || "Upload failed";
    };
    xhr.send(new FormData(form));
  }

  function dropIntoForm(event) {
    var form = event.target.closest && event.target.closest("form[data-upload-progress]");
    if (!form) return;
    event.preventDefault();
    if (event.type === "drop" && event.dataTransfer && event.dataTransfer.files.length) {
      var input = form.querySelector("input[type=file]");
      if (input) input.files = event.dataTransfer.files;
    }
  }

  document.addEventListener("submit", uploadWithProgress);
  document.addEventListener("dragover", dropIntoForm);
  document.addEventListener("drop", dropIntoForm);
  document.addEventListener("change", autosubmit);
  document.addEventListener("submit", confirmSubmit, true);
  document.addEventListener("click", copyText);
  document.addEventListener("click", closeMenusOnOutsideClick);
  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); prettyJson(document); });
  // htmx 4 event names (colon-separated).
  document.addEventListener("htmx:after:swap", function () { drawFigures(document); });

  window.lepton = { drawFigures: drawFigures };
})();

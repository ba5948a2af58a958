/* The shop-problem table editor (templates/scheduling/editor.html): add and remove rows in the page.
 *
 * Without this script the same buttons submit the form and the server answers with the rows again
 * (scheduling.views.problem_edit): "Add rows" (`name="add"`, value the table) and a row's "×"
 * (`name="remove"`, value "table-index"). Here "Add rows" copies the table's blank row
 * (`<template data-empty-row="table">`, prefix "__prefix__") as the next Django formset form, and
 * "×" takes the row out of the page: a row that is not sent is a blank row to the server, which
 * skips it, so the other rows keep their numbers and the server's errors land where they belong.
 * The names typed in the machines and jobs tables feed the operations table's suggestions.
 */
(function () {
  "use strict";

  var NAME_LISTS = { machines: "editor-machine-names", jobs: "editor-job-names" };

  function addRow(form, table) {
    var total = form.querySelector("input[name='" + table + "-TOTAL_FORMS']");
    var most = form.querySelector("input[name='" + table + "-MAX_NUM_FORMS']");
    var template = form.querySelector("template[data-empty-row='" + table + "']");
    var body = form.querySelector("tbody[data-rows='" + table + "']");
    if (!total || !template || !body) return;
    var index = parseInt(total.value, 10);
    if (most && index >= parseInt(most.value, 10)) return;
    body.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(index)));
    var row = body.lastElementChild;
    var number = row.querySelector("[data-row-number]");
    if (number) number.textContent = String(index + 1);
    total.value = String(index + 1);
    var first = row.querySelector("input");
    if (first) first.focus();
  }

  function refreshNames(form) {
    Object.keys(NAME_LISTS).forEach(function (table) {
      var list = document.getElementById(NAME_LISTS[table]);
      if (!list) return;
      var seen = {};
      list.textContent = "";
      form.querySelectorAll("tbody[data-rows='" + table + "'] input[name$='-name']").forEach(function (input) {
        var name = input.value.trim();
        if (!name || seen[name]) return;
        seen[name] = true;
        var option = document.createElement("option");
        option.value = name;
        list.appendChild(option);
      });
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("form[data-table-editor] button[name=add], form[data-table-editor] button[name=remove]");
    if (!button) return;
    event.preventDefault();
    var form = button.form;  // read before the row (and the button in it) leaves the page
    if (button.name === "add") {
      addRow(form, button.value);
    } else {
      var row = button.closest("tr");
      if (row) row.remove();
      refreshNames(form);
    }
  });

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-table-editor]");
    if (form && /-name$/.test(event.target.name || "")) refreshNames(form);
  });
})();

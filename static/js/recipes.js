/* The recipe builder on a dataset's page (templates/datalake/dataset.html).
 *
 * `<div data-recipe-builder data-recipe-config="ID" data-recipe-errors="ID">` inside the recipe form
 * becomes a list of steps: the person picks a kind, fills its fields with pickers (columns come from the
 * latest version's schema, followed step by step through renames, resampling, windows and joins), and
 * moves or removes steps. Every change is written as JSON into the form's `steps` and `joins` fields —
 * the same fields the no-JS fallback textarea edits — so saving, previewing (htmx) and the server's
 * validation see exactly what is shown. The server (datalake.views.recipe_create, recipe_preview and
 * the recipe engine) decides what is valid; nothing here runs code or builds SQL.
 * On a page shown again after an error, the steps are read back from the `steps` field, and the
 * server's errors (`data-recipe-errors`: {step index: [lines]}) are shown on their steps.
 */
(function () {
  "use strict";

  var NUMERIC = /INT|DOUBLE|FLOAT|DECIMAL|REAL|NUMERIC/i;
  var NULL_OPS = ["is_null", "not_null"];
  // The fields of each kind the builder edits; any other field of a step read back is kept as it was.
  var HANDLED = {
    select: ["columns"],
    rename: ["columns"],
    cast: ["columns"],
    filter: ["filters", "combine"],
    drop_duplicates: ["subset"],
    drop_missing: ["subset"],
    fill_missing: ["columns", "order_by", "partition_by"],
    clip_outliers: ["columns", "method", "k", "low", "high"],
    normalise: ["columns", "method"],
    resample: ["time", "interval", "by", "aggregations"],
    window: ["order_by", "partition_by", "size", "aggregations"],
    join: ["input", "on", "how"],
    sql: ["sql"],
  };
  var counter = 0;

  function uid(prefix) { counter += 1; return (prefix || "recipe") + "-" + counter; }
  function list(value) { return Array.isArray(value) ? value.map(String) : []; }
  function text(value) { return value === undefined || value === null ? "" : String(value); }
  function pairs(mapping) { return mapping && typeof mapping === "object" && !Array.isArray(mapping) ? Object.keys(mapping) : []; }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    var value;
    Object.keys(attrs || {}).forEach(function (key) {
      var v = attrs[key];
      if (v === undefined || v === null || v === false) return;
      if (key === "text") node.textContent = v;
      else if (key === "value") value = v;
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), v);
      else node.setAttribute(key, v === true ? "" : v);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    if (value !== undefined) node.value = value;  // after the options, so a select keeps its choice
    return node;
  }

  function blank(op) {
    switch (op) {
      case "select": return { columns: [] };
      case "rename": return { rows: [{ column: "", to: "" }] };
      case "cast": return { rows: [{ column: "", type: "float" }] };
      case "filter": return { rows: [{ column: "", op: "eq", value: "" }], combine: "all" };
      case "drop_duplicates": case "drop_missing": return { subset: [] };
      case "fill_missing": return { rows: [{ column: "", method: "median", value: "" }], order_by: "", partition_by: [] };
      case "clip_outliers": return { columns: [], method: "iqr", k: "1.5", low: "0.01", high: "0.99" };
      case "normalise": return { columns: [], method: "zscore" };
      case "resample": return { time: "", every: "1", unit: "hour", by: [], rows: [{ column: "", agg: "mean" }] };
      case "window": return { order_by: "", partition_by: [], size: "3", rows: [{ column: "", agg: "mean" }] };
      case "join": return { dataset: "", key: "", rows: [{ left: "", right: "" }], how: "left" };
      case "sql": return { sql: "SELECT * FROM input" };
      default: return {};
    }
  }

  function aggregationRows(mapping) {
    var rows = [];
    pairs(mapping).forEach(function (name) {
      var aggs = Array.isArray(mapping[name]) ? mapping[name] : [mapping[name]];
      aggs.forEach(function (agg) { rows.push({ column: name, agg: text(agg) }); });
    });
    return rows;
  }

  /* A saved step (the engine's shape) as the builder's draft. */
  function fromStep(step, joins) {
    var op = step && typeof step === "object" ? step.op : undefined;
    var d = Object.assign({ op: op }, blank(op));
    var s = step || {};
    switch (op) {
      case "select": d.columns = list(s.columns); break;
      case "rename": d.rows = pairs(s.columns).map(function (k) { return { column: k, to: text(s.columns[k]) }; }); break;
      case "cast": d.rows = pairs(s.columns).map(function (k) { return { column: k, type: text(s.columns[k]) }; }); break;
      case "filter":
        d.rows = (Array.isArray(s.filters) ? s.filters : []).map(function (f) {
          f = f || {};
          return { column: text(f.column), op: text(f.op) || "eq", value: Array.isArray(f.value) ? f.value.join(", ") : text(f.value) };
        });
        d.combine = s.combine === "any" ? "any" : "all";
        break;
      case "drop_duplicates": case "drop_missing": d.subset = list(s.subset); break;
      case "fill_missing":
        d.rows = pairs(s.columns).map(function (k) {
          var m = s.columns[k];
          return m && typeof m === "object" ? { column: k, method: "constant", value: text(m.value) } : { column: k, method: text(m), value: "" };
        });
        d.order_by = text(s.order_by);
        d.partition_by = list(s.partition_by);
        break;
      case "clip_outliers":
        d.columns = list(s.columns);
        d.method = s.method === "percentile" ? "percentile" : "iqr";
        if (s.k !== undefined) d.k = text(s.k);
        if (s.low !== undefined) d.low = text(s.low);
        if (s.high !== undefined) d.high = text(s.high);
        break;
      case "normalise": d.columns = list(s.columns); d.method = s.method === "minmax" ? "minmax" : "zscore"; break;
      case "resample":
        var match = /^\s*(\d+)\s*([a-z]+?)s?\s*$/i.exec(text(s.interval));
        d.time = text(s.time);
        d.every = match ? match[1] : "1";
        d.unit = match ? match[2].toLowerCase() : "hour";
        d.by = list(s.by);
        d.rows = aggregationRows(s.aggregations);
        break;
      case "window":
        d.order_by = text(s.order_by);
        d.partition_by = list(s.partition_by);
        d.size = text(s.size);
        d.rows = aggregationRows(s.aggregations);
        break;
      case "join":
        d.key = text(s.input);
        d.dataset = text((joins || {})[s.input]);
        d.rows = Array.isArray(s.on)
          ? s.on.map(function (c) { return { left: text(c), right: text(c) }; })
          : pairs(s.on).map(function (k) { return { left: k, right: text(s.on[k]) }; });
        d.how = s.how === "inner" ? "inner" : "left";
        break;
      case "sql": d.sql = text(s.sql); break;
    }
    d.extra = {};
    Object.keys(s).forEach(function (key) {
      if (key !== "op" && (HANDLED[op] || []).indexOf(key) < 0) d.extra[key] = s[key];
    });
    return d;
  }

  function number(value) {
    var n = Number(text(value).trim());
    return text(value).trim() !== "" && isFinite(n) ? n : value;
  }

  /* A constant typed for its column: numbers for numeric columns (the engine refuses "0" there). */
  function typed(value, type) {
    var trimmed = text(value).trim();
    if (/BOOL/i.test(type || "") && (trimmed === "true" || trimmed === "false")) return trimmed === "true";
    if (!type || NUMERIC.test(type)) return number(value);
    return value;
  }

  function groupAggregations(rows) {
    var out = {};
    rows.forEach(function (r) {
      if (!r.column) return;
      if (out[r.column] === undefined) out[r.column] = r.agg;
      else out[r.column] = [].concat(out[r.column], [r.agg]);
    });
    return out;
  }

  /* The builder's draft as the engine's step. `cols` are the columns before it, for typing constants. */
  function toStep(d, cols) {
    var step = Object.assign({ op: d.op }, d.extra || {});
    var typeOf = function (name) { var c = cols.filter(function (x) { return x.name === name; })[0]; return c ? c.type : ""; };
    var mapping = function (rows, value) {
      var out = {};
      rows.forEach(function (r) { if (r.column) out[r.column] = value(r); });
      return out;
    };
    switch (d.op) {
      case "select": step.columns = d.columns.slice(); break;
      case "rename": step.columns = mapping(d.rows, function (r) { return r.to; }); break;
      case "cast": step.columns = mapping(d.rows, function (r) { return r.type; }); break;
      case "filter":
        step.filters = d.rows.filter(function (r) { return r.column; }).map(function (r) {
          if (NULL_OPS.indexOf(r.op) >= 0) return { column: r.column, op: r.op };
          if (r.op === "in") {
            return { column: r.column, op: r.op, value: r.value.split(",").map(function (v) { return v.trim(); }).filter(Boolean) };
          }
          return { column: r.column, op: r.op, value: r.value };
        });
        step.combine = d.combine;
        break;
      case "drop_duplicates": case "drop_missing":
        if (d.subset.length) step.subset = d.subset.slice();
        break;
      case "fill_missing":
        step.columns = mapping(d.rows, function (r) {
          return r.method === "constant" ? { method: "constant", value: typed(r.value, typeOf(r.column)) } : r.method;
        });
        if (d.rows.some(function (r) { return r.method === "forward_fill"; })) {
          if (d.order_by) step.order_by = d.order_by;
          if (d.partition_by.length) step.partition_by = d.partition_by.slice();
        }
        break;
      case "clip_outliers":
        step.columns = d.columns.slice();
        step.method = d.method;
        if (d.method === "iqr") step.k = number(d.k);
        else { step.low = number(d.low); step.high = number(d.high); }
        break;
      case "normalise": step.columns = d.columns.slice(); step.method = d.method; break;
      case "resample":
        step.time = d.time;
        step.interval = text(d.every).trim() + " " + d.unit;
        if (d.by.length) step.by = d.by.slice();
        step.aggregations = groupAggregations(d.rows);
        break;
      case "window":
        step.order_by = d.order_by;
        step.size = number(d.size);
        if (d.partition_by.length) step.partition_by = d.partition_by.slice();
        step.aggregations = groupAggregations(d.rows);
        break;
      case "join":
        var rows = d.rows.filter(function (r) { return r.left; });
        var same = rows.every(function (r) { return !r.right || r.right === r.left; });
        step.input = d.key;
        step.on = same ? rows.map(function (r) { return r.left; }) : rows.reduce(function (o, r) { o[r.left] = r.right || r.left; return o; }, {});
        step.how = d.how;
        break;
      case "sql": step.sql = d.sql; break;
    }
    return step;
  }

  /* The columns after step `d` from those before it, or null when they cannot be known here (SQL). */
  function track(cols, d, config) {
    var typeOf = function (name) { var c = cols.filter(function (x) { return x.name === name; })[0]; return c ? c.type : ""; };
    var castTypes = {};
    config.castTypes.forEach(function (t) { castTypes[t[0]] = t[2]; });
    switch (d.op) {
      case "select": return d.columns.map(function (n) { return { name: n, type: typeOf(n) }; });
      case "rename":
        var renamed = {};
        d.rows.forEach(function (r) { if (r.column && r.to) renamed[r.column] = r.to; });
        return cols.map(function (c) { return { name: renamed[c.name] || c.name, type: c.type }; });
      case "cast":
        var cast = {};
        d.rows.forEach(function (r) { if (r.column) cast[r.column] = castTypes[r.type] || ""; });
        return cols.map(function (c) { return { name: c.name, type: cast[c.name] !== undefined ? cast[c.name] : c.type }; });
      case "normalise":
        return cols.map(function (c) { return { name: c.name, type: d.columns.indexOf(c.name) >= 0 ? "DOUBLE" : c.type }; });
      case "resample":
        var grouped = groupAggregations(d.rows);
        var out = d.by.map(function (n) { return { name: n, type: typeOf(n) }; });
        if (d.time) out.push({ name: d.time, type: "TIMESTAMP" });
        Object.keys(grouped).forEach(function (name) {
          var aggs = grouped[name];
          if (Array.isArray(aggs)) aggs.forEach(function (a) { out.push({ name: name + "_" + a, type: "" }); });
          else out.push({ name: name, type: aggs === "count" ? "BIGINT" : aggs === "mean" ? "DOUBLE" : typeOf(name) });
        });
        return out;
      case "window":
        return cols.concat(d.rows.filter(function (r) { return r.column; }).map(function (r) {
          return { name: r.column + "_" + r.agg + "_" + text(d.size).trim(), type: "" };
        }));
      case "join":
        var dataset = config.datasets.filter(function (x) { return x.id === d.dataset; })[0];
        if (!dataset) return cols;
        var keys = d.rows.map(function (r) { return r.right || r.left; });
        var taken = cols.map(function (c) { return c.name.toLowerCase(); });
        var suffix = (d.extra && d.extra.suffix) || "_" + d.key;
        var added = dataset.columns.filter(function (n) { return keys.indexOf(n) < 0; }).map(function (n) {
          var name = taken.indexOf(n.toLowerCase()) >= 0 ? n + suffix : n;
          taken.push(name.toLowerCase());
          return { name: name, type: "" };
        });
        return cols.concat(added);
      case "sql": return null;
      default: return cols;
    }
  }

  function setup(root) {
    if (root.getAttribute("data-recipe-ready")) return;
    root.setAttribute("data-recipe-ready", "1");
    var config = JSON.parse(document.getElementById(root.getAttribute("data-recipe-config")).textContent);
    var errorSource = document.getElementById(root.getAttribute("data-recipe-errors"));
    var errors = errorSource ? JSON.parse(errorSource.textContent) : {};
    var form = root.closest("form");
    var stepsField = form.querySelector("[name=steps]");
    var joinsField = form.querySelector("[name=joins]");
    var T = config.text;
    var kindLabel = {};
    config.kinds.forEach(function (k) { kindLabel[k[0]] = k[1]; });
    var prefix = uid("recipe");
    var drafts = [];
    var before = [];  // [{cols, known}] per step, refreshed by sync()

    try {
      var saved = JSON.parse(stepsField.value || "[]");
      var savedJoins = JSON.parse((joinsField && joinsField.value) || "{}");
      if (Array.isArray(saved)) drafts = saved.map(function (s) { return fromStep(s, savedJoins); });
    } catch (e) { drafts = []; }  // text that is not JSON (typed in the fallback): start afresh

    function computeColumns() {
      var cols = config.columns.slice();
      var known = true;
      before = drafts.map(function (d) {
        var here = { cols: cols, known: known };
        var next = track(cols, d, config);
        if (next === null) known = false;
        else cols = next;
        return here;
      });
    }

    function sync() {
      computeColumns();
      stepsField.value = JSON.stringify(drafts.map(function (d, i) { return toStep(d, before[i].cols); }));
      if (joinsField) {
        var joins = {};
        drafts.forEach(function (d) { if (d.op === "join" && d.key && d.dataset) joins[d.key] = d.dataset; });
        joinsField.value = JSON.stringify(joins);
      }
      drafts.forEach(function (d, i) {
        var datalist = document.getElementById(prefix + "-cols-" + i);
        if (!datalist) return;
        var names = before[i].cols.map(function (c) { return c.name; });
        if (datalist.getAttribute("data-names") === names.join("\u0000")) return;
        datalist.setAttribute("data-names", names.join("\u0000"));
        datalist.replaceChildren.apply(datalist, names.map(function (n) { return el("option", { value: n }); }));
      });
    }

    function changed() { sync(); }
    function rebuilt() { render(); }

    /* Widgets. `key` names a control so that focus comes back to it after a rebuild. */

    function line(label, control, key) {
      var id = uid(prefix);
      control.id = id;
      if (key) control.setAttribute("data-key", key);
      return el("div", { class: "recipe-line" }, [el("label", { for: id, text: label }), control]);
    }

    function input(value, oninput, attrs) {
      return el("input", Object.assign({ type: "text", value: value, oninput: function (e) { oninput(e.target.value); changed(); } }, attrs || {}));
    }

    function columnInput(i, value, oninput, attrs) {
      return input(value, oninput, Object.assign({ list: prefix + "-cols-" + i, "data-role": "column", placeholder: T.column, autocomplete: "off" }, attrs || {}));
    }

    function choice(options, value, onchange, attrs) {
      return el("select", Object.assign({ value: value, onchange: function (e) { onchange(e.target.value); rebuilt(); } }, attrs || {}),
        options.map(function (o) { return el("option", { value: o[0], text: o[1] }); }));
    }

    function chips(i, names, key, listId) {
      var box = el("div", { class: "recipe-chips", "data-role": "chips" });
      var add = function (value) {
        value = text(value).trim();
        if (value && names.indexOf(value) < 0) names.push(value);
        rebuilt();
      };
      names.forEach(function (name, n) {
        box.appendChild(el("span", { class: "recipe-chip" }, [name,
          el("button", { type: "button", "aria-label": T.remove + " " + name, text: "×", onclick: function () { names.splice(n, 1); rebuilt(); } })]));
      });
      var entry = el("input", {
        type: "text", list: listId || prefix + "-cols-" + i, placeholder: T.column, autocomplete: "off", "data-key": key, "data-role": "chip-input",
        onchange: function (e) { add(e.target.value); },
        onkeydown: function (e) { if (e.key === "Enter") { e.preventDefault(); add(e.target.value); } },
      });
      box.appendChild(entry);
      return box;
    }

    function chipLine(label, i, names, key) {
      var box = chips(i, names, key);
      var id = uid(prefix);
      box.querySelector("input").id = id;
      return el("div", { class: "recipe-line" }, [el("label", { for: id, text: label }), box]);
    }

    function rows(i, d, make, renderRow) {
      var wrap = el("div", { class: "recipe-rows" });
      d.rows.forEach(function (row, n) {
        var controls = renderRow(row, n);
        var remove = el("button", { type: "button", class: "btn-icon", "aria-label": T.remove, title: T.remove, text: "×",
          onclick: function () { d.rows.splice(n, 1); rebuilt(); } });
        wrap.appendChild(el("div", { class: "recipe-line", "data-role": "row" }, controls.concat([remove])));
      });
      wrap.appendChild(el("button", { type: "button", class: "btn-icon", text: "+ " + T.add_row, "data-key": i + ":add-row",
        onclick: function () { d.rows.push(make()); rebuilt(); } }));
      return wrap;
    }

    function labelled(label, control, key) {
      control.setAttribute("aria-label", label);
      control.setAttribute("title", label);
      if (key) control.setAttribute("data-key", key);
      return control;
    }

    function body(d, i) {
      var k = function (name) { return i + ":" + name; };
      var parts = [];
      switch (d.op) {
        case "select":
          parts.push(chipLine(T.columns, i, d.columns, k("columns")));
          break;
        case "rename":
          parts.push(rows(i, d, function () { return { column: "", to: "" }; }, function (r, n) {
            return [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)), "→",
              labelled(T.new_name, input(r.to, function (v) { r.to = v; }), k("t" + n))];
          }));
          break;
        case "cast":
          parts.push(rows(i, d, function () { return { column: "", type: "float" }; }, function (r, n) {
            return [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)), "→",
              labelled(T.type, choice(config.castTypes.map(function (t) { return [t[0], t[1]]; }), r.type, function (v) { r.type = v; }), k("t" + n))];
          }));
          break;
        case "filter":
          parts.push(rows(i, d, function () { return { column: "", op: "eq", value: "" }; }, function (r, n) {
            var controls = [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)),
              labelled(T.operator, choice(config.filterOps, r.op, function (v) { r.op = v; }), k("o" + n))];
            if (NULL_OPS.indexOf(r.op) < 0) {
              controls.push(labelled(r.op === "in" ? T.values_hint : T.value,
                input(r.value, function (v) { r.value = v; }, { placeholder: r.op === "in" ? T.values_hint : T.value }), k("v" + n)));
            }
            return controls;
          }));
          parts.push(line(T.combine, choice([["all", T.combine_all], ["any", T.combine_any]], d.combine, function (v) { d.combine = v; }), k("combine")));
          break;
        case "drop_duplicates": case "drop_missing":
          parts.push(chipLine(T.columns_all, i, d.subset, k("subset")));
          break;
        case "fill_missing":
          parts.push(rows(i, d, function () { return { column: "", method: "median", value: "" }; }, function (r, n) {
            var controls = [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)),
              labelled(T.method, choice(config.fillMethods, r.method, function (v) { r.method = v; }), k("m" + n))];
            if (r.method === "constant") controls.push(labelled(T.value, input(r.value, function (v) { r.value = v; }, { placeholder: T.value }), k("v" + n)));
            return controls;
          }));
          if (d.rows.some(function (r) { return r.method === "forward_fill"; })) {
            parts.push(line(T.order_by, columnInput(i, d.order_by, function (v) { d.order_by = v; }), k("order_by")));
            parts.push(chipLine(T.partition_by, i, d.partition_by, k("partition_by")));
          }
          break;
        case "clip_outliers":
          parts.push(chipLine(T.columns, i, d.columns, k("columns")));
          parts.push(line(T.method, choice([["iqr", T.iqr], ["percentile", T.percentile]], d.method, function (v) { d.method = v; }), k("method")));
          if (d.method === "iqr") parts.push(line(T.k, input(d.k, function (v) { d.k = v; }, { inputmode: "decimal" }), k("k")));
          else {
            parts.push(line(T.low, input(d.low, function (v) { d.low = v; }, { inputmode: "decimal" }), k("low")));
            parts.push(line(T.high, input(d.high, function (v) { d.high = v; }, { inputmode: "decimal" }), k("high")));
          }
          break;
        case "normalise":
          parts.push(chipLine(T.columns, i, d.columns, k("columns")));
          parts.push(line(T.method, choice([["zscore", T.zscore], ["minmax", T.minmax]], d.method, function (v) { d.method = v; }), k("method")));
          break;
        case "resample":
          parts.push(line(T.time, columnInput(i, d.time, function (v) { d.time = v; }), k("time")));
          var every = input(d.every, function (v) { d.every = v; }, { inputmode: "numeric", "data-key": k("every"), "aria-label": T.every });
          var unit = labelled(T.every, choice(config.units, d.unit, function (v) { d.unit = v; }), k("unit"));
          var everyId = uid(prefix);
          every.id = everyId;
          parts.push(el("div", { class: "recipe-line" }, [el("label", { for: everyId, text: T.every }), every, unit]));
          parts.push(chipLine(T.group_by, i, d.by, k("by")));
          parts.push(el("p", { class: "small muted", text: T.aggregations }));
          parts.push(rows(i, d, function () { return { column: "", agg: "mean" }; }, function (r, n) {
            return [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)),
              labelled(T.aggregation, choice(config.resampleAggs, r.agg, function (v) { r.agg = v; }), k("a" + n))];
          }));
          break;
        case "window":
          parts.push(line(T.window_order, columnInput(i, d.order_by, function (v) { d.order_by = v; }), k("order_by")));
          parts.push(line(T.size, input(d.size, function (v) { d.size = v; }, { inputmode: "numeric" }), k("size")));
          parts.push(chipLine(T.partition_by, i, d.partition_by, k("partition_by")));
          parts.push(el("p", { class: "small muted", text: T.aggregations }));
          parts.push(rows(i, d, function () { return { column: "", agg: "mean" }; }, function (r, n) {
            return [labelled(T.column, columnInput(i, r.column, function (v) { r.column = v; }), k("c" + n)),
              labelled(T.aggregation, choice(config.windowAggs, r.agg, function (v) { r.agg = v; }), k("a" + n))];
          }));
          break;
        case "join":
          if (!config.datasets.length) { parts.push(el("p", { class: "small muted", text: T.no_datasets })); break; }
          parts.push(line(T.dataset, choice([["", T.choose]].concat(config.datasets.map(function (x) { return [x.id, x.label]; })), d.dataset,
            function (v) { d.dataset = v; if (!d.key) d.key = "join" + (drafts.filter(function (x) { return x.op === "join"; }).indexOf(d) + 1); }), k("dataset")));
          parts.push(line(T.key, input(d.key, function (v) { d.key = v; }), k("key")));
          var chosen = config.datasets.filter(function (x) { return x.id === d.dataset; })[0];
          var rightList = prefix + "-right-" + i;
          parts.push(el("datalist", { id: rightList }, (chosen ? chosen.columns : []).map(function (n) { return el("option", { value: n }); })));
          parts.push(rows(i, d, function () { return { left: "", right: "" }; }, function (r, n) {
            return [labelled(T.left, columnInput(i, r.left, function (v) { r.left = v; }), k("l" + n)), "=",
              labelled(T.right, input(r.right, function (v) { r.right = v; }, { list: rightList, placeholder: T.right, autocomplete: "off" }), k("r" + n))];
          }));
          parts.push(line(T.how, choice([["left", T.how_left], ["inner", T.how_inner]], d.how, function (v) { d.how = v; }), k("how")));
          break;
        case "sql":
          var area = el("textarea", { rows: "4", class: "mono", value: d.sql, oninput: function (e) { d.sql = e.target.value; changed(); } });
          parts.push(line(T.sql, area, k("sql")));
          break;
        default:
          parts.push(el("pre", { class: "small mono", text: JSON.stringify(toStep(d, [])) }));
      }
      if (i < before.length && !before[i].known) parts.unshift(el("p", { class: "small muted", text: T.unknown_columns }));
      return parts;
    }

    function move(i, by) {
      var j = i + by;
      if (j < 0 || j >= drafts.length) return;
      var d = drafts[i];
      drafts[i] = drafts[j];
      drafts[j] = d;
      errors = {};
      rebuilt();
    }

    function card(d, i) {
      var title = T.step.replace("%(number)s", String(i + 1)) + " · " + (kindLabel[d.op] || d.op);
      var tools = el("span", { class: "tools" }, [
        el("button", { type: "button", class: "btn-icon", text: "↑", title: T.up, "aria-label": T.up, disabled: i === 0, onclick: function () { move(i, -1); } }),
        el("button", { type: "button", class: "btn-icon", text: "↓", title: T.down, "aria-label": T.down, disabled: i === drafts.length - 1, onclick: function () { move(i, 1); } }),
        el("button", { type: "button", class: "btn-icon", text: "×", title: T.remove, "aria-label": T.remove,
          onclick: function () { drafts.splice(i, 1); errors = {}; rebuilt(); } }),
      ]);
      var children = [el("div", { class: "recipe-step-head" }, [el("strong", { text: title }), tools])];
      var mine = errors[String(i)] || [];
      if (mine.length) children.push(el("ul", { class: "errorlist" }, mine.map(function (m) { return el("li", { text: m }); })));
      children.push(el("datalist", { id: prefix + "-cols-" + i }));
      children = children.concat(body(d, i));
      return el("div", { class: "recipe-step" + (mine.length ? " has-error" : ""), "data-step": String(i), "data-op": d.op || "" }, children);
    }

    var listBox = el("div", { class: "recipe-step-list" });
    var empty = el("p", { class: "muted small", text: T.empty });
    var kindId = uid(prefix);
    var kind = el("select", { id: kindId, "data-recipe-kind": true }, config.kinds.map(function (k) { return el("option", { value: k[0], text: k[1] }); }));
    var addButton = el("button", { type: "button", class: "btn btn-secondary", "data-recipe-add": true, text: T.add_step, onclick: function () {
      drafts.push(Object.assign({ op: kind.value, extra: {} }, blank(kind.value)));
      errors = {};
      rebuilt();
      var cards = listBox.querySelectorAll(".recipe-step");
      var first = cards.length && cards[cards.length - 1].querySelector("input, select, textarea");
      if (first) first.focus();
    } });

    function render() {
      var active = document.activeElement && root.contains(document.activeElement) ? document.activeElement.getAttribute("data-key") : null;
      computeColumns();
      listBox.replaceChildren.apply(listBox, drafts.map(card));
      empty.hidden = drafts.length > 0;
      sync();
      if (active) {
        var again = root.querySelector('[data-key="' + active.replace(/"/g, '\\"') + '"]');
        if (again) again.focus();
      }
    }

    root.appendChild(empty);
    root.appendChild(listBox);
    root.appendChild(el("div", { class: "recipe-add" }, [el("label", { for: kindId, class: "visually-hidden", text: T.add_step }), kind, addButton]));
    // Enter in a builder field would submit the form half-done; only the Save button submits.
    root.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.tagName === "INPUT") e.preventDefault();
    });
    root.hidden = false;
    var fallback = form.querySelector("[data-recipe-fallback]");
    if (fallback) fallback.hidden = true;
    var preview = form.querySelector("[data-recipe-preview]");
    if (preview) preview.hidden = false;
    render();
  }

  function init() { document.querySelectorAll("[data-recipe-builder]").forEach(setup); }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

// Segment builder: nested groups (all / any / none) of field · operator · value rows, kept in
// sync with the criteria JSON textarea the form submits, and a live count from the server.
(function () {
  "use strict";
  var form = document.getElementById("segment-form");
  var root = document.getElementById("criteria-builder");
  var textarea = document.getElementById("criteria-json");
  if (!form || !root || !textarea) return;
  var FIELDS = JSON.parse(document.getElementById("segment-fields").textContent);
  var MODES = { all: "All of", any: "Any of", none: "None of" };
  var previewTimer = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function isGroup(node) { return node && (node.all || node.any || node.none); }

  // Builder model: {mode, items: [condition | group]}.
  function toModel(criteria) {
    if (!isGroup(criteria)) return { mode: "all", items: criteria && criteria.field ? [criteria] : [] };
    var keys = ["all", "any", "none"].filter(function (k) { return criteria[k]; });
    var groups = keys.map(function (k) {
      return { mode: k, items: criteria[k].map(function (item) { return isGroup(item) ? toModel(item) : item; }) };
    });
    return groups.length === 1 ? groups[0] : { mode: "all", items: groups, keys: true };
  }

  function toCriteria(group) {
    var out = {};
    // A group of several keys ({all, none}) is drawn as "All of" one group per key; while it still is that, it is
    // saved back in its own shape, so saving criteria nobody changed does not change them.
    var modes = group.items.map(function (item) { return item.mode; });
    var ownShape = group.keys && group.mode === "all" && modes.length > 0 &&
      modes.every(function (mode, i) { return mode && modes.indexOf(mode) === i; });
    if (ownShape) {
      group.items.forEach(function (item) { out[item.mode] = toCriteria(item)[item.mode]; });
    } else {
      out[group.mode] = group.items.map(function (item) { return item.mode ? toCriteria(item) : item; });
    }
    return out;
  }

  function fieldSpec(name) {
    if (FIELDS[name]) return FIELDS[name];
    if (/^(customFields|custom)\./.test(name)) return FIELDS["customFields.<key>"];
    if (/^events\./.test(name)) return FIELDS["events.<name>"];
    return null;
  }

  function parseValue(kind, raw) {
    if (!kind) return undefined;
    var list = /\[\]$/.test(kind);
    var base = kind.replace("[]", "");
    var parts = list ? raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : [raw.trim()];
    var values = parts.map(function (part) {
      if ((base === "number" || base === "count") && part !== "" && !isNaN(Number(part))) return Number(part);
      if ((base === "scalar" || base === "textOrNumber") && part !== "" && !isNaN(Number(part))) return Number(part);
      return part;
    });
    return list ? values : values[0];
  }

  function sync() {
    textarea.value = JSON.stringify(toCriteria(model), null, 2);
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 300);
  }

  function conditionRow(group, index) {
    var condition = group.items[index];
    var row = el("div", { class: "criteria-row" });
    var known = Object.keys(FIELDS).filter(function (n) { return n.indexOf("<") < 0; });
    var fieldSelect = el("select", { "aria-label": "Field" });
    known.forEach(function (name) { fieldSelect.appendChild(el("option", { value: name, text: FIELDS[name].label + " (" + name + ")" })); });
    fieldSelect.appendChild(el("option", { value: "__custom", text: "Custom field…" }));
    fieldSelect.appendChild(el("option", { value: "__event", text: "Event count…" }));
    var nameInput = el("input", { "aria-label": "Custom field or event name", placeholder: "name", size: "14" });
    var prefixMatch = /^(customFields|custom|events)\.(.+)$/.exec(condition.field || "");
    if (prefixMatch) {
      fieldSelect.value = prefixMatch[1] === "events" ? "__event" : "__custom";
      nameInput.value = prefixMatch[2];
    } else {
      fieldSelect.value = condition.field || "score";
      nameInput.hidden = true;
    }
    var opSelect = el("select", { "aria-label": "Operator" });
    var valueInput = el("input", { "aria-label": "Value", size: "18" });
    var windowInput = el("input", { "aria-label": "Window (e.g. 14d)", placeholder: "window e.g. 14d", size: "8" });
    var remove = el("button", { type: "button", class: "icon-button", "aria-label": "Remove condition", text: "✕" });

    function currentField() {
      if (fieldSelect.value === "__custom") return "customFields." + nameInput.value.trim();
      if (fieldSelect.value === "__event") return "events." + nameInput.value.trim();
      return fieldSelect.value;
    }

    function refreshOperators() {
      var spec = fieldSpec(currentField()) || { operators: {} };
      var selected = condition.operator;
      opSelect.innerHTML = "";
      Object.keys(spec.operators).forEach(function (op) { opSelect.appendChild(el("option", { value: op, text: op.replace("_", " ") })); });
      if (selected && spec.operators.hasOwnProperty(selected)) opSelect.value = selected;
      valueInput.hidden = !spec.operators[opSelect.value];
      windowInput.hidden = !spec.window;
    }

    function update() {
      nameInput.hidden = fieldSelect.value !== "__custom" && fieldSelect.value !== "__event";
      var spec = fieldSpec(currentField()) || { operators: {} };
      condition.field = currentField();
      // The operator just chosen (refreshOperators keeps the condition's operator when the field has it).
      if (opSelect.value) condition.operator = opSelect.value;
      refreshOperators();
      condition.operator = opSelect.value;
      var kind = spec.operators[opSelect.value];
      var value = parseValue(kind, valueInput.value);
      if (value === undefined || value === "") delete condition.value; else condition.value = value;
      if (spec.window && windowInput.value.trim()) condition.window = windowInput.value.trim(); else delete condition.window;
      sync();
    }

    valueInput.value = Array.isArray(condition.value) ? condition.value.join(", ") : (condition.value === undefined ? "" : String(condition.value));
    windowInput.value = condition.window || "";
    refreshOperators();
    [fieldSelect, nameInput, opSelect, valueInput, windowInput].forEach(function (input) {
      input.addEventListener("change", update);
      input.addEventListener("input", update);
    });
    remove.addEventListener("click", function () { group.items.splice(index, 1); render(); });
    [fieldSelect, nameInput, opSelect, valueInput, windowInput, remove].forEach(function (node) { row.appendChild(node); });
    return row;
  }

  function groupBox(group, parent, index) {
    var box = el("div", { class: "criteria-group" });
    var head = el("div", { class: "criteria-group-head" });
    var mode = el("select", { "aria-label": "Match" });
    Object.keys(MODES).forEach(function (key) { mode.appendChild(el("option", { value: key, text: MODES[key] })); });
    mode.value = group.mode;
    mode.addEventListener("change", function () { group.mode = mode.value; sync(); });
    head.appendChild(mode);
    var addCondition = el("button", { type: "button", text: "+ Condition" });
    addCondition.addEventListener("click", function () { group.items.push({ field: "score", operator: "gte", value: 50 }); render(); });
    var addGroup = el("button", { type: "button", text: "+ Group" });
    addGroup.addEventListener("click", function () { group.items.push({ mode: "any", items: [] }); render(); });
    head.appendChild(addCondition);
    head.appendChild(addGroup);
    if (parent) {
      var removeGroup = el("button", { type: "button", class: "icon-button", "aria-label": "Remove group", text: "✕" });
      removeGroup.addEventListener("click", function () { parent.items.splice(index, 1); render(); });
      head.appendChild(removeGroup);
    }
    box.appendChild(head);
    group.items.forEach(function (item, i) {
      box.appendChild(item.mode ? groupBox(item, group, i) : conditionRow(group, i));
    });
    return box;
  }

  function render() {
    root.innerHTML = "";
    root.appendChild(groupBox(model, null, 0));
    sync();
  }

  function preview() {
    var body = new FormData();
    body.append("criteria", textarea.value);
    body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    fetch(form.getAttribute("data-preview-url"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var holder = document.getElementById("segment-preview");
        var parsed = new DOMParser().parseFromString(html, "text/html").getElementById("segment-preview");
        if (holder && parsed) holder.replaceWith(parsed);
      });
  }

  var model;
  var parsed = true;
  try { model = toModel(JSON.parse(textarea.value)); } catch (e) { model = { mode: "all", items: [] }; parsed = false; }
  textarea.addEventListener("change", function () {
    try { model = toModel(JSON.parse(textarea.value)); render(); } catch (e) { preview(); }
  });
  if (parsed) {
    render();
  } else {
    // Text that is not JSON (sent back with its error) stays as typed, to be fixed; the preview shows the error.
    root.appendChild(groupBox(model, null, 0));
    preview();
  }
})();

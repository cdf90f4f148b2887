/* Segment rule builder (outreach/admin/segments.py).
 *
 * Draws the rule in #id_rule as groups of "field / operator / value" rows,
 * writes every change back into #id_rule as JSON (the form posts that
 * field), and asks the preview view for the live count, the description
 * and a sample. The field registry arrives as #segment-builder-schema.
 * No build step, no dependencies.
 */
"use strict";
(function () {
  function h(tag, props, children) {
    const node = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== false && value !== null && value !== undefined) {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    });
    (children || []).forEach((child) => child && node.append(child));
    return node;
  }

  function init() {
    const root = document.getElementById("segment-builder");
    const schemaNode = document.getElementById("segment-builder-schema");
    if (!root || !schemaNode) return;
    const schema = JSON.parse(schemaNode.textContent);
    const text = schema.text;
    const fields = new Map(schema.fields.map((field) => [field.name, field]));
    const textarea = document.getElementById("id_rule");
    const kind = document.getElementById("id_kind");
    const lifecycle = document.getElementById("id_lifecycle_segment");
    const countNode = document.getElementById("segment-preview-count");
    const descriptionNode = document.getElementById("segment-preview-description");
    const errorsNode = document.getElementById("segment-preview-errors");
    const table = document.getElementById("segment-preview-sample");
    const editable = Boolean(textarea) && !root.dataset.readonly;
    let rule = null;
    let errorPaths = [];
    // Conditions just added and not yet touched: neither counted nor marked
    // red (an empty value is not a mistake before anyone filled it in).
    const untouched = new WeakSet();
    let timer = null;
    let inflight = null;

    // --- The rule tree ------------------------------------------------------

    function defaultValue(op) {
      return { range: [null, null], list: [], bool: true }[op.value] ?? null;
    }

    function newCondition() {
      const field = schema.fields[0];
      const condition = { field: field.name, op: field.operators[0].name, value: defaultValue(field.operators[0]) };
      untouched.add(condition);
      return condition;
    }

    // The rule without untouched conditions (and groups left empty by
    // them), for the live count; null when nothing is left to count.
    function touchedOnly(node) {
      if (!isGroup(node)) return untouched.has(node) ? null : node;
      const conditions = node.conditions.map(touchedOnly).filter(Boolean);
      return conditions.length || !node.conditions.length ? { ...node, conditions } : null;
    }

    // The paths of untouched conditions, as the preview names them.
    function untouchedPaths(node, path, found) {
      if (!isGroup(node)) {
        if (untouched.has(node)) found.push(path);
        return found;
      }
      node.conditions.forEach((child, index) => {
        untouchedPaths(child, `${path ? path + "." : ""}conditions[${index}]`, found);
      });
      return found;
    }

    function within(path, parents) {
      return parents.some((parent) => path === parent || path.startsWith(parent + ".") || path.startsWith(parent + "["));
    }

    function isGroup(node) {
      return "conditions" in node || "match" in node;
    }

    function drawable(node, depth) {
      if (!node || typeof node !== "object" || Array.isArray(node)) return false;
      if (isGroup(node)) {
        return (node.match === "all" || node.match === "any") && Array.isArray(node.conditions) &&
          depth <= schema.maxDepth && node.conditions.every((child) => drawable(child, depth + 1));
      }
      const field = fields.get(node.field);
      return Boolean(field) && field.operators.some((op) => op.name === node.op);
    }

    function readTextarea() {
      const raw = textarea ? textarea.value.trim() : "";
      if (!raw) return { match: "all", conditions: [] };
      try {
        const parsed = JSON.parse(raw);
        return drawable(parsed, 1) ? parsed : null;
      } catch (error) {
        return null;
      }
    }

    function changed(redraw) {
      textarea.value = JSON.stringify(rule, null, 2);
      if (redraw) draw();
      schedulePreview();
    }

    // --- Drawing -------------------------------------------------------------

    function button(label, name, onclick) {
      return h("button", { type: "button", class: `button segment-${name}`, text: label, onclick });
    }

    function options(items, selected) {
      return items.map(([value, label]) =>
        h("option", { value, text: label, selected: String(value) === String(selected) }));
    }

    function draw() {
      root.replaceChildren();
      if (!rule) {
        root.append(h("p", { class: "help", text: text.cannotShow }));
        return;
      }
      root.append(drawGroup(rule, null, "", 1));
      markErrors();
    }

    function drawGroup(group, parent, path, depth) {
      const match = h("select", { onchange: (event) => { group.match = event.target.value; changed(false); } },
        options([["all", text.matchAll], ["any", text.matchAny]], group.match));
      const head = h("div", { class: "segment-group-head" },
        [depth === 1 ? h("span", { text: text.customersMatching }) : null, match]);
      if (parent) {
        head.append(button(text.remove, "remove", () => {
          parent.conditions.splice(parent.conditions.indexOf(group), 1);
          changed(true);
        }));
      }
      const box = h("div", { class: "segment-group", "data-path": path }, [head]);
      group.conditions.forEach((child, index) => {
        const childPath = `${path ? path + "." : ""}conditions[${index}]`;
        box.append(isGroup(child) ? drawGroup(child, group, childPath, depth + 1) : drawCondition(child, group, childPath));
      });
      const actions = h("div", { class: "segment-actions" }, [
        button(text.addCondition, "add-condition", () => { group.conditions.push(newCondition()); changed(true); }),
      ]);
      if (depth < schema.maxDepth) {
        actions.append(button(text.addGroup, "add-group", () => {
          group.conditions.push({ match: "any", conditions: [newCondition()] });
          changed(true);
        }));
      }
      box.append(actions);
      return box;
    }

    function drawCondition(condition, parent, path) {
      const field = fields.get(condition.field);
      const op = field.operators.find((item) => item.name === condition.op);
      const fieldSelect = h("select", {
        onchange: (event) => {
          const next = fields.get(event.target.value);
          untouched.delete(condition);
          condition.field = next.name;
          condition.op = next.operators[0].name;
          condition.value = defaultValue(next.operators[0]);
          changed(true);
        },
      }, options(schema.fields.map((item) => [item.name, item.label]), condition.field));
      const opSelect = h("select", {
        onchange: (event) => {
          const next = field.operators.find((item) => item.name === event.target.value);
          untouched.delete(condition);
          condition.op = next.name;
          if (next.value !== op.value) condition.value = defaultValue(next);
          changed(true);
        },
      }, options(field.operators.map((item) => [item.name, item.label]), condition.op));
      return h("div", { class: "segment-row", "data-path": path }, [
        fieldSelect,
        opSelect,
        drawValue(condition, field, op),
        button(text.remove, "remove", () => {
          parent.conditions.splice(parent.conditions.indexOf(condition), 1);
          changed(true);
        }),
      ]);
    }

    function numberInput(value, field, onValue) {
      return h("input", {
        type: "number", step: 1, min: field.min, max: field.max, value: value ?? "",
        oninput: (event) => onValue(event.target.value === "" ? null : Number(event.target.value)),
      });
    }

    function drawValue(condition, field, op) {
      const set = (value) => { untouched.delete(condition); condition.value = value; changed(false); };
      if (op.value === "number") return numberInput(condition.value, field, set);
      if (op.value === "range") {
        const pair = Array.isArray(condition.value) ? condition.value.slice(0, 2) : [null, null];
        return h("span", {}, [
          numberInput(pair[0], field, (value) => { pair[0] = value; set(pair.slice()); }),
          " – ",
          numberInput(pair[1], field, (value) => { pair[1] = value; set(pair.slice()); }),
        ]);
      }
      if (op.value === "bool") {
        return h("select", { onchange: (event) => set(event.target.value === "true") },
          options([["true", text.yes], ["false", text.no]], String(condition.value)));
      }
      if (op.value !== "list") return h("span");
      const chosen = new Set((Array.isArray(condition.value) ? condition.value : []).map(String));
      if (!field.choices) {
        const parts = [h("input", {
          type: "text", class: "vTextField", value: [...chosen].join(", "),
          oninput: (event) => set(event.target.value.split(/[,、，]/).map((name) => name.trim()).filter(Boolean)),
        }), h("div", { class: "help", text: text.namesHelp })];
        if (field.suggestions.length) {
          parts.push(h("div", { class: "help", text: `${text.suggestions} ${field.suggestions.join(", ")}` }));
        }
        return h("span", {}, parts);
      }
      const boxes = [];
      const container = h("div", { class: "segment-choices" });
      field.choices.forEach(([value, label]) => {
        const box = h("input", {
          type: "checkbox", checked: chosen.has(String(value)),
          onchange: () => set(field.choices.filter((choice, index) => boxes[index].checked).map(([v]) => v)),
        });
        boxes.push(box);
        container.append(h("label", {}, [box, ` ${label}`]));
      });
      return container;
    }

    function markErrors() {
      root.querySelectorAll(".errors").forEach((node) => node.classList.remove("errors"));
      const drawn = [...root.querySelectorAll("[data-path]")].filter((node) => node.dataset.path);
      errorPaths.forEach((path) => {
        let best = null;
        drawn.forEach((node) => {
          const own = node.dataset.path;
          if ((path === own || path.startsWith(own + ".") || path.startsWith(own + "[")) &&
              (!best || own.length > best.dataset.path.length)) best = node;
        });
        if (best) best.classList.add("errors");
      });
    }

    // --- Live count ----------------------------------------------------------

    function payload() {
      const body = { kind: kind ? kind.value : "custom", lifecycle_segment: lifecycle ? lifecycle.value : "" };
      if (body.kind !== "lifecycle") {
        try {
          body.rule = rule || JSON.parse(textarea.value);
        } catch (error) {
          body.rule = textarea.value;
        }
      }
      return body;
    }

    function schedulePreview() {
      clearTimeout(timer);
      timer = setTimeout(preview, 400);
    }

    function preview(body) {
      if (inflight) inflight.abort();
      body = body || payload();
      inflight = new AbortController();
      countNode.textContent = text.counting;
      const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
      fetch(root.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        signal: inflight.signal,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify(body),
      })
        .then((response) => response.json().then((data) => show(response.ok, data, body)))
        .catch((error) => {
          if (error.name === "AbortError") return;
          countNode.textContent = "—";
          errorsNode.replaceChildren(h("li", { text: text.previewFailed }));
        });
    }

    function show(ok, data, sent) {
      let messages = [];
      if (!ok) {
        // Problems of rows nobody has touched yet are not shown; when they
        // are the only ones, the rest of the rule is counted without them.
        const fresh = rule && sent.rule === rule ? untouchedPaths(rule, "", []) : [];
        const rows = Object.entries(data.by_path || {}).filter(([path]) => !within(path, fresh));
        const others = Object.entries(data.errors || {}).filter(([name]) => name !== "rule" || !data.by_path);
        messages = others.flatMap(([, items]) => items).concat(rows.flatMap(([, items]) => items));
        errorPaths = rows.map(([path]) => path);
        if (!messages.length && fresh.length) {
          const rest = touchedOnly(rule);
          if (rest) {
            preview({ ...sent, rule: rest });
          } else {
            errorsNode.replaceChildren();
            countNode.textContent = "—";
            descriptionNode.textContent = "";
            table.hidden = true;
            markErrors();
          }
          return;
        }
      } else {
        errorPaths = [];
      }
      errorsNode.replaceChildren();
      const tbody = table.tBodies[0];
      tbody.replaceChildren();
      if (ok) {
        countNode.textContent = data.count.toLocaleString();
        descriptionNode.textContent = data.description;
        data.sample.forEach((row) => {
          tbody.append(h("tr", {}, [
            h("td", {}, [h("a", { href: row.url, text: row.name }), row.claimant ? " ⚠" : null]),
            h("td", { text: row.kana }),
            h("td", { text: row.segment }),
            h("td", { text: row.last_order || text.noOrders }),
          ]));
        });
      } else {
        countNode.textContent = "—";
        descriptionNode.textContent = "";
        messages.forEach((message) => errorsNode.append(h("li", { text: message })));
      }
      table.hidden = !ok || data.sample.length === 0;
      markErrors();
    }

    // --- Kind: a lifecycle segment has no rule ---------------------------------

    function syncKind() {
      const custom = !kind || kind.value !== "lifecycle";
      root.style.display = custom ? "" : "none";
      const lifecycleRow = document.querySelector(".form-row.field-lifecycle_segment");
      if (lifecycleRow) lifecycleRow.style.display = custom ? "none" : "";
      const jsonModule = textarea && textarea.closest("fieldset");
      if (jsonModule) jsonModule.style.display = custom ? "" : "none";
    }

    if (!editable) return;
    rule = readTextarea();
    draw();
    syncKind();
    textarea.addEventListener("input", () => { rule = readTextarea(); draw(); schedulePreview(); });
    if (kind) kind.addEventListener("change", () => { syncKind(); schedulePreview(); });
    if (lifecycle) lifecycle.addEventListener("change", schedulePreview);
    const worthCounting = kind && kind.value === "lifecycle" ? lifecycle && lifecycle.value : rule && rule.conditions.length;
    if (!root.dataset.counted && worthCounting) schedulePreview();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

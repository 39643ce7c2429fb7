// The console's pages, routed by the URL fragment (#/models, #/models/NAME, #/jobs/ID, #/monitor,
// #/incidents, #/incidents/ID, #/maas, #/audit). Every page reads and writes through /api/v1 only.
// Actions are offered only when the user's rights (GET /api/v1/session) and the object's status
// allow them; the server still checks both.

import { api, get, query, setCsrf, ApiError } from "./api.js";
import { timeChart, lossChart } from "./charts.js";

let me = { user: null, rights: [] };
let cleanup = [];           // timers and charts of the current page
const main = document.getElementById("main");

const can = (right) => me.rights.includes(right);

// -- DOM helpers (text only: no HTML strings from data, so nothing from the server is markup) -----
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const badge = (text) => h("span", { class: `badge ${text}` }, text ?? "–");
const fmt = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "–");
function table(headers, rows, wide = []) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x, i) => h("th", { class: wide.includes(i) ? "wide" : null }, x)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: wide.includes(i) ? "wide" : null }, c))))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "Nothing to show")))));
}
function flash(message, kind = "info") {
  const el = document.getElementById("flash");
  el.textContent = message; el.className = `flash ${kind}`; el.hidden = false;
  clearTimeout(flash.timer); flash.timer = setTimeout(() => { el.hidden = true; }, 6000);
}
function confirmAction(text) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
  });
}
async function act(fn, ok) {
  try { const r = await fn(); if (ok) flash(ok, "ok"); return r; }
  catch (e) { flash(e instanceof ApiError ? `${e.message}${e.status ? ` (${e.status})` : ""}` : String(e), "error"); return undefined; }
}
let generation = 0;         // counts page changes: a late answer for a page left behind is dropped
function every(ms, fn) {
  const mine = generation;
  const tick = () => { if (mine === generation) fn().catch((e) => flash(e.message, "error")); };
  tick();
  const id = setInterval(tick, ms);
  cleanup.push(() => clearInterval(id));
}
// A page's renderer: it draws only while its page is the current one (a slow answer for a page
// the user already left must not replace the next page).
function renderer(mine) {
  return (title, ...children) => { if (mine === generation) main.replaceChildren(h("h1", {}, title), ...children); };
}
const formData = (form) => Object.fromEntries(new FormData(form).entries());

// -- sign-in --------------------------------------------------------------------------------------
function renderWho() {
  const who = document.getElementById("who");
  document.getElementById("nav").hidden = !me.user;
  who.replaceChildren(...(me.user ? [h("span", { id: "user-name" }, me.user),
    h("button", { id: "sign-out", onclick: signOut }, "Sign out")] : []));
}
async function signOut() {
  await act(() => api("DELETE", "/session"));
  me = { user: null, rights: [] }; setCsrf(null); renderWho(); location.hash = "#/signin"; route();
}
function signInPage() {
  const form = h("form", { class: "card signin", id: "signin-form" },
    h("h1", {}, "Sign in"),
    h("label", {}, "Token", h("input", { name: "token", type: "password", autocomplete: "off", required: true, id: "token" })),
    h("p", { class: "muted" }, "Your API token (maas_lifecycle admin create-token, or from your administrator). It is exchanged for a session cookie and not kept by the page."),
    h("button", { class: "primary", type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await act(() => api("POST", "/session", { token: formData(form).token }));
    if (!r) return;
    me = r; setCsrf(r.csrf_token); renderWho();
    location.hash = "#/models";
  });
  main.replaceChildren(form);
}

// -- models ---------------------------------------------------------------------------------------
async function modelsPage(page) {
  const data = await get("/models");
  const list = data.models || data.items || [];
  const parts = [table(["Model", "Status", "Asset", "Elements", "Revision", "Updated"],
    list.map((m) => [h("a", { href: `#/models/${encodeURIComponent(m.name)}` }, m.name), badge(m.status), m.asset || "–",
      m.element_count ?? (m.elements || []).length, m.revision, fmt(m.updated)]), [4, 5])];
  if (can("models.create")) {
    const form = h("form", { class: "inline card", id: "create-model" },
      h("label", {}, "Name", h("input", { name: "name", required: true, maxlength: 100 })),
      h("label", {}, "Asset", h("input", { name: "asset", maxlength: 200, placeholder: "plant1/pump7" })),
      h("label", {}, "Description", h("input", { name: "description" })),
      h("button", { class: "primary", type: "submit" }, "Create model"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await act(() => api("POST", "/models", formData(form)), "Model created");
      if (r) location.hash = `#/models/${encodeURIComponent(r.name)}`;
    });
    parts.unshift(form);
  }
  page("Models", ...parts);
}

function elementForm(m) {
  const form = h("form", { class: "card", id: "add-element" }, h("h2", {}, "Add a rule element"),
    h("div", { class: "inline" },
      h("label", {}, "Name", h("input", { name: "name", required: true })),
      h("label", {}, "Input tags (comma separated)", h("input", { name: "inputs", required: true, placeholder: "Pressure" })),
      h("label", {}, "Expression", h("input", { name: "expression", required: true, placeholder: "Pressure > 10", size: 30 })),
      h("button", { class: "primary", type: "submit" }, "Add element")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = formData(form);
    const body = { name: f.name, kind: "rule", inputs: f.inputs.split(",").map((s) => s.trim()).filter(Boolean),
      params: { expression: f.expression } };
    if (await act(() => api("POST", `/models/${encodeURIComponent(m.name)}/elements`, body), "Element added")) route();
  });
  return form;
}

function modelActions(m, datasets) {
  const name = encodeURIComponent(m.name);
  const s = m.status;
  const buttons = [];
  const trained = (m.elements || []).some((e) => e.trainable && e.training_status === "trained");
  if (["DRAFT", "TRAINED"].includes(s) && can("models.train") && (m.elements || []).some((e) => e.trainable)) {
    buttons.push(h("button", { id: "action-train", onclick: async () => {
      if (trained && !(await confirmAction(`Retrain the trained elements of ${m.name}? Their current training is replaced.`))) return;
      const job = await act(() => api("POST", `/models/${name}/train`, trained ? { elements: m.elements.filter((e) => e.trainable).map((e) => e.name) } : undefined), "Training queued");
      if (job) location.hash = `#/jobs/${job.id}`;
    } }, trained ? "Retrain" : "Train"));
  }
  if (s === "TRAINED" && can("models.prepare")) {
    buttons.push(h("button", { id: "action-prepare", onclick: async () => {
      if (await confirmAction(`Prepare ${m.name} for publication? It is frozen: nothing in it can change afterwards.`)
        && await act(() => api("POST", `/models/${name}/prepare`), "Prepared for publication")) route();
    } }, "Prepare for publication"));
  }
  if (s === "READY_FOR_PUBLICATION" && can("models.publish")) {
    buttons.push(h("button", { id: "action-publish", class: "primary", onclick: async () => {
      if (await confirmAction(`Publish ${m.name}? Its incidents become production incidents.`)
        && await act(() => api("POST", `/models/${name}/publish`), "Published")) route();
    } }, "Publish"));
  }
  if (can("models.create")) {
    buttons.push(h("button", { id: "action-clone", onclick: async () => {
      const target = prompt("Name of the copy", `${m.name}-copy`);
      if (!target) return;
      const r = await act(() => api("POST", `/models/${name}/clone`, { name: target }), "Cloned");
      if (r) location.hash = `#/models/${encodeURIComponent(r.name)}`;
    } }, "Clone"));
  }
  buttons.push(h("a", { href: `#/monitor?model=${name}` }, "Monitoring"), h("a", { href: `#/incidents?model=${name}` }, "Incidents"));
  const box = h("div", { id: "model-actions" }, h("div", { class: "actions" }, buttons));
  if (["TRAINED", "PUBLISHED"].includes(s) && can("models.infer")) box.append(inferenceForm(m, datasets));
  return box;
}

function inferenceForm(m, datasets) {
  const name = encodeURIComponent(m.name);
  const local = (iso) => (iso ? iso.replace(/(\.\d+)?Z$/, "") : "");
  const from = h("input", { name: "from", type: "datetime-local", step: 1, required: true });
  const to = h("input", { name: "to", type: "datetime-local", step: 1, required: true });
  const pick = h("select", { name: "dataset", required: true }, datasets.map((d) => h("option", { value: d.name }, d.name)));
  const fill = () => { const d = datasets.find((x) => x.name === pick.value); if (d) { from.value = local(d.start); to.value = local(d.end); } };
  pick.addEventListener("change", fill); fill();
  const form = h("form", { class: "inline", id: "inference-form" }, h("label", {}, "Dataset", pick),
    h("label", {}, "From (UTC)", from), h("label", {}, "To (UTC)", to),
    h("button", { type: "submit", id: "action-infer", disabled: !datasets.length }, "Run historical inference"),
    h("button", { type: "button", id: "action-stop-inference", onclick: async () => {
      if (await confirmAction(`Stop the inference of ${m.name}?`)) await act(() => api("DELETE", `/models/${name}/inference`), "Inference stopped");
    } }, "Stop inference"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { mode: "historical", dataset: pick.value, from: `${from.value}Z`, to: `${to.value}Z` };
    const job = await act(() => api("POST", `/models/${name}/inference`, body), "Inference queued");
    if (job) location.hash = `#/jobs/${job.id}`;
  });
  return h("div", {}, h("h2", {}, "Inference"), form);
}

async function modelPage(nameParam, page) {
  const name = decodeURIComponent(nameParam);
  const [m, hist, ds] = await Promise.all([get(`/models/${encodeURIComponent(name)}`),
    get(`/audit${query({ object: name, type: "model", limit: 200 })}`), get("/datasets")]);
  const elements = m.elements || [];
  const editable = ["DRAFT", "TRAINED"].includes(m.status) && can("models.edit");
  const elRows = elements.map((e) => [e.name, e.kind, (e.inputs || []).join(", "), (e.outputs || []).join(", ") || "–",
    badge(e.training_status), fmt(e.trained_at),
    editable ? h("button", { class: "danger", onclick: async () => {
      if (await confirmAction(`Remove element ${e.name}?`) && await act(() => api("DELETE", `/models/${encodeURIComponent(name)}/elements/${encodeURIComponent(e.name)}`), "Element removed")) route();
    } }, "Remove") : ""]);
  const lossCards = elements.filter((e) => e.artifact && (e.artifact.losses || []).length).map((e) => {
    const div = h("div", { class: "chart loss-chart", "data-element": e.name });
    queueMicrotask(() => cleanup.push(lossChart(div, e.artifact.losses, `${e.name}: loss per epoch`).destroy));
    return h("div", { class: "card" }, div, h("p", { class: "muted" }, `threshold ${e.artifact.threshold ?? "–"}; best epoch ${e.artifact.best_epoch ?? "–"}`));
  });
  const history = (hist.entries || []).filter((x) => x.status_after || x.status_before);
  page(`Model ${m.name}`,
    h("div", { class: "grid2" },
      h("div", { class: "card" }, h("dl", { class: "kv" },
        h("dt", {}, "Status"), h("dd", { id: "model-status" }, badge(m.status)),
        h("dt", {}, "Asset"), h("dd", {}, m.asset || "–"), h("dt", {}, "Description"), h("dd", {}, m.description || "–"),
        h("dt", {}, "Origin"), h("dd", {}, `${m.origin}${m.origin_source ? ` (${m.origin_source})` : ""}`),
        h("dt", {}, "Revision"), h("dd", {}, m.revision),
        h("dt", {}, "Inference markups"), h("dd", {}, (m.inference_markups || []).join(", ") || "–"),
        h("dt", {}, "Prepared"), h("dd", {}, m.prepared_by ? `${m.prepared_by}, ${fmt(m.prepared)}` : "–"),
        h("dt", {}, "Published"), h("dd", {}, m.published_by ? `${m.published_by}, ${fmt(m.published)}` : "–"),
        h("dt", {}, "sha256"), h("dd", {}, m.sha256 || "–"))),
      h("div", { class: "card" }, h("h2", {}, "Actions"), modelActions(m, ds.datasets || []))),
    h("h2", {}, "Elements"),
    table(["Element", "Kind", "Inputs", "Outputs", "Training", "Trained", ""], elRows, [3, 5]),
    editable ? elementForm(m) : "",
    lossCards.length ? h("h2", {}, "Training loss") : "", ...lossCards,
    h("h2", {}, "Markups used"),
    h("p", {}, [...new Set([...(m.inference_markups || []), ...elements.flatMap((e) => (e.training && e.training.markups) || [])])].join(", ") || "–"),
    h("h2", {}, "Status history"),
    table(["When", "Who", "Action", "Before → after", "Outcome"], history.map((x) => [fmt(x.at), x.actor, x.action,
      `${x.status_before || "–"} → ${x.status_after || "–"}`, badge(x.outcome)]), [4]));
}

// -- training jobs ---------------------------------------------------------------------------------
async function jobsPage(page) {
  const body = h("div", { id: "jobs-body" });
  page("Training and jobs", body);
  const mine = generation;
  every(2000, async () => {
    const data = await get("/jobs?limit=50");
    if (mine !== generation) return;
    const rows = (data.jobs || []).map((j) => [h("a", { href: `#/jobs/${j.id}` }, `#${j.id}`), j.kind, j.model || "–", badge(j.state),
      j.progress && j.progress.fraction != null ? `${Math.round(j.progress.fraction * 100)} %` : "–", j.created_by, fmt(j.created_at)]);
    body.replaceChildren(table(["Job", "Kind", "Model", "State", "Progress", "By", "Created"], rows, [5, 6]));
  });
}

async function jobPage(id, page) {
  let chart = null; let chartElement = null;
  const progressBar = h("div", { id: "job-progress" });  // width set through the CSSOM (the CSP refuses style attributes)
  const info = h("dl", { class: "kv", id: "job-info" });
  const chartDiv = h("div", { class: "chart", id: "job-loss" });
  const results = h("div");
  page(`Job #${id}`, h("div", { class: "card" }, h("div", { class: "progress" }, progressBar), info),
    h("div", { class: "card" }, h("h2", {}, "Loss per epoch (current element)"), chartDiv), results);
  let done = false;
  every(1500, async () => {
    if (done) return;
    const j = await get(`/jobs/${id}`);
    const p = j.progress || {};
    progressBar.style.width = `${Math.round((p.fraction || (j.state === "done" ? 1 : 0)) * 100)}%`;
    info.replaceChildren(h("dt", {}, "State"), h("dd", { id: "job-state" }, badge(j.state)),
      h("dt", {}, "Model"), h("dd", {}, j.model ? h("a", { href: `#/models/${encodeURIComponent(j.model)}` }, j.model) : "–"),
      h("dt", {}, "Element"), h("dd", {}, p.element ? `${p.element} (${p.element_index}/${(p.elements || []).length}), ${p.phase}` : p.phase || "–"),
      h("dt", {}, "Epoch"), h("dd", {}, p.epoch != null ? `${p.epoch} / ${p.max_epochs}` : "–"),
      h("dt", {}, "Started by"), h("dd", {}, j.created_by), h("dt", {}, "Error"), h("dd", {}, j.error || "–"));
    const losses = p.losses || [];
    if (losses.length) {
      if (!chart || chartElement !== p.element) {
        if (chart) chart.destroy();
        chartDiv.replaceChildren();
        chart = lossChart(chartDiv, losses, p.element); chartElement = p.element;
        cleanup.push(() => chart && chart.destroy());
      } else chart.update(losses);
    }
    const res = p.results || (j.result && j.result.elements) || {};
    results.replaceChildren(h("h2", {}, "Elements"), table(["Element", "Result", "Epochs", "Threshold", "Error"],
      Object.entries(res).map(([e, r]) => [e, badge(r.state), r.epochs ?? "–", r.threshold ?? "–", r.error || "–"])));
    done = ["done", "failed", "cancelled"].includes(j.state);
  });
}

// -- monitoring -----------------------------------------------------------------------------------
// Tag values of a dataset and, for a model's element with inference results, its predictions, its
// artifact and threshold; incidents as red spans. Both charts zoom together; every zoom asks the
// server for that range reduced to the minimum and maximum per pixel column.
async function monitorPage(params, page) {
  const datasets = (await get("/datasets")).datasets || [];
  const models = (await get("/models")).models || [];
  const elementSelect = h("select", { name: "element", id: "monitor-element" }, h("option", { value: "" }, "–"));
  const modelSelect = h("select", { name: "model", id: "monitor-model" }, h("option", { value: "" }, "–"),
    models.map((m) => h("option", { value: m.name, selected: m.name === params.get("model") }, m.name)));
  let elements = [];
  async function fillElements() {
    elements = modelSelect.value ? ((await get(`/models/${encodeURIComponent(modelSelect.value)}`)).elements || []) : [];
    elementSelect.replaceChildren(h("option", { value: "" }, "–"),
      ...elements.map((e) => h("option", { value: e.name, selected: e.name === params.get("element") }, `${e.name} (${e.kind})`)));
  }
  modelSelect.addEventListener("change", () => { params.delete("element"); fillElements(); });
  const form = h("form", { class: "filters card", id: "monitor-form" },
    h("label", {}, "Dataset", h("select", { name: "dataset", id: "monitor-dataset" }, datasets.map((d) => h("option", { value: d.name, selected: d.name === params.get("dataset") }, d.name)))),
    h("label", {}, "Tags (comma separated; empty: the element's or the first 8)", h("input", { name: "tags", value: params.get("tags") || "" })),
    h("label", {}, "Model", modelSelect), h("label", {}, "Element", elementSelect),
    h("button", { class: "primary", type: "submit" }, "Show"),
    h("button", { type: "button", id: "zoom-reset" }, "Whole range"));
  const chartDiv = h("div", { class: "chart", id: "monitor-chart" });
  const artifactDiv = h("div", { class: "chart", id: "artifact-chart" });
  const status = h("p", { class: "muted", id: "monitor-status" }, datasets.length ? "" : "No dataset yet: upload one (maas_model dataset upload).");
  const artifactStatus = h("p", { class: "muted", id: "artifact-status" });
  page("Monitoring", form, h("div", { class: "card" }, h("h2", {}, "Tag values and predictions"), chartDiv, status),
    h("div", { class: "card" }, h("h2", {}, "Artifact and threshold"), artifactDiv, artifactStatus),
    h("p", { class: "muted" }, "Drag across a chart to zoom in; double-click or 'Whole range' to zoom out. Red spans are incidents."));
  await fillElements();
  const charts = {};
  function chartIn(key, div, labels, load) {
    const id = labels.join("\u0000");
    if (!charts[key] || charts[key].id !== id) {
      if (charts[key]) charts[key].destroy();
      div.replaceChildren();
      charts[key] = timeChart(div, { labels, height: key === "tags" ? 320 : 220, onZoom: (a, b) => load(a, b), onReset: () => load() });
      charts[key].id = id;
    }
    return charts[key];
  }
  cleanup.push(() => Object.values(charts).forEach((c) => c.destroy()));
  let req = 0;
  const iso = (s) => (s ? new Date(s * 1000).toISOString() : undefined);
  async function load(from, to) {
    const f = formData(form);
    const d = datasets.find((x) => x.name === f.dataset);
    if (!d) return;
    const el = elements.find((e) => e.name === f.element);
    const own = el ? [...new Set([...(el.inputs || []), ...(el.outputs || [])])].filter((t) => d.tags.includes(t)) : [];
    const tags = f.tags ? f.tags.split(",").map((s) => s.trim()).filter(Boolean) : (own.length ? own : d.tags.slice(0, 8));
    const predicted = el ? (el.outputs || []).filter((t) => tags.includes(t)) : [];
    const buckets = Math.min(Math.max(Math.round(chartDiv.clientWidth || 1000), 100), 4000);
    const mine = ++req;
    const t0 = performance.now();
    const [s, r] = await Promise.all([
      act(() => get(`/datasets/${encodeURIComponent(d.name)}/series${query({ tag: tags, buckets, from: iso(from), to: iso(to) })}`)),
      el ? act(() => get(`/models/${encodeURIComponent(f.model)}/results/series${query({ element: el.name, tag: predicted, buckets,
        from: iso(from) || d.start, to: iso(to) || d.end })}`)) : null]);
    if (!s || mine !== req) return;
    const rs = (r && r.series) || {};
    const labels = tags.concat(predicted.filter((t) => rs[`predicted:${t}`]).map((t) => `${t} (predicted)`));
    const tables = tags.map((t) => [s.series[t].times, s.series[t].values])
      .concat(predicted.filter((t) => rs[`predicted:${t}`]).map((t) => [rs[`predicted:${t}`].times, rs[`predicted:${t}`].values]));
    const tagChart = chartIn("tags", chartDiv, labels, load);
    tagChart.setData(tables);
    let markers = [];
    if (f.model) {
      const inc = await get(`/incidents${query({ model: f.model, element: f.element, from: s.from, to: s.to, limit: 1000 })}`);
      markers = (inc.incidents || []).map((i) => ({ id: i.id, from: Date.parse(i.start) / 1000, to: i.end ? Date.parse(i.end) / 1000 : Date.parse(s.to) / 1000 }));
    }
    tagChart.setMarkers(markers);
    if (rs.artifact && rs.artifact.points_in) {
      const ac = chartIn("artifact", artifactDiv, ["artifact", "threshold"], load);
      ac.setData([[rs.artifact.times, rs.artifact.values], [rs.threshold.times, rs.threshold.values]]);
      ac.plot.setScale("x", { min: Date.parse(s.from) / 1000, max: Date.parse(s.to) / 1000 });
      ac.setMarkers(markers);
      artifactStatus.textContent = `${el.name}: ${rs.artifact.points_in.toLocaleString()} result points shown as ${rs.artifact.points_out.toLocaleString()}`;
      artifactDiv.dataset.rendered = String(mine);
    } else {
      artifactStatus.textContent = el ? `No inference results of ${el.name} in this range.` : "Choose a model and an element to see its artifact.";
    }
    const pin = tags.reduce((a, t) => a + s.series[t].points_in, 0);
    const pout = tags.reduce((a, t) => a + s.series[t].points_out, 0);
    status.textContent = `${fmt(s.from)} – ${fmt(s.to)}: ${pin.toLocaleString()} points shown as ${pout.toLocaleString()}, ${markers.length} incidents (${Math.round(performance.now() - t0)} ms)`;
    chartDiv.dataset.rendered = String(mine);
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  document.getElementById("zoom-reset").addEventListener("click", () => load());
  if (datasets.length) load();
}

// -- incidents ------------------------------------------------------------------------------------
async function incidentsPage(params, page) {
  const statuses = ((await get("/incident-statuses")).statuses || []).map((s) => (typeof s === "string" ? s : s.name));
  const filters = Object.fromEntries(["model", "element", "status", "production", "from", "to"].map((k) => [k, params.get(k) || ""]));
  const form = h("form", { class: "filters card", id: "incident-filters" },
    h("label", {}, "Model", h("input", { name: "model", value: filters.model })),
    h("label", {}, "Element", h("input", { name: "element", value: filters.element })),
    h("label", {}, "Status", h("select", { name: "status" }, h("option", { value: "" }, "any"), statuses.map((s) => h("option", { value: s, selected: s === filters.status }, s)))),
    h("label", {}, "Production / test", h("select", { name: "production" }, h("option", { value: "" }, "both"),
      h("option", { value: "true", selected: filters.production === "true" }, "production"), h("option", { value: "false", selected: filters.production === "false" }, "test"))),
    h("label", {}, "From", h("input", { name: "from", type: "datetime-local", value: filters.from })),
    h("label", {}, "To", h("input", { name: "to", type: "datetime-local", value: filters.to })),
    h("button", { class: "primary", type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); location.hash = `#/incidents${query(formData(form))}`; });
  const api_filters = { ...filters, from: filters.from ? new Date(`${filters.from}Z`).toISOString() : "", to: filters.to ? new Date(`${filters.to}Z`).toISOString() : "" };
  const data = await get(`/incidents${query({ ...api_filters, limit: 200 })}`);
  const rows = (data.incidents || []).map((i) => [h("a", { href: `#/incidents/${i.id}` }, `#${i.id}`), i.model, i.element, fmt(i.start), i.end ? fmt(i.end) : "open",
    badge(i.status), i.production ? "production" : "test", (i.top_tags || []).slice(0, 3).map((t) => t.tag).join(", ")]);
  page("Incidents", form,
    h("p", { class: "actions" }, h("a", { href: `/api/v1/incidents/export${query({ ...api_filters, format: "csv" })}`, download: "incidents.csv" }, "Export CSV"),
      h("a", { href: `/api/v1/incidents/export${query({ ...api_filters, format: "json" })}`, download: "incidents.json" }, "Export JSON")),
    table(["Incident", "Model", "Element", "Start", "End", "Status", "", "Top tags"], rows, [6, 7]),
    data.next ? h("p", { class: "muted" }, "More incidents match: narrow the filters.") : "");
}

async function incidentPage(id, page) {
  const [i, st] = await Promise.all([get(`/incidents/${id}`), get("/incident-statuses")]);
  const statuses = (st.statuses || []).map((s) => (typeof s === "string" ? s : s.name));
  const parts = [h("div", { class: "grid2" },
    h("div", { class: "card" }, h("dl", { class: "kv" },
      h("dt", {}, "Model"), h("dd", {}, h("a", { href: `#/models/${encodeURIComponent(i.model)}` }, i.model)),
      h("dt", {}, "Element"), h("dd", {}, `${i.element} (${i.kind})`),
      h("dt", {}, "Start"), h("dd", {}, fmt(i.start)), h("dt", {}, "End"), h("dd", {}, i.end ? fmt(i.end) : "open"),
      h("dt", {}, "Artifact / threshold"), h("dd", {}, `${i.artifact ?? "–"} / ${i.threshold ?? "–"}`),
      h("dt", {}, "Status"), h("dd", { id: "incident-status" }, i.status), h("dt", {}, "Cause"), h("dd", {}, i.cause || "–"),
      h("dt", {}, "Opinion"), h("dd", {}, i.opinion || "–"), h("dt", {}, "Note"), h("dd", {}, i.note || "–"),
      h("dt", {}, "Group"), h("dd", {}, i.group ?? "–"), h("dt", {}, "Registered as"), h("dd", {}, i.production ? "production" : "test"))),
    h("div", { class: "card" }, h("h2", {}, "Top tags"),
      table(["Tag", "Value", "Share"], (i.top_tags || []).map((t) => [t.tag, t.value ?? "–", t.share != null ? `${Math.round(t.share * 100)} %` : "–"]))))];
  const chartDiv = h("div", { class: "chart", id: "incident-chart" });
  const chartNote = h("p", { class: "muted", id: "incident-chart-status" });
  parts.push(h("div", { class: "card" }, h("h2", {}, "Artifact around the incident"), chartDiv, chartNote));
  const start = Date.parse(i.start) / 1000;
  const end = i.end ? Date.parse(i.end) / 1000 : Date.now() / 1000;
  const pad = Math.max((end - start) * 2, 600);
  const drawAround = async (from, to) => {
    // only ask for results the model and element still have (no request that is bound to fail)
    if (drawAround.known === undefined) {
      const exists = ((await get("/models")).models || []).some((m) => m.name === i.model);
      const els = exists ? ((await get(`/models/${encodeURIComponent(i.model)}`)).elements || []) : [];
      drawAround.known = els.some((e) => e.name === i.element);
    }
    if (!drawAround.known) { chartNote.textContent = `The model no longer has the element ${i.element}.`; return; }
    const r = await get(`/models/${encodeURIComponent(i.model)}/results/series${query({ element: i.element, buckets: 800,
      from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString() })}`);
    const rs = r.series || {};
    if (!rs.artifact || !rs.artifact.points_in) { chartNote.textContent = "No inference results around this incident."; return; }
    if (!drawAround.chart) {
      drawAround.chart = timeChart(chartDiv, { labels: ["artifact", "threshold"], height: 220,
        onZoom: (a, b) => drawAround(a, b), onReset: () => drawAround(start - pad, end + pad) });
      cleanup.push(() => drawAround.chart.destroy());
    }
    drawAround.chart.setData([[rs.artifact.times, rs.artifact.values], [rs.threshold.times, rs.threshold.values]]);
    drawAround.chart.setMarkers([{ from: start, to: end }]);
    chartNote.textContent = `${fmt(r.from)} – ${fmt(r.to)}: ${rs.artifact.points_in.toLocaleString()} result points`;
    chartDiv.dataset.rendered = "1";
  };
  queueMicrotask(() => drawAround(start - pad, end + pad).catch((e) => { chartNote.textContent = e.message; }));
  if (can("incidents.edit")) {
    const form = h("form", { class: "card", id: "triage-form" }, h("h2", {}, "Triage"),
      h("div", { class: "inline" },
        h("label", {}, "Status", h("select", { name: "status" }, statuses.map((s) => h("option", { value: s, selected: s === i.status }, s)))),
        h("label", {}, "Cause", h("input", { name: "cause", value: i.cause || "" }))),
      h("label", {}, "Expert opinion", h("textarea", { name: "opinion" }, i.opinion || "")),
      h("label", {}, "Note", h("textarea", { name: "note" }, i.note || "")),
      h("button", { class: "primary", type: "submit" }, "Save"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = formData(form);
      const body = { status: f.status, cause: f.cause || null, opinion: f.opinion || null, note: f.note || null };
      if (await act(() => api("PATCH", `/incidents/${id}`, body), "Incident updated")) route();
    });
    parts.push(form);
  }
  page(`Incident #${i.id}`, ...parts);
}

// -- MaaS overview --------------------------------------------------------------------------------
function maasPage(page) {
  const body = h("div", { id: "maas-body" });
  const stamp = h("p", { class: "muted", id: "maas-read" });
  page("MaaS overview", stamp, body);
  every(2000, async () => {
    let data;
    try { data = await get("/maas/overview"); } catch (e) { stamp.textContent = e.message; return; }
    if (!data.configured) { stamp.textContent = "The service runs without a ZooKeeper quorum (-zq): no MaaS cluster to show."; return; }
    stamp.textContent = `ZooKeeper ${data.zk_quorum}, read ${fmt(data.read)} (refreshed every 2 s)`;
    body.replaceChildren(table(["Model", "Version", "Desired", "Running", "Ready", "Restarts", "Last error", "Endpoints"],
      data.models.map((r) => [r.name, r.version, r.desired ?? "–", r.running ?? "–", r.ready ?? "–", r.restarts ?? "–", r.last_error || "–",
        h("ul", { class: "endpoints" }, r.endpoints.map((e) => h("li", { "data-instance": e.instance_id }, `${e.url} (${e.instance_id})`)))]), [6]));
  });
}

// -- audit ----------------------------------------------------------------------------------------
async function auditPage(params, page) {
  const f = Object.fromEntries(["object", "type", "actor", "action", "outcome", "from", "to"].map((k) => [k, params.get(k) || ""]));
  const form = h("form", { class: "filters card", id: "audit-filters" },
    h("label", {}, "Object", h("input", { name: "object", value: f.object })),
    h("label", {}, "Type", h("input", { name: "type", value: f.type, placeholder: "model" })),
    h("label", {}, "Actor", h("input", { name: "actor", value: f.actor })),
    h("label", {}, "Action", h("input", { name: "action", value: f.action, placeholder: "models.publish" })),
    h("label", {}, "Outcome", h("select", { name: "outcome" }, ["", "ok", "refused", "failed"].map((o) => h("option", { value: o, selected: o === f.outcome }, o || "any")))),
    h("label", {}, "From", h("input", { name: "from", type: "datetime-local", value: f.from })),
    h("label", {}, "To", h("input", { name: "to", type: "datetime-local", value: f.to })),
    h("button", { class: "primary", type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); location.hash = `#/audit${query(formData(form))}`; });
  const q = { ...f, from: f.from ? new Date(`${f.from}Z`).toISOString() : "", to: f.to ? new Date(`${f.to}Z`).toISOString() : "", limit: 500 };
  const data = await get(`/audit${query(q)}`);
  const rows = (data.entries || []).slice().reverse().map((e) => [fmt(e.at), e.actor, e.action, `${e.object_type}: ${e.object}`,
    `${e.status_before || "–"} → ${e.status_after || "–"}`, badge(e.outcome), e.detail ? JSON.stringify(e.detail).slice(0, 160) : ""]);
  page("Audit trail", form, table(["When", "Who", "Action", "Object", "Status", "Outcome", "Detail"], rows, [4, 6]),
    data.next ? h("p", { class: "muted" }, "Only the first 500 entries are shown: narrow the filters.") : "");
}

// -- routing --------------------------------------------------------------------------------------
const ROUTES = [
  [/^#\/models\/([^/?]+)$/, (m, _, pg) => modelPage(m[1], pg)],
  [/^#\/models$/, (m, _, pg) => modelsPage(pg)],
  [/^#\/jobs\/(\d+)$/, (m, _, pg) => jobPage(m[1], pg)],
  [/^#\/jobs$/, (m, _, pg) => jobsPage(pg)],
  [/^#\/monitor$/, (m, p, pg) => monitorPage(p, pg)],
  [/^#\/incidents\/(\d+)$/, (m, _, pg) => incidentPage(m[1], pg)],
  [/^#\/incidents$/, (m, p, pg) => incidentsPage(p, pg)],
  [/^#\/maas$/, (m, _, pg) => maasPage(pg)],
  [/^#\/audit$/, (m, p, pg) => auditPage(p, pg)],
];

async function route() {
  cleanup.forEach((fn) => { try { fn(); } catch { /* already gone */ } });
  cleanup = [];
  generation += 1;
  const [path, qs] = (location.hash || "#/models").split("?");
  if (!me.user) { signInPage(); return; }
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", path.startsWith(a.getAttribute("href"))));
  const found = ROUTES.find(([re]) => re.test(path));
  if (!found) { location.hash = "#/models"; return; }
  const mine = generation;
  const page = renderer(mine);
  try { await found[1](path.match(found[0]), new URLSearchParams(qs || ""), page); }
  catch (e) {
    if (mine !== generation) return;
    if (e instanceof ApiError && e.status === 401) { me = { user: null, rights: [] }; renderWho(); signInPage(); return; }
    page("Error", h("p", { class: "flash error" }, e.message));
  }
}

async function start() {
  me = await get("/session");
  setCsrf(me.csrf_token);
  renderWho();
  window.addEventListener("hashchange", route);
  route();
}
start();

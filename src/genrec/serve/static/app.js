// genrec web demo: plain JS over the JSON API (no build step, no external requests).
//
// URL parameters (applied on load, kept up to date so a view can be shared):
//   models=a,b   model, and optionally a second one to compare with
//   user=ID      recommend for a known user         history=ID,ID,...  an ad-hoc history
//   k=10         list length                        seen=1             keep seen items
//   q=TEXT       pre-fill the title search (shows its suggestions)
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],          // GET /models
  mode: "user",        // "user" | "history"
  history: [],         // ad-hoc history: [{item_id, title, genres, year}]
};

// ------------------------------------------------------------------ helpers
async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  };
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = data && data.detail ? data.detail : `${resp.status} ${resp.statusText}`;
    throw new Error(msg);
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

function formatScore(x) {
  if (x === null || x === undefined) return "";
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 0.001 || a >= 10000)) return x.toExponential(2);
  return x.toFixed(a >= 100 ? 1 : 4);
}

function itemLabel(item) {
  const title = item.title || `item ${item.item_id}`;
  return item.year ? `${title} (${item.year})` : title;
}

function genreTags(item) {
  const box = el("span", {class: "tags"});
  for (const g of (item.genres || []).slice(0, 4)) box.append(el("span", {class: "tag", text: g}));
  return box;
}

// ------------------------------------------------------------------ models and users
function modelInfo(name) {
  const m = state.models.find((x) => x.name === name);
  if (!m) return "";
  return `${m.model_class} · ${m.n_users.toLocaleString()} users · ` +
    `${m.n_items.toLocaleString()} items`;
}

function updateModelInfo() {
  $("model-a-info").textContent = modelInfo($("model-a").value);
  $("model-b-info").textContent = modelInfo($("model-b").value);
}

async function loadModels() {
  state.models = await api("/models");
  const a = $("model-a");
  const b = $("model-b");
  for (const m of state.models) {
    a.append(el("option", {value: m.name, text: m.name}));
    b.append(el("option", {value: m.name, text: m.name}));
  }
  if (state.models.length > 1) b.value = state.models[1].name;
  updateModelInfo();
}

async function loadUsers() {
  const model = $("model-a").value;
  if (!model) return;
  const data = await api(`/users?model=${encodeURIComponent(model)}&limit=500`);
  const list = $("user-list");
  list.replaceChildren(...data.user_ids.map((u) => el("option", {value: String(u)})));
  state.userTotal = data.total;
  $("user").placeholder = `type or pick one of ${data.total.toLocaleString()} user ids`;
}

async function randomUser() {
  const model = $("model-a").value;
  const total = state.userTotal || 1;
  const offset = Math.floor(Math.random() * total);
  const data = await api(`/users?model=${encodeURIComponent(model)}&offset=${offset}&limit=1`);
  if (data.user_ids.length) $("user").value = String(data.user_ids[0]);
  setMode("user");
  run();
}

// ------------------------------------------------------------------ modes and history
function setMode(mode) {
  state.mode = mode;
  $("mode-user").classList.toggle("active", mode === "user");
  $("mode-history").classList.toggle("active", mode === "history");
  $("user-pane").hidden = mode !== "user";
  $("history-pane").hidden = mode !== "history";
}

function renderHistory(items, total) {
  const list = $("history-list");
  const editable = state.mode === "history";
  list.replaceChildren(...items.map((item, i) => {
    const li = el("li", {class: "chip", "data-item-id": String(item.item_id)},
      el("span", {class: "chip-title", text: itemLabel(item), title: (item.genres || []).join(", ")}));
    if (editable) {
      li.append(el("button", {
        type: "button", class: "remove", title: "remove", text: "×",
        onclick: () => { state.history.splice(i, 1); renderHistory(state.history); },
      }));
    }
    return li;
  }));
  const n = total === undefined ? items.length : total;
  $("history-count").textContent = n ? (n > items.length
    ? `(last ${items.length} of ${n} items)` : `(${n} items)`) : "";
  $("history-empty").hidden = items.length > 0;
}

function addToHistory(item) {
  if (state.mode !== "history") {
    setMode("history");
    state.history = [];
  }
  if (!state.history.some((h) => String(h.item_id) === String(item.item_id))) {
    state.history.push({item_id: item.item_id, title: item.title, genres: item.genres, year: item.year});
  }
  renderHistory(state.history);
}

// autocomplete over GET /items?query=
let searchTimer = null;
let suggestionIndex = -1;

function hideSuggestions() {
  $("suggestions").hidden = true;
  suggestionIndex = -1;
}

async function suggest() {
  const query = $("item-search").value.trim();
  if (query.length < 2) { hideSuggestions(); return; }
  const data = await api(`/items?query=${encodeURIComponent(query)}&limit=8`);
  const box = $("suggestions");
  box.replaceChildren(...data.items.map((item) => el("li", {
    class: "suggestion",
    onmousedown: (ev) => { ev.preventDefault(); pick(item); },
  }, el("span", {text: itemLabel(item)}), genreTags(item))));
  if (!data.items.length) box.append(el("li", {class: "none", text: "no matching title"}));
  box.hidden = false;
  suggestionIndex = -1;
}

function pick(item) {
  addToHistory(item);
  $("item-search").value = "";
  hideSuggestions();
  $("item-search").focus();
}

function onSearchKey(ev) {
  const items = [...$("suggestions").querySelectorAll("li.suggestion")];
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    if (!items.length) return;
    ev.preventDefault();
    suggestionIndex = (suggestionIndex + (ev.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
    items.forEach((li, i) => li.classList.toggle("active", i === suggestionIndex));
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    const target = items[Math.max(suggestionIndex, 0)];
    if (target) target.dispatchEvent(new MouseEvent("mousedown"));
    else if (!$("item-search").value.trim()) run();
  } else if (ev.key === "Escape") {
    hideSuggestions();
  }
}

// ------------------------------------------------------------------ recommendations
function selectedModels() {
  const a = $("model-a").value;
  const b = $("model-b").value;
  return b && b !== a ? [a, b] : [a];
}

function writeUrl() {
  const params = new URLSearchParams();
  params.set("models", selectedModels().join(","));
  if (state.mode === "user") params.set("user", $("user").value.trim());
  else params.set("history", state.history.map((h) => h.item_id).join(","));
  params.set("k", $("k").value);
  if (!$("exclude-seen").checked) params.set("seen", "1");
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

function renderColumn(col, model, data, shared) {
  col.hidden = false;
  col.querySelector(".col-title").replaceChildren(
    el("span", {text: model}), el("small", {class: "hint", text: modelInfo(model)}));
  const list = col.querySelector(".recs");
  list.replaceChildren(...data.items.map((item) => {
    const isShared = shared.has(String(item.item_id));
    return el("li", {class: isShared ? "rec shared" : "rec", "data-item-id": String(item.item_id)},
      el("span", {class: "rank", text: String(item.rank)}),
      el("span", {class: "body"},
        el("span", {class: "title", text: itemLabel(item)}),
        genreTags(item)),
      el("span", {class: "badge", text: isShared ? "shared" : ""}),
      el("span", {class: "score", title: "model score", text: formatScore(item.score)}),
      el("button", {
        type: "button", class: "add", title: "add to my history", text: "+",
        onclick: () => addToHistory(item),
      }));
  }));
  if (!data.items.length) list.append(el("li", {class: "none", text: "no items qualified"}));
}

async function run() {
  showError("");
  const models = selectedModels();
  const k = parseInt($("k").value, 10);
  const body = {k: Number.isFinite(k) ? k : 10, exclude_seen: $("exclude-seen").checked};
  document.body.dataset.state = "loading";
  try {
    if (state.mode === "user") {
      const user = $("user").value.trim();
      if (!user) throw new Error("enter a user id (or press Random user)");
      body.user_id = user;
      const hist = await api(`/users/${encodeURIComponent(user)}/history` +
        `?model=${encodeURIComponent(models[0])}&limit=30`);
      renderHistory(hist.items, hist.n_interactions);
    } else {
      if (!state.history.length) throw new Error("add at least one item to the history");
      body.history = state.history.map((h) => h.item_id);
      renderHistory(state.history);
    }
    writeUrl();
    const results = await Promise.all(models.map((model) => api("/recommend", {...body, model})));
    const ids = results.map((r) => new Set(r.items.map((i) => String(i.item_id))));
    const shared = models.length === 2
      ? new Set([...ids[0]].filter((x) => ids[1].has(x))) : new Set();
    renderColumn($("col-a"), models[0], results[0], shared);
    if (models.length === 2) {
      renderColumn($("col-b"), models[1], results[1], shared);
      const union = new Set([...ids[0], ...ids[1]]).size;
      $("overlap-count").textContent =
        `${shared.size} of ${Math.max(ids[0].size, ids[1].size)} items shared`;
      $("jaccard").textContent = union ? (shared.size / union).toFixed(3) : "0.000";
      $("overlap").hidden = false;
    } else {
      $("col-b").hidden = true;
      $("overlap").hidden = true;
    }
    $("results").classList.toggle("two", models.length === 2);
    document.body.dataset.state = "done";
  } catch (err) {
    showError(err.message);
    document.body.dataset.state = "error";
  }
}

// ------------------------------------------------------------------ start-up
async function applyUrl() {
  const params = new URLSearchParams(location.search);
  const names = state.models.map((m) => m.name);
  const wanted = (params.get("models") || "").split(",").filter((m) => m);
  for (const m of wanted) {
    if (!names.includes(m)) throw new Error(`unknown model '${m}' in the address; served: ${names.join(", ")}`);
  }
  if (wanted.length) {
    $("model-a").value = wanted[0];
    $("model-b").value = wanted.length > 1 ? wanted[1] : "";
  }
  if (params.has("k")) $("k").value = params.get("k");
  if (params.get("seen") === "1") $("exclude-seen").checked = false;
  updateModelInfo();
  if (params.get("history") || params.get("q")) {
    setMode("history");
    const ids = (params.get("history") || "").split(",").filter((x) => x);
    state.history = await Promise.all(ids.map((id) => api(`/items/${encodeURIComponent(id)}`)));
    renderHistory(state.history);
    if (params.get("q")) {  // pre-filled title search (open suggestions)
      $("item-search").value = params.get("q");
      await suggest();
    }
    return ids.length > 0;
  }
  if (params.get("user")) {
    $("user").value = params.get("user");
    return true;
  }
  return false;
}

async function init() {
  $("mode-user").addEventListener("click", () => setMode("user"));
  $("mode-history").addEventListener("click", () => setMode("history"));
  $("go-user").addEventListener("click", run);
  $("go-history").addEventListener("click", run);
  $("random-user").addEventListener("click", () => randomUser().catch((e) => showError(e.message)));
  $("clear-history").addEventListener("click", () => { state.history = []; renderHistory([]); });
  $("user").addEventListener("keydown", (ev) => { if (ev.key === "Enter") run(); });
  $("model-a").addEventListener("change", () => { updateModelInfo(); loadUsers().catch(() => {}); });
  $("model-b").addEventListener("change", updateModelInfo);
  const search = $("item-search");
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => suggest().catch((e) => showError(e.message)), 150);
  });
  search.addEventListener("keydown", onSearchKey);
  search.addEventListener("blur", () => setTimeout(hideSuggestions, 100));
  try {
    await loadModels();
    const go = await applyUrl();
    await loadUsers();
    if (go) await run();
    else document.body.dataset.state = "ready";
  } catch (err) {
    showError(err.message);
    document.body.dataset.state = "error";
  }
}

init();

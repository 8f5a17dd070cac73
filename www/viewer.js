// The pocaduck-edge viewer: pick a dataset and labels, see their points with three.js.
//
// The selection (dataset, read mode, labels, level of detail) lives in the URL's query string,
// so a view can be shared and a reload restores it. Labels stay decimal strings throughout:
// many exceed 2^53 and a JS number would silently change them.
//
// For tests: `document.body.dataset.state` is "loading", "ready" or "error"; the HUD's
// values carry `data-testid` and their exact numbers in `data-value`.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { connect, openDataset } from "pocaduck-edge";

window.viewerStarted = true;

const $ = (id) => document.getElementById(id);
const ui = {
  dataset: $("dataset"),
  modeProxy: $("mode-proxy"),
  modeServerless: $("mode-serverless"),
  limit: $("limit"),
  labelForm: $("label-form"),
  labelInput: $("label-input"),
  labelFind: $("label-find"),
  labelList: $("label-list"),
  labelListNote: $("label-list-note"),
  labelMore: $("label-more"),
  selected: $("selected"),
  clear: $("clear"),
  attribution: $("attribution"),
  stage: $("stage"),
  canvas: $("view"),
  progressBox: $("progress-box"),
  progress: $("progress"),
  progressText: $("progress-text"),
  error: $("error"),
  hud: {
    labels: $("hud-labels"),
    points: $("hud-points"),
    bytes: $("hud-bytes"),
    roundTrips: $("hud-round-trips"),
    fetchMs: $("hud-fetch-ms"),
    decodeMs: $("hud-decode-ms"),
    mode: $("hud-mode"),
  },
};

const BACKGROUND = 0x101317;
const PAGE_SIZE = 200;
const U64_MAX = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------------------
// Small helpers

/** A label as typed (decimal digits), in canonical form, or `null` when it is not a u64. */
function parseLabel(text) {
  const t = String(text ?? "").trim();
  if (!/^\d{1,20}$/.test(t)) return null;
  const value = BigInt(t); // exact; never a JS number
  return value <= U64_MAX ? value.toString() : null;
}

/** The label just below `label` (as `after` for a listing that starts at `label`). */
function labelBefore(label) {
  const value = BigInt(label);
  return value === 0n ? undefined : (value - 1n).toString();
}

function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MiB`;
}

function isAbort(error, signal) {
  return (signal && signal.aborted) || (error && error.name === "AbortError");
}

function describe(error) {
  if (!error) return "unknown error";
  const code = error.code && !String(error.message).includes(error.code) ? ` [${error.code}]` : "";
  return `${error.message || String(error)}${code}`;
}

/** A distinct colour for the `index`-th label (golden-angle hues). */
function colourFor(index) {
  const colour = new THREE.Color();
  colour.setHSL((0.58 + index * 0.618033988749895) % 1, 0.8, 0.6, THREE.SRGBColorSpace);
  return colour;
}

// ---------------------------------------------------------------------------------------
// Page state, errors, progress

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  ui.error.textContent = ui.error.hidden ? message : `${ui.error.textContent}\n${message}`;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.textContent = "";
  ui.error.hidden = true;
}

function showProgress(loaded, total) {
  ui.progressBox.hidden = false;
  if (total) {
    ui.progress.value = Math.min(1, loaded / total);
    ui.progressText.textContent = `${formatBytes(loaded)} of ${formatBytes(total)}`;
  } else {
    ui.progress.removeAttribute("value"); // indeterminate
    ui.progressText.textContent = formatBytes(loaded);
  }
}

function hideProgress() {
  ui.progressBox.hidden = true;
}

// ---------------------------------------------------------------------------------------
// The selection and the URL

/** What to show; mirrored in the URL. */
const selection = { dataset: null, mode: "proxy", labels: [], limit: null };
/** Pick the dataset's first label once its list is in (a URL without `labels`). */
let pickFirstLabel = false;

function readUrl() {
  const q = new URLSearchParams(location.search);
  const labels = [];
  for (const part of (q.get("labels") ?? "").split(",")) {
    const label = parseLabel(part);
    if (label !== null && !labels.includes(label)) labels.push(label);
  }
  const limit = Number.parseInt(q.get("limit") ?? "", 10);
  selection.dataset = q.get("dataset");
  selection.mode = q.get("mode") === "serverless" ? "serverless" : "proxy";
  selection.labels = labels;
  selection.limit = Number.isSafeInteger(limit) && limit > 0 ? limit : null;
  pickFirstLabel = !q.has("labels");
}

function writeUrl(push) {
  const parts = [];
  if (selection.dataset !== null) parts.push(`dataset=${encodeURIComponent(selection.dataset)}`);
  parts.push(`mode=${selection.mode}`);
  parts.push(`labels=${selection.labels.join(",")}`);
  if (selection.limit) parts.push(`limit=${selection.limit}`);
  const search = `?${parts.join("&")}`;
  if (search !== location.search) {
    history[push ? "pushState" : "replaceState"](null, "", search + location.hash);
  }
}

// ---------------------------------------------------------------------------------------
// Rendering: one THREE.Points per label, placed at (its origin − the view origin)

let renderer;
try {
  renderer = new THREE.WebGLRenderer({ canvas: ui.canvas, antialias: false });
} catch (error) {
  setState("error");
  showError(`WebGL is not available: ${describe(error)}`);
  throw error;
}
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
renderer.setClearColor(BACKGROUND);
const scene = new THREE.Scene();
const camera = new THREE.PerspectiveCamera(45, 1, 1, 1e7);
camera.up.set(0, -1, 0); // image convention: y grows downwards
camera.position.set(0, 0, -1000);
const controls = new OrbitControls(camera, renderer.domElement);
controls.addEventListener("change", requestRender);

let renderQueued = false;
function requestRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderer.render(scene, camera);
  });
}

function resize() {
  const width = Math.max(1, ui.stage.clientWidth);
  const height = Math.max(1, ui.stage.clientHeight);
  renderer.setSize(width, height, false);
  camera.aspect = width / height;
  camera.updateProjectionMatrix();
  renderer.render(scene, camera);
}
new ResizeObserver(resize).observe(ui.stage);
resize();

/** Shown labels: label → { object, count, timing, colourIndex } or { error }. */
const shown = new Map();
/** The float64 origin all objects are placed relative to (the first label's origin). */
let viewOrigin = null;

function addLabelObject(label, points) {
  if (!viewOrigin) viewOrigin = Float64Array.from(points.origin);
  const used = new Set([...shown.values()].map((s) => s.colourIndex));
  let colourIndex = 0;
  while (used.has(colourIndex)) colourIndex++;
  const colour = colourFor(colourIndex);
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute("position", new THREE.BufferAttribute(points.positions, 3));
  geometry.computeBoundingBox();
  geometry.computeBoundingSphere();
  const material = new THREE.PointsMaterial({ color: colour, size: 2, sizeAttenuation: false });
  const object = new THREE.Points(geometry, material);
  // Differences of float64 integers: exact, and small enough for float32 from here on.
  object.position.set(
    points.origin[0] - viewOrigin[0],
    points.origin[1] - viewOrigin[1],
    points.origin[2] - viewOrigin[2],
  );
  object.name = label;
  scene.add(object);
  shown.set(label, { object, count: points.count, timing: points.timing, colourIndex, colour });
}

function removeLabel(label) {
  const item = shown.get(label);
  shown.delete(label);
  if (item && item.object) {
    scene.remove(item.object);
    item.object.geometry.dispose();
    item.object.material.dispose();
  }
  if (![...shown.values()].some((s) => s.object)) viewOrigin = null;
}

function clearScene() {
  for (const label of [...shown.keys()]) removeLabel(label);
  viewOrigin = null;
}

/** Points the camera at everything shown, from far enough to see all of it. */
function frameCamera() {
  const box = new THREE.Box3();
  for (const { object } of shown.values()) {
    if (object && object.geometry.boundingBox) {
      box.union(object.geometry.boundingBox.clone().translate(object.position));
    }
  }
  if (box.isEmpty()) return;
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(1, box.getSize(new THREE.Vector3()).length() / 2);
  const distance = (radius / Math.sin(THREE.MathUtils.degToRad(camera.fov) / 2)) * 1.05;
  camera.position.set(centre.x, centre.y, centre.z - distance);
  camera.near = Math.max(0.1, distance / 1000);
  camera.far = distance + radius * 20;
  camera.updateProjectionMatrix();
  controls.target.copy(centre);
  controls.maxDistance = distance * 10;
  controls.update();
}

// ---------------------------------------------------------------------------------------
// The side panel and the HUD

function updateHud() {
  let labels = 0;
  let points = 0;
  let bytes = 0;
  let roundTrips = 0;
  let fetchMs = 0;
  let decodeMs = 0;
  for (const item of shown.values()) {
    if (!item.object) continue;
    labels += 1;
    points += item.count;
    bytes += item.timing.bytesFetched;
    roundTrips += item.timing.roundTrips;
    fetchMs += item.timing.fetchMs;
    decodeMs += item.timing.decodeMs;
  }
  const set = (el, value, text) => {
    el.dataset.value = String(value);
    el.textContent = text;
  };
  set(ui.hud.labels, labels, formatCount(labels));
  set(ui.hud.points, points, formatCount(points));
  set(ui.hud.bytes, bytes, formatBytes(bytes));
  set(ui.hud.roundTrips, roundTrips, formatCount(roundTrips));
  set(ui.hud.fetchMs, fetchMs.toFixed(1), `${fetchMs.toFixed(1)} ms`);
  set(ui.hud.decodeMs, decodeMs.toFixed(1), `${decodeMs.toFixed(1)} ms`);
  ui.hud.mode.textContent = selection.mode === "serverless" ? "serverless (files)" : "proxy (server)";
  document.body.dataset.labels = [...shown.keys()].filter((l) => shown.get(l).object).join(",");
}

function renderSelected() {
  const items = selection.labels.map((label) => {
    const item = shown.get(label);
    const li = document.createElement("li");
    li.dataset.label = label;
    li.dataset.testid = `selected-${label}`;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    if (item && item.colour) swatch.style.background = `#${item.colour.getHexString(THREE.SRGBColorSpace)}`;
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = label;
    const count = document.createElement("span");
    count.className = "count";
    if (item && item.object) count.textContent = formatCount(item.count);
    else if (item && item.error) {
      li.classList.add("failed");
      count.textContent = "failed";
      li.title = item.error;
    } else count.textContent = "…";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link";
    remove.textContent = "remove";
    remove.addEventListener("click", () => {
      selection.labels = selection.labels.filter((l) => l !== label);
      commit(true);
    });
    li.append(swatch, id, count, remove);
    return li;
  });
  ui.selected.replaceChildren(...items);
  for (const li of ui.labelList.children) {
    li.setAttribute("aria-selected", String(selection.labels.includes(li.dataset.label)));
  }
}

function syncControls() {
  ui.dataset.value = selection.dataset ?? "";
  const entry = datasets.find((d) => d.name === selection.dataset);
  ui.modeServerless.disabled = !entry || entry.backend !== "edge";
  ui.modeServerless.parentElement.title = ui.modeServerless.disabled
    ? "Only edge-layout datasets have files to read; this one is read through the server"
    : "Straight from the dataset's files with Range requests";
  ui.modeProxy.checked = selection.mode === "proxy";
  ui.modeServerless.checked = selection.mode === "serverless";
  ui.limit.value = selection.limit ? String(selection.limit) : "";
  renderSelected();
}

/** The label list: pages of `getLabels`, from `cursor` on. */
const list = { cursor: undefined, token: 0 };

async function listLabels(after, signal) {
  const token = ++list.token;
  ui.labelList.replaceChildren();
  ui.labelMore.hidden = true;
  list.cursor = after;
  ui.labelListNote.textContent = after === undefined ? "" : `after ${after}`;
  await moreLabels(signal, token);
}

async function moreLabels(signal, token = list.token) {
  if (!source) return;
  const page = await source.dataset.getLabels({ after: list.cursor, limit: PAGE_SIZE, signal });
  if (token !== list.token) return; // a newer listing replaced this one
  const filter = ui.labelInput.value.trim();
  for (const label of page.labels) {
    const li = document.createElement("li");
    li.dataset.label = label;
    li.textContent = label;
    li.setAttribute("aria-selected", String(selection.labels.includes(label)));
    li.classList.toggle("hidden", filter !== "" && !label.includes(filter));
    ui.labelList.append(li);
  }
  list.cursor = page.nextAfter ?? undefined;
  ui.labelMore.hidden = page.nextAfter === null;
  if (pickFirstLabel && selection.labels.length === 0 && page.labels.length > 0) {
    selection.labels = [page.labels[0]];
    writeUrl(false);
  }
  pickFirstLabel = false;
}

// ---------------------------------------------------------------------------------------
// Loading

const client = connect(location.origin);
/** The server's datasets (name, status, backend, …). */
let datasets = [];
/** The open dataset: { key, dataset } where key names dataset, mode and limit. */
let source = null;

/** Brings the page in line with `selection`: opens the dataset, loads missing labels. */
async function apply(signal) {
  setState("loading");
  clearError();
  const entry = datasets.find((d) => d.name === selection.dataset);
  if (!entry) {
    clearScene();
    source = null;
    updateHud();
    renderSelected();
    requestRender();
    throw new Error(
      selection.dataset === null ? "the server offers no datasets" : `no dataset named ${JSON.stringify(selection.dataset)} on this server`,
    );
  }
  const key = JSON.stringify([selection.dataset, selection.mode]);
  if (!source || source.key !== key) {
    clearScene();
    source = null;
    updateHud();
    const dataset = selection.mode === "serverless"
      ? await openDataset(`${location.origin}/v1/datasets/${encodeURIComponent(entry.name)}/files/`, { name: entry.name })
      : client.dataset(entry.name);
    if (signal.aborted) return;
    source = { key, dataset, limit: selection.limit, listed: false };
    ui.attribution.textContent = "";
    dataset.info().then(
      (info) => {
        if (source && source.dataset === dataset) ui.attribution.textContent = info.attribution ?? "";
      },
      () => {},
    );
  }
  if (!source.listed) {
    // Again after a listing that a newer selection cancelled.
    await listLabels(undefined, signal);
    source.listed = true;
  }
  if (source.limit !== selection.limit) {
    clearScene(); // another level of detail: every label again
    source.limit = selection.limit;
  }

  for (const label of [...shown.keys()]) {
    if (!selection.labels.includes(label)) removeLabel(label);
  }
  renderSelected();
  const missing = selection.labels.filter((label) => !shown.has(label));
  if (missing.length > 0) {
    const progress = new Map(missing.map((label) => [label, { bytesLoaded: 0, bytesTotal: undefined }]));
    const onProgressFor = (label) => (p) => {
      progress.set(label, p);
      let loaded = 0;
      let total = 0;
      for (const q of progress.values()) {
        loaded += q.bytesLoaded;
        total = total === null || q.bytesTotal === undefined ? null : total + q.bytesTotal;
      }
      showProgress(loaded, total);
    };
    showProgress(0, null);
    const options = (label) => ({ signal, onProgress: onProgressFor(label), ...(selection.limit ? { limit: selection.limit } : {}) });
    const results = await Promise.allSettled(missing.map((label) => source.dataset.getPoints(label, options(label))));
    hideProgress();
    if (signal.aborted) return;
    results.forEach((result, i) => {
      const label = missing[i];
      if (result.status === "fulfilled") addLabelObject(label, result.value);
      else {
        shown.set(label, { error: describe(result.reason) });
        showError(`label ${label}: ${describe(result.reason)}`);
      }
    });
    if (results.some((r) => r.status === "fulfilled")) frameCamera();
  }
  updateHud();
  renderSelected();
  renderer.render(scene, camera);
  const failed = selection.labels.filter((label) => shown.get(label)?.error);
  setState(failed.length > 0 ? "error" : "ready");
}

let chain = Promise.resolve();
let current = null;

/** Runs `apply` after the one in flight, which is cancelled: the newest selection wins. */
function requestApply() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  setState("loading");
  chain = chain.then(async () => {
    if (controller.signal.aborted) return;
    try {
      await apply(controller.signal);
    } catch (error) {
      if (isAbort(error, controller.signal)) return;
      hideProgress();
      showError(describe(error));
      setState("error");
    }
  });
  return chain;
}

/** Records the selection in the URL (a new history entry when `push`) and applies it. */
function commit(push) {
  writeUrl(push);
  syncControls();
  return requestApply();
}

// ---------------------------------------------------------------------------------------
// Controls

ui.dataset.addEventListener("change", () => {
  selection.dataset = ui.dataset.value;
  selection.labels = [];
  pickFirstLabel = true;
  const entry = datasets.find((d) => d.name === selection.dataset);
  if (entry && entry.backend !== "edge") selection.mode = "proxy";
  commit(true);
});

for (const radio of [ui.modeProxy, ui.modeServerless]) {
  radio.addEventListener("change", () => {
    if (radio.checked) {
      selection.mode = radio.value;
      commit(true);
    }
  });
}

ui.limit.addEventListener("change", () => {
  const limit = Number.parseInt(ui.limit.value, 10);
  selection.limit = Number.isSafeInteger(limit) && limit > 0 ? limit : null;
  commit(true);
});

ui.labelForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const label = parseLabel(ui.labelInput.value);
  if (label === null) {
    showError(`not a label: ${JSON.stringify(ui.labelInput.value.trim())} (a decimal id from 0 to ${U64_MAX})`);
    return;
  }
  if (!selection.labels.includes(label)) selection.labels = [...selection.labels, label];
  commit(true);
});

ui.labelFind.addEventListener("click", () => {
  const label = parseLabel(ui.labelInput.value);
  if (label === null && ui.labelInput.value.trim() !== "") {
    showError(`not a label: ${JSON.stringify(ui.labelInput.value.trim())}`);
    return;
  }
  listLabels(label === null ? undefined : labelBefore(label)).catch((e) => showError(describe(e)));
});

ui.labelInput.addEventListener("input", () => {
  const filter = ui.labelInput.value.trim();
  for (const li of ui.labelList.children) {
    li.classList.toggle("hidden", filter !== "" && !li.dataset.label.includes(filter));
  }
});

ui.labelMore.addEventListener("click", () => {
  moreLabels().catch((e) => showError(describe(e)));
});

ui.labelList.addEventListener("click", (event) => {
  const li = event.target.closest("li");
  if (!li) return;
  const label = li.dataset.label;
  selection.labels = selection.labels.includes(label)
    ? selection.labels.filter((l) => l !== label)
    : [...selection.labels, label];
  commit(true);
});

ui.clear.addEventListener("click", () => {
  selection.labels = [];
  commit(true);
});

window.addEventListener("popstate", () => {
  readUrl();
  pickFirstLabel = false;
  syncControls();
  requestApply();
});

window.addEventListener("unhandledrejection", (event) => {
  if (isAbort(event.reason)) return;
  showError(describe(event.reason));
  setState("error");
});

// ---------------------------------------------------------------------------------------
// Start

async function start() {
  setState("loading");
  readUrl();
  try {
    datasets = await client.datasets();
  } catch (error) {
    showError(`could not list the datasets: ${describe(error)}`);
    setState("error");
    return;
  }
  ui.dataset.replaceChildren(
    ...datasets.map((d) => {
      const option = document.createElement("option");
      option.value = d.name;
      option.textContent = d.status === "ok" ? `${d.name} (${d.backend})` : `${d.name} (${d.status})`;
      option.disabled = d.status !== "ok";
      return option;
    }),
  );
  if (selection.dataset === null) {
    const first = datasets.find((d) => d.status === "ok") ?? datasets[0];
    selection.dataset = first ? first.name : null;
  }
  const entry = datasets.find((d) => d.name === selection.dataset);
  if (entry && entry.backend !== "edge" && selection.mode === "serverless") {
    selection.mode = "proxy"; // a table has no files to read: the server reads it
  }
  writeUrl(false);
  syncControls();
  await requestApply();
}

start();

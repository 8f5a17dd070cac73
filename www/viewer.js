// The pocaduck-edge viewer: pick a dataset and labels, see their points with three.js.
//
// The selection (dataset, read mode, labels, level of detail, shading, camera) lives in the
// URL's query string, so a view can be shared and a reload restores it. Labels stay decimal
// strings throughout: many exceed 2^53 and a JS number would silently change them.
//
// Each label loads coarse to fine: first at most `first` points (the `limit` a stored coarse
// level answers), drawn at once, then all of them. Depth shows through eye-dome lighting (a
// screen-space pass over the points' depth, as Potree does it), or points darker with depth.
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
  first: $("first"),
  shading: $("shading"),
  labelForm: $("label-form"),
  labelInput: $("label-input"),
  labelFind: $("label-find"),
  labelList: $("label-list"),
  labelListNote: $("label-list-note"),
  labelMore: $("label-more"),
  selected: $("selected"),
  clear: $("clear"),
  attribution: $("attribution"),
  neuroglancer: $("neuroglancer"),
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
    firstMs: $("hud-first-ms"),
    allMs: $("hud-all-ms"),
    fps: $("hud-fps"),
  },
};

const BACKGROUND = 0x101317;
const PAGE_SIZE = 200;
const U64_MAX = (1n << 64n) - 1n;
/** Points of a label drawn first, while the rest load (`first` in the URL; 0 turns it off).
 * 2^16: a stored coarse level answers it, in the bundled sample (written for labels above
 * 4 × 2^16 points) as in an import's defaults (above 4 × 2^20). */
const FIRST_POINTS = 1 << 16;
/** Points drawn in all while the camera moves (a spread subset, so the frame stays
 * interactive): halved after a frame slower than 30 fps, doubled after one faster than 50. */
const motion = { budget: 1 << 17, least: 1 << 12, most: 1 << 24 };
/** Point size in world units (voxels), and the least on screen (pixels). */
const POINT_SIZE = 1.2;
const POINT_MIN_PX = 2;
/** Eye-dome lighting: Potree's defaults (strength 1, radius 1.4 pixels). */
const EDL_STRENGTH = 1.0;
const EDL_RADIUS = 1.4;
/** The "depth" shading: the farthest points of the scene keep this much less of their colour. */
const DEPTH_FADE = 0.7;

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

/** splitmix64 of a u64 (BigInt arithmetic, exact). */
function splitmix64(value) {
  let z = (value + 0x9e3779b97f4a7c15n) & U64_MAX;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & U64_MAX;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & U64_MAX;
  return z ^ (z >> 31n);
}

/** A label's colour (sRGB), from its u64 alone: the same in every session and URL. */
function colourFor(label) {
  const hash = splitmix64(BigInt(label));
  const hue = Number(hash >> 40n) / 2 ** 24; // the top 24 bits
  const lightness = 0.55 + Number((hash >> 32n) & 0xffn) / 255 * 0.1;
  const colour = new THREE.Color();
  colour.setHSL(hue, 0.75, lightness, THREE.SRGBColorSpace);
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

/** Depth cues: eye-dome lighting, points darker with depth (one pass, cheaper), or none. */
const SHADINGS = ["edl", "depth", "flat"];
/** What to show; mirrored in the URL. `first` is the coarse level's points (0: off). */
const selection = { dataset: null, mode: "proxy", labels: [], limit: null, first: FIRST_POINTS, shading: "edl" };
/** Pick the dataset's first label once its list is in (a URL without `labels`). */
let pickFirstLabel = false;
/** The URL's camera (`cam`: position then target, in dataset coordinates) until it is applied. */
let pendingCamera = null;

/** A non-negative safe integer from a query value, or `fallback`. */
function countParam(text, fallback) {
  if (text === null || !/^\d+$/.test(text)) return fallback;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : fallback;
}

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
  selection.first = countParam(q.get("first"), FIRST_POINTS);
  selection.shading = SHADINGS.includes(q.get("shading")) ? q.get("shading") : "edl";
  const cam = (q.get("cam") ?? "").split(",").map(Number);
  pendingCamera = cam.length === 6 && cam.every(Number.isFinite) ? cam : null;
  pickFirstLabel = !q.has("labels");
}

function writeUrl(push) {
  const parts = [];
  if (selection.dataset !== null) parts.push(`dataset=${encodeURIComponent(selection.dataset)}`);
  parts.push(`mode=${selection.mode}`);
  parts.push(`labels=${selection.labels.join(",")}`);
  if (selection.limit) parts.push(`limit=${selection.limit}`);
  if (selection.first !== FIRST_POINTS) parts.push(`first=${selection.first}`);
  if (selection.shading !== "edl") parts.push(`shading=${selection.shading}`);
  const cam = cameraParam();
  if (cam) parts.push(`cam=${cam}`);
  const search = `?${parts.join("&")}`;
  if (search !== location.search) {
    history[push ? "pushState" : "replaceState"](null, "", search + location.hash);
  }
}

/** The camera as `cam`: position and target in dataset coordinates (float64), or `null`. */
function cameraParam() {
  if (pendingCamera) return pendingCamera.join(",");
  if (!viewOrigin) return null;
  const round = (v) => Math.round(v * 10) / 10;
  const p = camera.position;
  const t = controls.target;
  return [p.x, p.y, p.z, t.x, t.y, t.z].map((v, i) => round(v + viewOrigin[i % 3])).join(",");
}

let cameraUrlTimer = 0;
/** Records the camera in the URL once it rests (no history entry). */
function cameraMoved() {
  clearTimeout(cameraUrlTimer);
  cameraUrlTimer = setTimeout(() => writeUrl(false), 250);
}

// ---------------------------------------------------------------------------------------
// Rendering: one THREE.Points per label, placed at (its origin − the view origin), drawn into
// a render target whose depth the eye-dome lighting pass reads

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
controls.listenToKeyEvents(window); // arrow keys pan
controls.autoRotateSpeed = 4;
controls.addEventListener("change", () => {
  requestRender();
  cameraMoved();
});

/** Points of one colour, sized in world units (at least POINT_MIN_PX pixels), darker with
 * depth when `depthFade` is above 0. Colours are
 * sRGB as given: no conversion, so the EDL pass and the screen show the same values. */
function pointsMaterial(colour) {
  return new THREE.ShaderMaterial({
    uniforms: {
      colour: { value: colour },
      size: { value: POINT_SIZE },
      minSize: { value: POINT_MIN_PX },
      scale: { value: 1 },
      depthFade: { value: 0 },
      depthRange: { value: new THREE.Vector2(0, 1) },
    },
    vertexShader: `
      uniform float size;
      uniform float minSize;
      uniform float scale;
      uniform float depthFade;
      uniform vec2 depthRange; // the scene's nearest distance, and its depth
      varying float vLogDepth;
      varying float vShade;
      void main() {
        vec4 mv = modelViewMatrix * vec4(position, 1.0);
        gl_Position = projectionMatrix * mv;
        gl_PointSize = max(minSize, size * scale / -mv.z);
        vLogDepth = log2(-mv.z);
        vShade = 1.0 - depthFade * clamp((-mv.z - depthRange.x) / depthRange.y, 0.0, 1.0);
      }`,
    fragmentShader: `
      uniform vec3 colour;
      varying float vLogDepth;
      varying float vShade;
      // The alpha carries log2 depth for the EDL pass (a float target); the screen ignores it.
      void main() { gl_FragColor = vec4(colour * vShade, vLogDepth); }`,
  });
}

/** The EDL pass: for each pixel, the log2 depth above its 4 neighbours darkens it (Potree's
 * edl.fs); a background pixel beside a point is dark, which outlines silhouettes. */
const edl = {
  // RGB: the points' colour; A: log2 of their depth (0 where there is none).
  target: new THREE.WebGLRenderTarget(1, 1, { type: THREE.FloatType, depthBuffer: true }),
  scene: new THREE.Scene(),
  camera: new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1),
};
edl.material = new THREE.ShaderMaterial({
  uniforms: {
    colourTexture: { value: edl.target.texture },
    texel: { value: new THREE.Vector2() },
    strength: { value: EDL_STRENGTH },
    radius: { value: EDL_RADIUS },
    // sRGB, as written: the clear colour of a frame drawn without the pass.
    background: { value: new THREE.Vector3(((BACKGROUND >> 16) & 255) / 255, ((BACKGROUND >> 8) & 255) / 255, (BACKGROUND & 255) / 255) },
  },
  vertexShader: `
    varying vec2 vUv;
    void main() { vUv = uv; gl_Position = vec4(position.xy, 0.0, 1.0); }`,
  fragmentShader: `
    uniform sampler2D colourTexture;
    uniform vec2 texel;
    uniform float strength;
    uniform float radius;
    uniform vec3 background;
    varying vec2 vUv;
    void main() {
      vec4 centre = texture2D(colourTexture, vUv);
      float depth = centre.a;
      float sum = 0.0;
      vec2 step = texel * radius;
      vec2 neighbours[4];
      neighbours[0] = vec2(step.x, 0.0);
      neighbours[1] = vec2(-step.x, 0.0);
      neighbours[2] = vec2(0.0, step.y);
      neighbours[3] = vec2(0.0, -step.y);
      for (int i = 0; i < 4; i++) {
        float n = texture2D(colourTexture, vUv + neighbours[i]).a;
        if (n != 0.0) sum += depth == 0.0 ? 100.0 : max(0.0, depth - n);
      }
      float shade = exp(-sum / 4.0 * 300.0 * strength);
      gl_FragColor = vec4(depth == 0.0 ? background * shade : centre.rgb * shade, 1.0);
    }`,
  depthTest: false,
  depthWrite: false,
});
edl.scene.add(new THREE.Mesh(new THREE.PlaneGeometry(2, 2), edl.material));

/** Frames drawn in the last second (the HUD's frame rate), whether frames keep coming, and
 * whether a pointer or key moves the camera. */
const frames = { times: [], rotating: false, dragging: false };
controls.addEventListener("start", () => {
  frames.dragging = true;
});
controls.addEventListener("end", () => {
  frames.dragging = false;
  requestRender(); // all the points again
});
let renderQueued = false;
function requestRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    draw();
  });
}

/** Draws one frame: the points straight to the screen, or through the EDL pass. */
function draw() {
  if (frames.rotating) controls.update(); // moves the camera (and asks for the next frame)
  const height = renderer.getDrawingBufferSize(new THREE.Vector2()).y;
  const scale = height / (2 * Math.tan(THREE.MathUtils.degToRad(camera.fov) / 2));
  for (const { object } of shown.values()) {
    if (object) object.material.uniforms.scale.value = scale;
  }
  // While the camera moves, each label draws the first part of its points (spread by
  // `spreadOrder`), its share of the motion budget.
  const moving = frames.rotating || frames.dragging;
  let total = 0;
  for (const { object, count } of shown.values()) if (object) total += count;
  const now = performance.now();
  const last = frames.times[frames.times.length - 1];
  if (moving && last !== undefined && now - last < 250) {
    if (now - last > 33) motion.budget = Math.max(motion.least, motion.budget / 2);
    else if (now - last < 20) motion.budget = Math.min(motion.most, motion.budget * 2);
  }
  const share = moving && total > motion.budget ? motion.budget / total : 1;
  for (const { object, count } of shown.values()) {
    if (object) object.geometry.setDrawRange(0, Math.ceil(count * share));
  }
  drawn = share < 1 ? motion.budget : total;
  const box = sceneBox();
  const centre = box.isEmpty() ? 0 : camera.position.distanceTo(box.getCenter(new THREE.Vector3()));
  const radius = box.isEmpty() ? 1 : Math.max(1, box.getSize(new THREE.Vector3()).length() / 2);
  for (const { object } of shown.values()) {
    if (!object) continue;
    const u = object.material.uniforms;
    u.depthFade.value = selection.shading === "depth" ? DEPTH_FADE : 0;
    u.depthRange.value.set(centre - radius, 2 * radius);
  }
  if (selection.shading === "edl") {
    renderer.setRenderTarget(edl.target);
    renderer.setClearColor(0x000000, 0); // alpha 0: no depth
    renderer.render(scene, camera);
    renderer.setRenderTarget(null);
    renderer.setClearColor(BACKGROUND, 1);
    renderer.render(edl.scene, edl.camera);
  } else {
    renderer.render(scene, camera);
  }
  frames.times.push(now);
  while (frames.times[0] < now - 1000) frames.times.shift();
}

function resize() {
  const width = Math.max(1, ui.stage.clientWidth);
  const height = Math.max(1, ui.stage.clientHeight);
  renderer.setSize(width, height, false);
  const size = renderer.getDrawingBufferSize(new THREE.Vector2());
  edl.target.setSize(size.x, size.y);
  edl.material.uniforms.texel.value.set(1 / size.x, 1 / size.y);
  camera.aspect = width / height;
  camera.updateProjectionMatrix();
  draw();
}

/** Points drawn in the latest frame. */
let drawn = 0;

/**
 * The N × 3 `positions` in bit-reversed index order, so that any first part of them spreads
 * over the whole label (the points come sorted, so a plain prefix would be one slab of it).
 */
function spreadOrder(positions) {
  const n = positions.length / 3;
  const out = new Float32Array(positions.length);
  const bits = Math.max(1, Math.ceil(Math.log2(n)));
  let k = 0;
  for (let i = 0; i < 2 ** bits; i++) {
    let r = 0;
    for (let b = 0, v = i; b < bits; b++, v >>>= 1) r = (r << 1) | (v & 1);
    if (r >= n) continue;
    out[k * 3] = positions[r * 3];
    out[k * 3 + 1] = positions[r * 3 + 1];
    out[k * 3 + 2] = positions[r * 3 + 2];
    k++;
  }
  return out;
}

/** Shown labels: label → { object, count, timing, colour, complete } or { error, complete }. */
const shown = new Map();
/** The float64 origin all objects are placed relative to (the first label's origin). */
let viewOrigin = null;

new ResizeObserver(resize).observe(ui.stage);
resize();

/** Draws `points` for `label`, in place of what it showed; `complete` when they are all of them. */
function showPoints(label, points, timing, complete) {
  if (!viewOrigin) viewOrigin = Float64Array.from(points.origin);
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute("position", new THREE.BufferAttribute(spreadOrder(points.positions), 3));
  geometry.computeBoundingBox();
  geometry.computeBoundingSphere();
  let item = shown.get(label);
  if (item && item.object) {
    item.object.geometry.dispose();
    item.object.geometry = geometry;
  } else {
    const colour = colourFor(label);
    const rgb = colour.getRGB({}, THREE.SRGBColorSpace);
    const object = new THREE.Points(geometry, pointsMaterial(new THREE.Vector3(rgb.r, rgb.g, rgb.b)));
    object.name = label;
    scene.add(object);
    item = { object, colour };
    shown.set(label, item);
  }
  // Differences of float64 integers: exact, and small enough for float32 from here on.
  item.object.position.set(
    points.origin[0] - viewOrigin[0],
    points.origin[1] - viewOrigin[1],
    points.origin[2] - viewOrigin[2],
  );
  Object.assign(item, { count: points.count, timing, complete });
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

/** The box of everything shown, in view coordinates. */
function sceneBox() {
  const box = new THREE.Box3();
  for (const { object } of shown.values()) {
    if (object && object.geometry.boundingBox) {
      box.union(object.geometry.boundingBox.clone().translate(object.position));
    }
  }
  return box;
}

/** Near and far planes that hold the scene from where the camera is. */
function fitClipping() {
  const box = sceneBox();
  if (box.isEmpty()) return;
  const radius = Math.max(1, box.getSize(new THREE.Vector3()).length() / 2);
  const distance = camera.position.distanceTo(box.getCenter(new THREE.Vector3()));
  camera.near = Math.max(0.1, (distance - radius) * 0.9, (distance + radius) / 1e4);
  camera.far = (distance + radius) * 1.1;
  camera.updateProjectionMatrix();
  controls.maxDistance = Math.max(controls.maxDistance === Infinity ? 0 : controls.maxDistance, radius * 40);
}

/** Points the camera at everything shown, from far enough to see all of it. */
function frameCamera() {
  const box = sceneBox();
  if (box.isEmpty()) return;
  const centre = box.getCenter(new THREE.Vector3());
  const radius = Math.max(1, box.getSize(new THREE.Vector3()).length() / 2);
  const distance = (radius / Math.sin(THREE.MathUtils.degToRad(camera.fov) / 2)) * 1.05;
  camera.position.set(centre.x, centre.y, centre.z - distance);
  controls.target.copy(centre);
  controls.update();
  fitClipping();
}

/** Puts the camera where the URL's `cam` says (dataset coordinates), once there is a view origin. */
function placeCamera(cam) {
  const o = viewOrigin;
  camera.position.set(cam[0] - o[0], cam[1] - o[1], cam[2] - o[2]);
  controls.target.set(cam[3] - o[0], cam[4] - o[1], cam[5] - o[2]);
  controls.update();
  fitClipping();
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
  const ms = (v) => (v === null ? ["", "–"] : [v.toFixed(1), `${v.toFixed(1)} ms`]);
  set(ui.hud.firstMs, ...ms(loadTimes.first));
  set(ui.hud.allMs, ...ms(loadTimes.all));
  ui.hud.mode.textContent = selection.mode === "serverless" ? "serverless (files)" : "proxy (server)";
  document.body.dataset.labels = [...shown.keys()].filter((l) => shown.get(l).object).join(",");
}

/** The HUD's frame rate: frames drawn in the last second (0 when nothing moves). */
function updateFps() {
  const now = performance.now();
  const fps = frames.times.filter((t) => t > now - 1000).length;
  ui.hud.fps.dataset.value = String(fps);
  ui.hud.fps.textContent = fps === 0 ? "idle" : `${fps} fps`;
  ui.hud.points.dataset.value = String(drawn);
  ui.hud.points.textContent = formatCount(drawn);
}
setInterval(updateFps, 500);

/** Neuroglancer's web client that "open in neuroglancer" opens. */
const NEUROGLANCER_APP = "https://neuroglancer-demo.appspot.com/";

/** A neuroglancer state showing the selected labels of the dataset: its annotation source
 * (docs/neuroglancer.md), filtered by a segmentation layer that selects them. */
function neuroglancerUrl() {
  const source = `precomputed://${location.origin}/v1/datasets/${encodeURIComponent(selection.dataset)}/neuroglancer`;
  const state = {
    layers: [
      { type: "segmentation", name: "labels", source: [], segments: selection.labels },
      {
        type: "annotation", name: selection.dataset, source,
        linkedSegmentationLayer: { segment: "labels" }, filterBySegmentation: ["segment"],
      },
    ],
    selectedLayer: { layer: selection.dataset, visible: true },
    layout: "3d",
  };
  return `${NEUROGLANCER_APP}#!${encodeURIComponent(JSON.stringify(state))}`;
}

function renderSelected() {
  ui.neuroglancer.hidden = selection.dataset === null;
  if (selection.dataset !== null) ui.neuroglancer.href = neuroglancerUrl();
  const items = selection.labels.map((label) => {
    const item = shown.get(label);
    const li = document.createElement("li");
    li.dataset.label = label;
    li.dataset.testid = `selected-${label}`;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    if (item && item.colour) {
      li.dataset.colour = `#${item.colour.getHexString(THREE.SRGBColorSpace)}`;
      swatch.style.background = li.dataset.colour;
    }
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = label;
    const count = document.createElement("span");
    count.className = "count";
    if (item && item.object) count.textContent = item.complete ? formatCount(item.count) : `${formatCount(item.count)}…`;
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
  ui.first.value = String(selection.first);
  ui.shading.value = selection.shading;
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
/** Milliseconds from the start of the latest loads to their first points and to all points. */
const loadTimes = { first: null, all: null };

/** Two loads' timings as one. */
function addTimings(a, b) {
  const sum = {};
  for (const key of Object.keys(b)) sum[key] = (a[key] ?? 0) + b[key];
  return sum;
}

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
  // A label whose load a newer selection cancelled halfway is loaded again.
  const missing = selection.labels.filter((label) => !shown.get(label)?.complete);
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
    // The coarse step: on edge-layout datasets (a VastDB table reads every point for any
    // `limit`), when it asks for fewer points than the whole load does.
    const first = entry.backend === "edge" && selection.first > 0 && !(selection.limit && selection.limit <= selection.first)
      ? selection.first
      : null;
    const t0 = performance.now();
    loadTimes.first = null;
    loadTimes.all = null;
    let framed = false;
    const drawLabel = (label, points, timing, complete) => {
      if (signal.aborted) return;
      showPoints(label, points, timing, complete);
      if (loadTimes.first === null) loadTimes.first = performance.now() - t0;
      if (!framed) {
        // The URL's camera, else everything shown, once per selection.
        if (pendingCamera) placeCamera(pendingCamera);
        else frameCamera();
        pendingCamera = null;
        framed = true;
      } else fitClipping();
      updateHud();
      renderSelected();
      requestRender();
    };
    const load = async (label) => {
      const options = (limit) => ({ signal, onProgress: onProgressFor(label), ...(limit ? { limit } : {}) });
      let before = null;
      if (first !== null) {
        const coarse = await source.dataset.getPoints(label, options(first));
        // Fewer points than asked: the label has no more.
        if (coarse.count < first) return drawLabel(label, coarse, coarse.timing, true);
        drawLabel(label, coarse, coarse.timing, false);
        before = coarse.timing;
      }
      const points = await source.dataset.getPoints(label, options(selection.limit));
      drawLabel(label, points, before ? addTimings(before, points.timing) : points.timing, true);
    };
    const results = await Promise.allSettled(missing.map(load));
    hideProgress();
    if (signal.aborted) return;
    loadTimes.all = performance.now() - t0;
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        const label = missing[i];
        removeLabel(label);
        shown.set(label, { error: describe(result.reason), complete: true });
        showError(`label ${label}: ${describe(result.reason)}`);
      }
    });
  }
  if (pendingCamera && viewOrigin) {
    placeCamera(pendingCamera); // a camera from the history, over labels already shown
    pendingCamera = null;
  }
  updateHud();
  renderSelected();
  draw();
  writeUrl(false); // with the camera
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

ui.first.addEventListener("change", () => {
  selection.first = countParam(ui.first.value.trim(), FIRST_POINTS);
  commit(true);
});

/** Shows depth with `shading` (one of SHADINGS). */
function setShading(shading) {
  selection.shading = shading;
  ui.shading.value = shading;
  writeUrl(false);
  requestRender();
}
ui.shading.addEventListener("change", () => setShading(ui.shading.value));

// Keys as in common 3D viewers (arrows pan, through OrbitControls): `f` frames the shown
// labels, `e` steps through the shadings, `r` turns the view around its target.
window.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest && event.target.closest("input, select, textarea, button")) return;
  if (event.key === "f") {
    frameCamera();
    requestRender();
  } else if (event.key === "e") setShading(SHADINGS[(SHADINGS.indexOf(selection.shading) + 1) % SHADINGS.length]);
  else if (event.key === "r") {
    frames.rotating = !frames.rotating;
    controls.autoRotate = frames.rotating;
    requestRender();
  } else return;
  event.preventDefault();
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

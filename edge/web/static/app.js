// The page's only script: live figures over server-sent events, the stream
// as an <img>, and the photo form. The token, if the page was opened with
// ?token=..., goes along with every request.
"use strict";

const token = new URLSearchParams(location.search).get("token");

function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

// One colour per emotion, the same in both charts.
const COLOURS = {
  angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#ffbf00",
  neutral: "#7f7f7f", sad: "#1f77b4", surprise: "#2ca02c",
};
const HISTORY_S = 60;
const history = new Map(); // track id -> [{t, label}], the last HISTORY_S seconds

function colour(label) {
  return COLOURS[label] || "#17becf";
}

function ink(canvas) {
  return getComputedStyle(canvas).color; // the page's text colour, light or dark theme
}

function countDraw(canvas) {
  canvas.dataset.draws = String(Number(canvas.dataset.draws) + 1);
}

function drawLabelChart(counts) {
  const canvas = document.getElementById("label-chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const entries = Object.entries(counts);
  const most = Math.max(1, ...entries.map(([, n]) => n));
  const row = canvas.height / Math.max(entries.length, 1);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  entries.forEach(([label, n], i) => {
    const y = i * row;
    ctx.fillStyle = colour(label);
    ctx.fillRect(70, y + 2, ((canvas.width - 110) * n) / most, row - 4);
    ctx.fillStyle = ink(canvas);
    ctx.fillText(label, 2, y + row / 2);
    ctx.fillText(String(n), canvas.width - 36, y + row / 2);
  });
  countDraw(canvas);
}

function drawTimeline(tracks) {
  const now = Date.now() / 1000;
  for (const face of tracks) {
    if (!history.has(face.track)) history.set(face.track, []);
    history.get(face.track).push({ t: now, label: face.label });
  }
  for (const [id, points] of history) {
    while (points.length && now - points[0].t > HISTORY_S) points.shift();
    if (!points.length) history.delete(id);
  }
  const canvas = document.getElementById("timeline");
  const rows = [...history.keys()].sort((a, b) => a - b);
  const rowHeight = 16;
  canvas.height = Math.max(40, rows.length * rowHeight + 4);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  const left = 40;
  const width = canvas.width - left;
  rows.forEach((id, i) => {
    const y = i * rowHeight + 2;
    ctx.fillStyle = ink(canvas);
    ctx.fillText(`#${id}`, 2, y + rowHeight / 2);
    for (const point of history.get(id)) {
      const x = left + width * (1 - (now - point.t) / HISTORY_S);
      ctx.fillStyle = colour(point.label);
      ctx.fillRect(x - width / HISTORY_S, y, width / HISTORY_S + 1, rowHeight - 3);
    }
  });
  if (!rows.length) {
    ctx.fillStyle = ink(canvas);
    ctx.fillText("no one in view in the last minute", left, 20);
  }
  countDraw(canvas);
}

function showStats(s) {
  text("running", `${s.source} · ${s.detector} · ${s.model}`);
  text("fps", s.fps.toFixed(1));
  text("latency", `${s.latency_ms.p50.toFixed(1)} / ${s.latency_ms.p95.toFixed(1)} ms`);
  text("faces", s.faces);
  text("frames", `${s.frames_processed} processed, ${s.frames_skipped} skipped`);
  text("viewers", s.viewers);
  const body = document.querySelector("#labels tbody");
  body.replaceChildren(
    ...Object.entries(s.labels_last_minute).map(([label, count]) => {
      const row = document.createElement("tr");
      row.innerHTML = "<td></td><td></td>";
      row.cells[0].textContent = label;
      row.cells[1].textContent = count;
      return row;
    })
  );
  drawLabelChart(s.labels_last_minute);
  drawTimeline(s.tracks || []);
  text("updated", "updated " + new Date().toLocaleTimeString());
}

function followStats() {
  const source = new EventSource(withToken("api/events"));
  source.onmessage = (event) => showStats(JSON.parse(event.data));
  source.onerror = () => text("updated", "reconnecting…");
}

async function errorOf(response) {
  try {
    return (await response.json()).error;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function analyse(event) {
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  const status = document.getElementById("photo-status");
  if (!file) {
    status.textContent = "choose a photo first";
    return;
  }
  status.className = "muted";
  status.textContent = "analysing…";
  const form = new FormData();
  form.append("image", file);
  const response = await fetch(withToken("api/analyze?annotate=inline"), {
    method: "POST",
    body: form,
  });
  if (!response.ok) {
    status.className = "error";
    status.textContent = await errorOf(response);
    return;
  }
  const result = await response.json();
  const photo = document.getElementById("photo");
  photo.src = result.annotated;
  photo.hidden = false;
  const table = document.getElementById("photo-faces");
  table.tBodies[0].replaceChildren(
    ...result.faces.map((face) => {
      const row = document.createElement("tr");
      row.innerHTML = "<td></td><td></td><td></td><td></td>";
      row.cells[0].textContent = face.track;
      row.cells[1].textContent = face.label;
      row.cells[2].textContent = (100 * face.confidence).toFixed(0) + " %";
      row.cells[3].textContent = face.box.join(", ");
      return row;
    })
  );
  table.hidden = result.faces.length === 0;
  status.textContent =
    `${result.faces.length} face${result.faces.length === 1 ? "" : "s"} ` +
    `in ${result.width}x${result.height}, ${result.ms} ms`;
}

document.getElementById("stream").src = withToken("stream.mjpg");
document.getElementById("upload").addEventListener("submit", analyse);
followStats();

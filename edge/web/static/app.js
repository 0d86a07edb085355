// The page's only script: live figures over server-sent events, the stream
// as an <img>, and the photo form. The token, where one is set, is in an
// HttpOnly cookie (the server moved it there from ?token=), so no request
// here names it and it is never in the address bar.
"use strict";

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

// A canvas drawn at its on-screen size in device pixels: sharp on a phone,
// and its text a readable size whatever the page's width.
function fit(canvas, cssHeight) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, canvas.clientWidth);
  canvas.style.height = cssHeight + "px";
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.font = "13px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  return { ctx, width };
}

// The share of the last minute's face-time each emotion had: one bar each,
// the percentage beside it (counts are face-frames, which no one reads).
function drawLabelChart(counts) {
  const canvas = document.getElementById("label-chart");
  const entries = Object.entries(counts);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  const row = 22;
  const { ctx, width } = fit(canvas, Math.max(1, entries.length) * row + 4);
  const left = 70;
  const right = 48;
  entries.forEach(([label, n], i) => {
    const y = i * row + 2;
    const share = total ? n / total : 0;
    ctx.fillStyle = colour(label);
    ctx.fillRect(left, y + 3, Math.max(2, (width - left - right) * share), row - 6);
    ctx.fillStyle = ink(canvas);
    ctx.fillText(label, 2, y + row / 2);
    ctx.fillText(`${Math.round(100 * share)} %`, width - right + 6, y + row / 2);
  });
  if (!entries.length) {
    ctx.fillStyle = ink(canvas);
    ctx.fillText("no faces in the last minute", 2, row / 2 + 2);
  }
  countDraw(canvas);
}

// One strip per person over the last 60 s, coloured by emotion second by
// second, with the person's current emotion and confidence above it.
function drawTimeline(tracks) {
  const now = Date.now() / 1000;
  for (const face of tracks) {
    if (!history.has(face.track)) history.set(face.track, []);
    history.get(face.track).push({ t: now, label: face.label, confidence: face.confidence });
  }
  for (const [id, points] of history) {
    while (points.length && now - points[0].t > HISTORY_S) points.shift();
    if (!points.length) history.delete(id);
  }
  const canvas = document.getElementById("timeline");
  const rows = [...history.keys()].sort((a, b) => a - b);
  const rowHeight = 40;
  const { ctx, width } = fit(canvas, Math.max(1, rows.length) * rowHeight + 16);
  const present = new Set(tracks.map((face) => face.track));
  rows.forEach((id, i) => {
    const y = i * rowHeight;
    const points = history.get(id);
    const last = points[points.length - 1];
    ctx.fillStyle = ink(canvas);
    const nowText = present.has(id)
      ? `${last.label} ${Math.round(100 * (last.confidence || 0))} %`
      : `gone (last ${last.label})`;
    ctx.fillText(`#${id}  ${nowText}`, 2, y + 9);
    ctx.fillStyle = "#2e323a";
    ctx.fillRect(0, y + 18, width, 16);
    for (const point of points) {
      const x = width * (1 - (now - point.t) / HISTORY_S);
      ctx.fillStyle = colour(point.label);
      ctx.fillRect(x - width / HISTORY_S, y + 18, width / HISTORY_S + 1, 16);
    }
  });
  ctx.fillStyle = ink(canvas);
  const axis = rows.length * rowHeight + 8;
  if (!rows.length) ctx.fillText("no one in view in the last minute", 2, 12);
  else {
    ctx.fillText("60 s ago", 2, axis);
    ctx.fillText("now", width - 28, axis);
  }
  countDraw(canvas);
}

function showStats(s) {
  text("running", `${s.source} · ${s.detector} · ${s.model}`);
  showPaused(s.paused);
  showNotice(s.notice || "");
  if (s.paused) {
    // Nothing is analysed: the figures stay as they were (greyed), and no
    // one is "out of view" because no one is looked for.
    text("updated", "paused: nothing is analysed or recorded");
    return;
  }
  text("fps", s.fps.toFixed(1));
  text("latency", `${s.latency_ms.p50.toFixed(1)} / ${s.latency_ms.p95.toFixed(1)} ms`);
  text("faces", s.faces);
  text("frames", `${s.frames_processed} processed, ${s.frames_skipped} skipped`);
  text("viewers", s.viewers);
  drawLabelChart(s.labels_last_minute);
  drawTimeline(s.tracks || []);
  text("updated", "updated " + new Date().toLocaleTimeString());
}

// [privacy] notice: that emotion recognition runs here, for everyone who looks.
function showNotice(notice) {
  const element = document.getElementById("notice");
  element.textContent = notice;
  element.hidden = !notice;
}

function showPaused(paused) {
  const button = document.getElementById("pause");
  button.setAttribute("aria-pressed", String(Boolean(paused)));
  button.textContent = paused ? "Resume analysis" : "Pause analysis";
  document.getElementById("paused").hidden = !paused;
  document.body.classList.toggle("paused", Boolean(paused));
}

async function togglePause() {
  const button = document.getElementById("pause");
  const paused = button.getAttribute("aria-pressed") !== "true";
  const problem = document.getElementById("pause-error");
  problem.hidden = true;
  let response;
  try {
    response = await fetch("api/pause", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ paused }),
    });
  } catch {
    problem.textContent = "the device did not answer: analysis is unchanged";
    problem.hidden = false;
    return;
  }
  if (!response.ok) {
    problem.textContent = `not ${paused ? "paused" : "resumed"}: ${await errorOf(response)}`;
    problem.hidden = false;
    return;
  }
  showPaused((await response.json()).paused);
}

function followStats() {
  const source = new EventSource("api/events");
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
  const response = await fetch("api/analyze?annotate=inline", {
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

document.getElementById("stream").src = "stream.mjpg";
document.getElementById("upload").addEventListener("submit", analyse);
document.getElementById("pause").addEventListener("click", togglePause);
followStats();

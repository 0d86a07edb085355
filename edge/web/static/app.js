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

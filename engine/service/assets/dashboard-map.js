// Bianmin dashboard: the map. An inline SVG of the grid polygons of `GET /api/v1/map`
// (communities outlined, grids filled) with the open requests as dots (overdue ones red).
// No tiles, no external resources: the polygons are the engine's own reference data,
// projected equirectangularly (longitudes scaled by the cosine of the middle latitude).
"use strict";

const MAP_SVG_NS = "http://www.w3.org/2000/svg";
const MAP_W = 760;
const MAP_PAD = 12;

function mapNode(tag, attrs, ...children) {
  const node = document.createElementNS(MAP_SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Draws `answer` (the map route's body) into `box`; clicking a dot calls `open(request_id)`.
// Returns the number of dots drawn.
function drawMap(box, answer, open) {
  box.replaceChildren();
  if (!answer.bounds || !answer.areas.length) return 0;
  const [minLon, minLat, maxLon, maxLat] = answer.bounds;
  const kx = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const spanX = Math.max((maxLon - minLon) * kx, 1e-9);
  const spanY = Math.max(maxLat - minLat, 1e-9);
  const scale = (MAP_W - 2 * MAP_PAD) / spanX;
  const height = Math.ceil(spanY * scale + 2 * MAP_PAD);
  const x = (lon) => (MAP_PAD + (lon - minLon) * kx * scale).toFixed(1);
  const y = (lat) => (MAP_PAD + (maxLat - lat) * scale).toFixed(1);
  const path = (rings) => rings.map((ring) =>
    "M" + ring.map(([lon, lat]) => x(lon) + "," + y(lat)).join("L") + "Z").join("");
  const chart = mapNode("svg", {
    viewBox: `0 0 ${MAP_W} ${height}`, class: "chart-svg map-svg", role: "img",
    "aria-label": "网格地图 Grid map",
  });
  const grids = answer.areas.filter((a) => a.level === "grid");
  const communities = answer.areas.filter((a) => a.level === "community");
  for (const a of grids) {
    chart.append(mapNode("path", {
      d: path(a.rings), class: "map-grid", "fill-rule": "evenodd",
      "data-grid": a.grid, "data-community": a.community,
    }, mapNode("title", {}, `${a.street} / ${a.community} / ${a.grid}`)));
  }
  for (const a of communities) {
    chart.append(mapNode("path", {
      d: path(a.rings), class: "map-community", "fill-rule": "evenodd",
      "data-community": a.community,
    }, mapNode("title", {}, `${a.street} / ${a.community}`)));
  }
  for (const p of answer.points) {
    const dot = mapNode("circle", {
      cx: x(p.lon), cy: y(p.lat), r: 4, class: p.overdue ? "map-dot late" : "map-dot",
      "data-request-id": p.request_id,
    }, mapNode("title", {}, `${p.request_id} · ${p.stage} · ${p.grid}`));
    if (open) dot.addEventListener("click", () => open(p.request_id));
    chart.append(dot);
  }
  box.append(chart);
  return answer.points.length;
}

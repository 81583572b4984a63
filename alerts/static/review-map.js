// The territory map: boundaries, territories before / after, moved accounts with their line
// to the new rep, shock areas and a legend. Data: alerts/map_view.py.
// Leaflet is served by the worker (/static/leaflet/); there is no tile layer and no request
// leaves the worker.
// Every `.territory-map` on the page is one map: a `.map-canvas`, `.map-toggle` buttons and
// its data in a `script.map-data` (the review page has one, a scenario page one per scenario).
function drawTerritoryMap(container) {
  const holder = container.querySelector(".map-canvas");
  const source = container.querySelector("script.map-data");
  if (!holder || !source || typeof L === "undefined") return;
  const data = JSON.parse(source.textContent);
  const colour = Object.fromEntries(data.reps.map((r) => [r.id, r.colour]));
  const rep = Object.fromEntries(data.reps.map((r) => [r.id, r]));
  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
  const money = (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en"));
  const text = (tag, content, cls) => {
    const el = document.createElement(tag);
    el.textContent = content;
    if (cls) el.className = cls;
    return el;
  };

  const map = L.map(holder, { zoomSnap: 0.25, keyboard: true, attributionControl: true });
  map.attributionControl.setPrefix("Leaflet");
  map.attributionControl.addAttribution("Boundaries: Natural Earth, US Census Bureau");

  const levelStyle = {
    country: { color: "#52606d", weight: 1.6, fill: true, fillColor: "#f0f4f8", fillOpacity: 1 },
    admin1: { color: "#7b8794", weight: 1, fill: false },
    admin2: { color: "#bcccdc", weight: 0.5, fill: false, dashArray: "2 3" },
  };
  const boundaries = L.geoJSON(data.boundaries, {
    style: (f) => ({ ...(levelStyle[f.properties.level] || levelStyle.admin1), className: `boundary ${f.properties.level}` }),
    interactive: false,
  }).addTo(map);

  const areaLayers = {};
  const markerLayers = {};
  for (const side of ["before", "after"]) {
    areaLayers[side] = L.layerGroup(
      Object.entries(data.areas[side]).map(([repId, geometry]) =>
        L.geoJSON(geometry, {
          interactive: false,
          style: { color: colour[repId], weight: 1.5, fillColor: colour[repId], fillOpacity: 0.18, className: `territory territory-${side}` },
        }),
      ),
    );
  }

  const popup = (a) => {
    const box = document.createElement("div");
    box.className = "account-popup";
    box.appendChild(text("strong", a.id));
    const rows = [
      ["Rep", a.moved ? `${a.before ?? "nobody"} → ${a.after}` : `${a.before ?? "nobody"}`],
      ["Potential", money(a.potential)],
      ["Sales, 12 months", money(a.sales_12m)],
    ];
    if (a.segment) rows.push(["Segment", a.segment]);
    if (a.reason) rows.push(["Why it moves", a.reason]);
    const table = document.createElement("table");
    for (const [label, value] of rows) {
      const tr = document.createElement("tr");
      tr.appendChild(text("th", label));
      tr.appendChild(text("td", value));
      table.appendChild(tr);
    }
    box.appendChild(table);
    return box;
  };

  const radius = (a) => 4 + 8 * Math.sqrt(Math.max(a.potential || 0, 0) / Math.max(...data.accounts.map((x) => x.potential || 0), 1));
  for (const side of ["before", "after"]) {
    markerLayers[side] = L.layerGroup(
      data.accounts.map((a) => {
        const owner = a[side];
        const style = {
          radius: radius(a),
          color: a.moved ? "#102a43" : "#ffffff",
          weight: a.moved ? 2.5 : 0.8,
          fillColor: colour[owner] || "#9aa5b1",
          fillOpacity: 0.9,
          className: `account${a.moved ? " moved" : ""}`,
        };
        // Moved accounts are also keyboard stops (a focusable marker with a label).
        const marker = a.moved
          ? L.marker([a.lat, a.lon], {
              icon: L.divIcon({ className: "moved-icon", html: "", iconSize: [18, 18] }),
              title: `${a.id}: ${a.before ?? "nobody"} to ${a.after}`,
              alt: `${a.id}: moves from ${a.before ?? "nobody"} to ${a.after}`,
              keyboard: true,
            })
          : L.circleMarker([a.lat, a.lon], style);
        if (a.moved) {
          const dot = L.circleMarker([a.lat, a.lon], { ...style, interactive: false });
          marker.on("add", () => dot.addTo(map));
          marker.on("remove", () => dot.remove());
          marker.on("keypress", (e) => { if (e.originalEvent.key === "Enter") marker.openPopup(); });
        }
        marker.bindPopup(() => popup(a));
        marker.getElement?.()?.setAttribute("data-account", a.id);
        marker.on("add", () => marker.getElement?.()?.setAttribute("data-account", a.id));
        return marker;
      }),
    );
  }

  const moveLines = L.layerGroup(
    data.moves.map((m) => L.polyline(m.path, { color: colour[m.to] || "#102a43", weight: 2, dashArray: "5 4", className: "move-line", interactive: false })),
  );
  const homeLabel = (r) => {
    const label = document.createElement("span");
    const swatch = text("span", "", "swatch");
    swatch.style.background = r.colour;
    label.appendChild(swatch);
    label.appendChild(document.createTextNode(r.id));
    return label;
  };
  const homes = L.layerGroup(
    data.reps.filter((r) => r.home).map((r) =>
      L.marker(r.home, {
        icon: L.divIcon({ className: "rep-home", html: homeLabel(r), iconSize: null }),
        title: `Home of ${r.id}`,
        alt: `Home of ${r.id}`,
        keyboard: false,
        interactive: false, // a label: clicks go to the account underneath
      }),
    ),
  ).addTo(map);
  const shocks = L.layerGroup(
    data.shocks.filter((s) => Array.isArray(s.centre)).map((s) =>
      L.circle(s.centre, { radius: Math.max(1000 * (s.radius_km || 0), 2000), color: "#c53030", weight: 2, dashArray: "6 4", fillOpacity: 0.05, className: "shock-area" })
        .bindTooltip(`${s.direction === "drop" ? "Drop" : "Rise"} ${pct(Math.abs(s.size || 0))} in ${s.name || "this area"}`),
    ),
  ).addTo(map);

  const legend = L.control({ position: "bottomright" });
  legend.onAdd = () => {
    const box = L.DomUtil.create("div", "map-legend");
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", "Legend: each rep's share of potential against the fair share");
    box.appendChild(text("strong", `Share of potential (band ±${pct(data.tolerance)})`));
    const list = document.createElement("ul");
    for (const r of data.reps) {
      const item = document.createElement("li");
      const swatch = text("span", "", "swatch");
      swatch.style.background = r.colour;
      item.appendChild(swatch);
      const off = (d) => (d !== null && d !== undefined && Math.abs(d) > (data.tolerance || 0) + 1e-9 ? " (out of band)" : "");
      item.appendChild(text("span", `${r.id}: ${pct(r.share_before)}${off(r.deviation_before)} → ${pct(r.share_after)}${off(r.deviation_after)}, fair ${pct(r.fair_share)}`));
      list.appendChild(item);
    }
    box.appendChild(list);
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  legend.addTo(map);

  let side = null;
  const buttons = container.querySelectorAll(".map-toggle button[data-side]");
  const show = (next) => {
    if (side) { areaLayers[side].remove(); markerLayers[side].remove(); }
    side = next;
    areaLayers[side].addTo(map);
    markerLayers[side].addTo(map);
    if (side === "after") moveLines.addTo(map); else moveLines.remove();
    homes.eachLayer((m) => m.setZIndexOffset(1000));
    holder.dataset.side = side;
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.side === side)));
  };
  buttons.forEach((b) => b.addEventListener("click", () => show(b.dataset.side)));
  show("before");

  const extent = L.latLngBounds(data.accounts.map((a) => [a.lat, a.lon]).concat(data.reps.filter((r) => r.home).map((r) => r.home)));
  if (extent.isValid()) map.fitBounds(extent.pad(0.08)); else map.fitBounds(boundaries.getBounds());
  holder.dataset.ready = "true";
}

document.querySelectorAll(".territory-map").forEach(drawTerritoryMap);

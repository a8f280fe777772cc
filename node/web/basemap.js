// Ronde's basemap: the city's streets drawn by MapLibre GL JS from a PMTiles
// file (vendored, see vendor/README.md), underneath the SVG maps of the
// phone app and of the relay's dashboard. Those SVGs keep every overlay
// (cells, reports, safe places) and every interaction; this map follows
// their view and is never interactive itself. Shared by both: the node
// serves it at /app/basemap.js, the relay at /vendor/basemap.js.
//
// Text in MapLibre needs glyph files, which are not shipped; street names
// are therefore drawn as HTML labels placed on the rendered roads. (The
// relay names the dashboard's cells itself: ronde_node::pmtiles.)
//
// Styles the two common vector schemas: Protomaps (`pmtiles extract` of a
// Protomaps build) and OpenMapTiles (tilemaker's default).
'use strict';

(function () {
  const ATTRIBUTION = '© OpenStreetMap contributors';

  const LIGHT = { bg: '#eef0f2', earth: '#f4f3ef', park: '#d7ead0', water: '#b9d3e8', building: '#dcd8d2', minor: '#ffffff', major: '#fbe3a2' };
  const DARK = { bg: '#0a0f1a', earth: '#111827', park: '#14261c', water: '#0f2640', building: '#1c2433', minor: '#3a4660', major: '#6b5a2e' };

  function style(url, c) {
    const src = 'basemap';
    const line = (id, layer, filter, color, width) => Object.assign({
      id, type: 'line', source: src, 'source-layer': layer,
      paint: { 'line-color': color, 'line-width': ['interpolate', ['exponential', 1.6], ['zoom'], 12, width / 4, 18, width * 4] },
    }, filter ? { filter } : {});
    const fill = (id, layer, color, filter) => Object.assign(
      { id, type: 'fill', source: src, 'source-layer': layer, paint: { 'fill-color': color } },
      filter ? { filter } : {});
    return {
      version: 8,
      sources: { [src]: { type: 'vector', url: 'pmtiles://' + url, attribution: ATTRIBUTION } },
      layers: [
        { id: 'bg', type: 'background', paint: { 'background-color': c.bg } },
        fill('earth', 'earth', c.earth),
        fill('park', 'landuse', c.park, ['in', ['get', 'kind'], ['literal', ['park', 'garden', 'grass', 'cemetery', 'wood', 'forest']]]),
        fill('park-omt', 'park', c.park),
        fill('water', 'water', c.water),
        fill('buildings', 'buildings', c.building),
        fill('building-omt', 'building', c.building),
        line('roads-minor', 'roads', ['!', ['in', ['get', 'kind'], ['literal', ['highway', 'major_road']]]], c.minor, 1.2),
        line('roads-major', 'roads', ['in', ['get', 'kind'], ['literal', ['highway', 'major_road']]], c.major, 2),
        line('transportation', 'transportation', ['==', ['geometry-type'], 'LineString'], c.minor, 1.4),
        // OpenMapTiles keeps the names of roads in a layer of their own.
        line('road-names', 'transportation_name', null, c.minor, 1.4),
      ],
    };
  }

  /** The map in `container` reading the PMTiles at `url` (absolute or
   * relative), or null when the libraries are missing. `dark`: the phone
   * app's colours. */
  function create(container, url, workerUrl, dark) {
    const gl = window.maplibregl, pm = window.pmtiles;
    if (!gl || !pm || !container) return null;
    try {
      gl.setWorkerUrl(workerUrl);
      if (!create.protocol) {
        create.protocol = new pm.Protocol();
        gl.addProtocol('pmtiles', create.protocol.tile);
      }
      const abs = new URL(url, window.location.href).href;
      const map = new gl.Map({
        container, style: style(abs, dark ? DARK : LIGHT), interactive: false, attributionControl: false,
        center: [0, 0], zoom: 1, maxZoom: 19, fadeDuration: 0,
      });
      const labels = document.createElement('div');
      labels.className = 'basemap-labels';
      container.append(labels);
      const handle = { map, labels, ready: false };
      map.on('idle', () => { handle.ready = true; drawLabels(handle); });
      map.on('error', () => {}); // a missing tile leaves the plain background
      return handle;
    } catch (e) {
      create.error = String(e); // for the tests and the curious
      return null;
    }
  }

  /** The MapLibre zoom that shows `mpp` metres per CSS pixel at `lat`. */
  function zoomFor(lat, mpp) {
    return Math.log2((78271.517 * Math.cos((lat * Math.PI) / 180)) / mpp);
  }

  /** Follow a view: centre [lat, lon] and MapLibre zoom (512 px tiles). */
  function sync(handle, center, zoom) {
    if (!handle) return;
    handle.map.resize();
    handle.map.jumpTo({ center: [center[1], center[0]], zoom: Math.max(0, Math.min(19, zoom)) });
  }

  // A feature's name: `name` (Protomaps, OpenMapTiles), or tilemaker's
  // `name:latin` and `name_int` when it writes no plain `name`.
  function nameOf(f) {
    const p = f.properties || {};
    return p.name || p['name:latin'] || p.name_int || null;
  }

  function roadFeatures(handle) {
    const layers = ['roads-minor', 'roads-major', 'transportation', 'road-names'].filter((l) => handle.map.getLayer(l));
    return handle.map.queryRenderedFeatures(undefined, { layers }).filter((f) => nameOf(f));
  }

  // Street names as HTML: one label per name, at the middle of its longest
  // rendered piece, none over another, at most 40, only from zoom 14 on.
  function drawLabels(handle) {
    const { map, labels } = handle;
    labels.replaceChildren();
    if (map.getZoom() < 14) return;
    const best = new Map();
    for (const f of roadFeatures(handle)) {
      const lines = f.geometry.type === 'LineString' ? [f.geometry.coordinates]
        : f.geometry.type === 'MultiLineString' ? f.geometry.coordinates : [];
      for (const l of lines) {
        if (l.length < 2) continue;
        const prev = best.get(nameOf(f));
        if (!prev || l.length > prev.length) best.set(nameOf(f), l);
      }
    }
    const w = map.getContainer().clientWidth, h = map.getContainer().clientHeight;
    let n = 0;
    const placed = [];
    // Longest pieces first: the main streets keep their names.
    const ordered = [...best].sort((a, b) => b[1].length - a[1].length);
    for (const [name, l] of ordered) {
      if (n >= 40) break;
      const p = map.project(l[Math.floor(l.length / 2)]);
      if (p.x < 0 || p.y < 0 || p.x > w || p.y > h) continue;
      const s = document.createElement('span');
      s.className = 'street-label';
      s.textContent = name;
      s.style.left = p.x.toFixed(0) + 'px';
      s.style.top = p.y.toFixed(0) + 'px';
      labels.append(s);
      // No label over another: a name that would overlap one already
      // placed is left out (the longest streets come first).
      const r = s.getBoundingClientRect();
      if (placed.some((q) => r.left < q.right + 4 && q.left < r.right + 4 && r.top < q.bottom && q.top < r.bottom)) {
        s.remove();
        continue;
      }
      placed.push(r);
      n += 1;
    }
  }

  window.RondeBasemap = { create, sync, zoomFor, ATTRIBUTION };
})();

// Ronde's basemap: the city's streets drawn by MapLibre GL JS from a PMTiles
// file (vendored, see vendor/README.md), underneath the SVG maps of the
// phone app and of the relay's dashboard. Those SVGs keep every overlay
// (cells, reports, safe places) and every interaction; this map follows
// their view and is never interactive itself. Shared by both: the node
// serves it at /app/basemap.js, the relay at /vendor/basemap.js.
//
// Text in MapLibre needs glyph files, which are not shipped; street names
// are therefore drawn as HTML labels placed on the rendered roads; the
// dashboard names a place with `nameAt`, which reads the archive's most
// detailed tiles itself.
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
      const handle = { map, labels, ready: false, archive: new pm.PMTiles(abs) };
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
  // rendered piece, at most 40, only from zoom 14 on.
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
    for (const [name, l] of best) {
      if (n >= 40) break;
      const p = map.project(l[Math.floor(l.length / 2)]);
      if (p.x < 0 || p.y < 0 || p.x > w || p.y > h) continue;
      const s = document.createElement('span');
      s.className = 'street-label';
      s.textContent = name;
      s.style.left = p.x.toFixed(0) + 'px';
      s.style.top = p.y.toFixed(0) + 'px';
      labels.append(s);
      n += 1;
    }
  }

  // --- names from the archive itself ----------------------------------
  // A hotspot is named from the archive's most detailed tiles, read from
  // the same file whatever the map shows: a minimal reader of Mapbox
  // Vector Tiles (protobuf: layers, features, tags, geometry commands).

  function readVarint(b, p) {
    let v = 0, shift = 0, byte;
    do {
      if (p.i >= b.length) throw new Error('truncated tile');
      byte = b[p.i++];
      v += (byte & 0x7f) * Math.pow(2, shift);
      shift += 7;
    } while (byte & 0x80 && shift < 64);
    return v;
  }
  // Each field of a message: calls f(field, wireType, p) positioned on its
  // value; f must consume it or return false to have it skipped.
  function readFields(b, start, end, f) {
    const p = { i: start };
    while (p.i < end) {
      const key = readVarint(b, p);
      const field = Math.floor(key / 8), wire = key & 7;
      const at = p.i;
      if (f(field, wire, p) !== false && p.i !== at) continue;
      p.i = at;
      if (wire === 0) readVarint(b, p);
      else if (wire === 1) p.i += 8;
      else if (wire === 2) { const n = readVarint(b, p); p.i += n; }
      else if (wire === 5) p.i += 4;
      else throw new Error('bad wire type');
    }
  }
  const utf8 = new TextDecoder();
  function readPacked(b, p) {
    const n = readVarint(b, p), end = p.i + n, out = [];
    while (p.i < end) out.push(readVarint(b, p));
    return out;
  }
  function readString(b, p) {
    const n = readVarint(b, p);
    const s = utf8.decode(b.subarray(p.i, p.i + n));
    p.i += n;
    return s;
  }

  /** The layers of a tile: [{name, extent, features: [{name, parts}]}],
   * `parts` lists of [x, y] in tile units; only named features. */
  function decodeTile(bytes) {
    const b = new Uint8Array(bytes);
    const layers = [];
    readFields(b, 0, b.length, (field, wire, p) => {
      if (field !== 3 || wire !== 2) return false;
      const n = readVarint(b, p), end = p.i + n;
      const layer = { name: '', extent: 4096, keys: [], values: [], raw: [] };
      readFields(b, p.i, end, (f, w, q) => {
        if (f === 1 && w === 2) layer.name = readString(b, q);
        else if (f === 5 && w === 0) layer.extent = readVarint(b, q);
        else if (f === 3 && w === 2) layer.keys.push(readString(b, q));
        else if (f === 4 && w === 2) {
          const m = readVarint(b, q), e = q.i + m;
          let v = null;
          readFields(b, q.i, e, (vf, vw, r) => {
            if (vf === 1 && vw === 2) { v = readString(b, r); return true; }
            return false;
          });
          q.i = e;
          layer.values.push(v);
        } else if (f === 2 && w === 2) {
          const m = readVarint(b, q), e = q.i + m;
          const feat = { tags: [], geom: [] };
          readFields(b, q.i, e, (ff, fw, r) => {
            if (ff === 2 && fw === 2) feat.tags = readPacked(b, r);
            else if (ff === 4 && fw === 2) feat.geom = readPacked(b, r);
            else return false;
            return true;
          });
          q.i = e;
          layer.raw.push(feat);
        } else return false;
        return true;
      });
      p.i = end;
      const features = [];
      for (const f of layer.raw) {
        const props = {};
        for (let i = 0; i + 1 < f.tags.length; i += 2) props[layer.keys[f.tags[i]]] = layer.values[f.tags[i + 1]];
        const name = nameOf({ properties: props });
        if (!name) continue;
        const parts = [];
        let x = 0, y = 0, cur = null, i = 0;
        while (i < f.geom.length) {
          const cmd = f.geom[i] & 7, count = f.geom[i] >> 3;
          i += 1;
          if (cmd === 7) { if (cur && cur.length) cur.push(cur[0]); continue; }
          for (let k = 0; k < count && i + 1 < f.geom.length; k++) {
            const dx = f.geom[i], dy = f.geom[i + 1];
            i += 2;
            x += (dx >>> 1) ^ -(dx & 1);
            y += (dy >>> 1) ^ -(dy & 1);
            if (cmd === 1) { cur = [[x, y]]; parts.push(cur); } else if (cur) cur.push([x, y]);
          }
        }
        features.push({ name, parts });
      }
      layers.push({ name: layer.name, extent: layer.extent, features });
      return true;
    });
    return layers;
  }

  const NAME_LAYERS = ['roads', 'transportation_name', 'transportation', 'pois', 'poi', 'places', 'place'];

  /** The name of the street or landmark nearest to [lat, lon] within `maxM`
   * metres, read from the archive's most detailed tiles (a promise; null
   * when none). */
  async function nameAt(handle, lat, lon, maxM) {
    if (!handle || !handle.archive) return null;
    const header = await handle.archive.getHeader();
    const z = header.maxZoom;
    const n = Math.pow(2, z);
    const kx = 111320 * Math.cos((lat * Math.PI) / 180), ky = 110540;
    const dLat = maxM / ky, dLon = maxM / kx;
    const tileX = (lo) => Math.floor(((lo + 180) / 360) * n);
    const tileY = (la) => {
      const r = (la * Math.PI) / 180;
      return Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
    };
    let best = null, bestD = maxM;
    for (let tx = tileX(lon - dLon); tx <= tileX(lon + dLon); tx++) {
      for (let ty = tileY(lat + dLat); ty <= tileY(lat - dLat); ty++) {
        let resp;
        try { resp = await handle.archive.getZxy(z, tx, ty); } catch (e) { continue; }
        if (!resp || !resp.data) continue;
        let layers;
        try { layers = decodeTile(resp.data); } catch (e) { continue; }
        for (const layer of layers) {
          if (!NAME_LAYERS.includes(layer.name)) continue;
          const toLonLat = ([x, y]) => {
            const wx = (tx + x / layer.extent) / n, wy = (ty + y / layer.extent) / n;
            const la = (180 / Math.PI) * Math.atan(Math.sinh(Math.PI * (1 - 2 * wy)));
            return [wx * 360 - 180, la];
          };
          for (const f of layer.features) {
            for (const part of f.parts) {
              const pts = part.map(toLonLat).map(([x, y]) => [(x - lon) * kx, (y - lat) * ky]);
              for (let i = 0; i < pts.length; i++) {
                const d = i === 0 ? Math.hypot(pts[0][0], pts[0][1]) : segDist(pts[i - 1], pts[i]);
                if (d < bestD) { bestD = d; best = f.name; }
              }
            }
          }
        }
      }
    }
    return best;
  }

  // Distance from the origin to the segment a-b (metres, local plane).
  function segDist(a, b) {
    const vx = b[0] - a[0], vy = b[1] - a[1];
    const len = vx * vx + vy * vy;
    const t = len > 0 ? Math.max(0, Math.min(1, -(a[0] * vx + a[1] * vy) / len)) : 0;
    return Math.hypot(a[0] + t * vx, a[1] + t * vy);
  }

  window.RondeBasemap = { create, sync, zoomFor, nameAt, decodeTile, ATTRIBUTION };
})();

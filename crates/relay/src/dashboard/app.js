// Ronde relay dashboard. Plain JavaScript, no dependencies, no CDN.
// Every count it receives is already k-suppressed by the relay; it only
// draws. The map is a Web-Mercator SVG: cells and places are drawn as
// polygons and circles over a plain background, with map tiles underneath
// only when a tile URL is configured and reachable.
'use strict';

(function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const TILE = 256;
  const state = {
    config: null,
    mode: 'live',
    categories: new Set(),
    band: '',
    from: '',
    to: '',
    zoom: 12,
    view: null, // [x, y, w, h] in world pixels at `zoom`
    version: 0,
    places: [],
    cells: [],
    selected: null,
    basemap: null, // RondeBasemap handle when the relay has a basemap
  };

  const $ = (id) => document.getElementById(id);

  // --- languages ----------------------------------------------------------
  // English and French: the browser's first choice among them, switchable
  // with the FR/EN button (kept in this browser).
  const I18N = {
    en: {
      logout: 'Log out', period: 'Period', live: 'Live: reports of the last 30 minutes', dates: 'Dates', from: 'from', to: 'to',
      categories: 'Categories', time_of_day: 'Time of day', all_day: 'all day', export: 'Export (dates, categories, time of day)',
      summary: "Summary for the city's services", trend: 'Trend', hotspots: 'Hotspots', th_where: 'where', th_reports: 'reports',
      th_by_category: 'by category', th_by_time: 'by time of day', compare: 'Compare two periods', before: 'Before', after: 'After',
      compare_go: 'Compare', th_category: 'category', th_before: 'before', th_after: 'after', th_change: 'change', places: 'Safe places',
      stale_title: 'Going stale or expired', th_name: 'name', th_kind: 'kind', th_freshness: 'freshness', th_until: 'until',
      th_heartbeat: 'last confirmed by the place', th_flags: 'flags (30 days)', mediators: 'Mediators and emergency contacts',
      th_role: 'role', th_phone: 'phone', th_area: 'area', th_hours: 'hours', relay: 'Relay',
      kinfo: 'No count below {k} is shown{strict}. Times are {tz} (UTC{off} now).', strict: ' (strict mode)',
      status_live: 'Live: ', status_range: '{from} to {to}: ', status_cells: '{n} cells shown; cells with fewer than {k} reports are hidden.',
      could_not_load: 'Could not load: ', no_cell: 'No cell reaches the threshold.', reports_n: '{n} reports',
      safe_place: 'safe place', going_stale: 'going stale', expired: 'expired', confirm: 'Confirm', failed: 'Failed',
      all_fresh: 'None: every place is fresh.', cmp_rows: '{n} cell and category pairs; counts under {k} are hidden.',
      cmp_none: 'No cell reaches the threshold in either period.', cmp_failed: 'Could not compare: ', now_over: 'now ≥ {k}', now_under: 'now < {k}',
      map_label: "Map of the city's cells", max_day: 'max {n} / day', until: ', until {t}', since: ', since {t}',
      fresh: 'fresh', stale: 'going stale', expired_status: 'expired', flag_closed: 'closed', flag_refused_help: 'refused help',
      flag_wrong_information: 'wrong information', st_peers: 'peers', st_areas: 'areas followed', st_live: 'live reports',
      st_rows: 'aggregate rows', st_counted: 'reports counted since start', st_flood: 'suppressed as a flood', st_serial: 'directory serial',
      cat_feeling_unsafe: 'feeling unsafe', cat_harassment: 'harassment', cat_verbal_aggression: 'verbal aggression',
      cat_physical_aggression: 'physical aggression', cat_sexual_aggression: 'sexual aggression', cat_exhibitionism: 'exhibitionism',
      cat_following: 'following', cat_poor_lighting: 'poor lighting', cat_other_hazard: 'other hazard',
    },
    fr: {
      logout: 'Se déconnecter', period: 'Période', live: 'En direct : signalements des 30 dernières minutes', dates: 'Dates', from: 'du', to: 'au',
      categories: 'Catégories', time_of_day: 'Heure du jour', all_day: 'toute la journée', export: 'Export (dates, catégories, heure du jour)',
      summary: 'Synthèse pour les services de la ville', trend: 'Tendance', hotspots: 'Points chauds', th_where: 'lieu', th_reports: 'signalements',
      th_by_category: 'par catégorie', th_by_time: 'par heure du jour', compare: 'Comparer deux périodes', before: 'Avant', after: 'Après',
      compare_go: 'Comparer', th_category: 'catégorie', th_before: 'avant', th_after: 'après', th_change: 'évolution', places: 'Lieux sûrs',
      stale_title: 'Bientôt périmés ou périmés', th_name: 'nom', th_kind: 'type', th_freshness: 'fraîcheur', th_until: "jusqu'au",
      th_heartbeat: 'dernière confirmation du lieu', th_flags: 'signalements (30 jours)', mediators: "Médiateurs et contacts d'urgence",
      th_role: 'rôle', th_phone: 'téléphone', th_area: 'secteur', th_hours: 'horaires', relay: 'Relais',
      kinfo: 'Aucun nombre inférieur à {k} n’est montré{strict}. Heures de {tz} (UTC{off} en ce moment).', strict: ' (mode strict)',
      status_live: 'En direct : ', status_range: 'Du {from} au {to} : ', status_cells: '{n} cellules affichées ; les cellules de moins de {k} signalements sont masquées.',
      could_not_load: 'Chargement impossible : ', no_cell: "Aucune cellule n'atteint le seuil.", reports_n: '{n} signalements',
      safe_place: 'lieu sûr', going_stale: 'bientôt périmé', expired: 'périmé', confirm: 'Confirmer', failed: 'Échec',
      all_fresh: 'Aucun : tous les lieux sont à jour.', cmp_rows: '{n} paires cellule et catégorie ; les nombres inférieurs à {k} sont masqués.',
      cmp_none: "Aucune cellule n'atteint le seuil dans l'une ou l'autre période.", cmp_failed: 'Comparaison impossible : ', now_over: 'désormais ≥ {k}', now_under: 'désormais < {k}',
      map_label: 'Carte des cellules de la ville', max_day: 'max {n} / jour', until: ", jusqu'au {t}", since: ', depuis le {t}',
      fresh: 'à jour', stale: 'bientôt périmé', expired_status: 'périmé', flag_closed: 'fermé', flag_refused_help: 'aide refusée',
      flag_wrong_information: 'informations fausses', st_peers: 'pairs', st_areas: 'secteurs suivis', st_live: 'signalements en direct',
      st_rows: "lignes d'agrégats", st_counted: 'signalements comptés depuis le démarrage', st_flood: 'écartés comme afflux', st_serial: 'numéro de l’annuaire',
      cat_feeling_unsafe: "sentiment d'insécurité", cat_harassment: 'harcèlement', cat_verbal_aggression: 'agression verbale',
      cat_physical_aggression: 'agression physique', cat_sexual_aggression: 'agression sexuelle', cat_exhibitionism: 'exhibitionnisme',
      cat_following: 'personne suivie', cat_poor_lighting: 'éclairage insuffisant', cat_other_hazard: 'autre danger',
    },
  };
  function pickLang() {
    let saved = null;
    try { saved = window.localStorage.getItem('ronde-dashboard-lang'); } catch (e) { /* private mode */ }
    if (saved === 'en' || saved === 'fr') return saved;
    for (const l of navigator.languages || [navigator.language || 'en']) {
      const base = String(l).slice(0, 2).toLowerCase();
      if (base === 'fr' || base === 'en') return base;
    }
    return 'en';
  }
  let lang = pickLang();
  function t(key, vars) {
    let s = (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.split('{' + k + '}').join(String(v));
    return s;
  }
  const catName = (name) => t('cat_' + name);
  function applyLang() {
    document.documentElement.lang = lang;
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    $('map').setAttribute('aria-label', t('map_label'));
    const other = lang === 'fr' ? 'en' : 'fr';
    $('lang').textContent = other.toUpperCase();
    $('lang').setAttribute('lang', other);
    $('lang').setAttribute('aria-label', other === 'fr' ? 'Français' : 'English');
    if (state.config) $('kinfo').textContent = kinfo(state.config);
  }
  function kinfo(cfg) {
    return t('kinfo', {
      k: cfg.k, strict: cfg.strict ? t('strict') : '', tz: cfg.time_zone,
      off: (cfg.utc_offset_hours >= 0 ? '+' : '') + cfg.utc_offset_hours,
    });
  }
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  };

  async function getJSON(url) {
    const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (res.status === 401) {
      window.location.assign('/login');
      throw new Error('not logged in');
    }
    const body = await res.json();
    if (!res.ok) throw new Error(body.message || res.statusText);
    return body;
  }

  // --- projection -------------------------------------------------------
  function project(lat, lon, zoom) {
    const s = TILE * Math.pow(2, zoom);
    const sin = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
    const x = ((lon + 180) / 360) * s;
    const y = (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * s;
    return [x, y];
  }

  function unproject(x, y, zoom) {
    const s = TILE * Math.pow(2, zoom);
    const lon = (x / s) * 360 - 180;
    const n = Math.PI - (2 * Math.PI * y) / s;
    const lat = (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
    return [lat, lon];
  }

  function fitZoom(bbox, px) {
    const [s, w, n, e] = bbox;
    for (let z = 18; z >= 1; z--) {
      const [x0, y0] = project(n, w, z);
      const [x1, y1] = project(s, e, z);
      if (x1 - x0 <= px && y1 - y0 <= px * 0.7) return z;
    }
    return 1;
  }

  // --- query string -----------------------------------------------------
  function params(withDates) {
    const p = new URLSearchParams();
    if (withDates) {
      if (state.from) p.set('from', state.from);
      if (state.to) p.set('to', state.to);
      if (state.band !== '') p.set('bands', state.band);
    }
    const all = state.config.categories.length;
    if (state.categories.size !== all) p.set('categories', [...state.categories].join(','));
    return p.toString();
  }

  function updateExports() {
    const q = params(true);
    $('exp-geojson').href = '/api/export.geojson?' + q;
    $('exp-csv').href = '/api/export.csv?' + q;
    $('exp-summary').href = '/api/summary.html?' + q + (lang === 'fr' ? '&lang=fr' : '');
  }

  // --- controls ---------------------------------------------------------
  function buildControls(cfg) {
    $('city').textContent = cfg.city;
    document.title = 'Ronde relay: ' + cfg.city;
    $('kinfo').textContent = kinfo(cfg);
    const cats = $('cats');
    for (const name of cfg.categories) {
      state.categories.add(name);
      const box = el('input', { type: 'checkbox', value: name, 'data-category': name });
      box.checked = true;
      box.addEventListener('change', () => {
        if (box.checked) state.categories.add(name);
        else state.categories.delete(name);
        refresh();
      });
      const label = el('label');
      label.append(box, ' ', el('span', { 'data-i18n': 'cat_' + name }, catName(name)));
      cats.append(label);
    }
    const band = $('band');
    cfg.bands.forEach((b, i) => band.append(el('option', { value: String(i) }, b)));
    band.addEventListener('change', () => {
      state.band = band.value;
      refresh();
    });
    const today = cfg.today;
    const d = new Date(today + 'T00:00:00Z');
    d.setUTCDate(d.getUTCDate() - 29);
    state.to = today;
    state.from = d.toISOString().slice(0, 10);
    $('from').value = state.from;
    $('to').value = state.to;
    for (const id of ['from', 'to']) {
      $(id).addEventListener('change', () => {
        state[id] = $(id).value;
        refresh();
      });
    }
    for (const r of document.querySelectorAll('input[name=mode]')) {
      r.addEventListener('change', () => {
        state.mode = r.value;
        refresh();
      });
    }
    $('attribution').textContent = cfg.basemap && window.RondeBasemap
      ? window.RondeBasemap.ATTRIBUTION
      : cfg.tile_attribution || '';
  }

  // --- map --------------------------------------------------------------
  function setupMap(cfg) {
    const map = $('map');
    const width = map.clientWidth || 800;
    state.zoom = fitZoom(cfg.bbox, width);
    const [x0, y0] = project(cfg.bbox[2], cfg.bbox[1], state.zoom);
    const [x1, y1] = project(cfg.bbox[0], cfg.bbox[3], state.zoom);
    const pad = 20;
    state.view = [x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad];
    if (cfg.basemap && window.RondeBasemap) {
      state.basemap = window.RondeBasemap.create($('basemap'), '/basemap.pmtiles', '/vendor/maplibre-gl-csp-worker.js');
      if (state.basemap) {
        $('mapframe').classList.add('with-basemap');
      }
    }
    applyView();

    // Drag to pan, wheel to zoom.
    let drag = null;
    map.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, view: state.view.slice() };
      map.setPointerCapture(e.pointerId);
    });
    // World pixels per CSS pixel: the SVG letterboxes its viewBox
    // (xMidYMid meet), so the smaller of the two scales holds.
    const perPixel = () => 1 / Math.min((map.clientWidth || 1) / state.view[2], (map.clientHeight || 1) / state.view[3]);
    map.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const k = perPixel();
      state.view[0] = drag.view[0] - (e.clientX - drag.x) * k;
      state.view[1] = drag.view[1] - (e.clientY - drag.y) * k;
      applyView();
    });
    map.addEventListener('pointerup', () => { drag = null; });
    map.addEventListener('wheel', (e) => {
      e.preventDefault();
      const f = e.deltaY > 0 ? 1.25 : 0.8;
      // The point under the pointer stays under it.
      const ctm = map.getScreenCTM();
      if (!ctm) return;
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
      const cx = p.x;
      const cy = p.y;
      state.view = [cx - (cx - state.view[0]) * f, cy - (cy - state.view[1]) * f, state.view[2] * f, state.view[3] * f];
      applyView();
    }, { passive: false });
  }

  function applyView() {
    const map = $('map');
    map.setAttribute('viewBox', state.view.map((v) => v.toFixed(1)).join(' '));
    if (state.basemap) {
      // The SVG letterboxes its viewBox (xMidYMid meet): same centre, and
      // the smaller of the two scales. MapLibre's zoom counts 512 px tiles.
      const [x, y, w, h] = state.view;
      const scale = Math.min((map.clientWidth || 1) / w, (map.clientHeight || 1) / h);
      const center = unproject(x + w / 2, y + h / 2, state.zoom);
      window.RondeBasemap.sync(state.basemap, center, state.zoom + Math.log2(scale) - 1);
    }
  }

  function tileLayer(cfg, z) {
    const g = svg('g', { class: 'tiles' });
    if (!cfg.tile_url) return g;
    const [x0, y0] = project(cfg.bbox[2], cfg.bbox[1], z);
    const [x1, y1] = project(cfg.bbox[0], cfg.bbox[3], z);
    const n = Math.pow(2, z);
    const t0x = Math.max(0, Math.floor(x0 / TILE) - 1), t1x = Math.min(n - 1, Math.floor(x1 / TILE) + 1);
    const t0y = Math.max(0, Math.floor(y0 / TILE) - 1), t1y = Math.min(n - 1, Math.floor(y1 / TILE) + 1);
    if ((t1x - t0x + 1) * (t1y - t0y + 1) > 120) return g;
    for (let tx = t0x; tx <= t1x; tx++) {
      for (let ty = t0y; ty <= t1y; ty++) {
        const url = cfg.tile_url.replace('{z}', z).replace('{x}', tx).replace('{y}', ty).replace('{s}', 'a');
        const img = svg('image', { x: tx * TILE, y: ty * TILE, width: TILE, height: TILE, href: url });
        // No network: drop the tile, the plain background stays.
        img.addEventListener('error', () => img.remove());
        g.append(img);
      }
    }
    return g;
  }

  function colour(n, max) {
    // Yellow → dark red, by share of the largest count shown.
    const t = max > 0 ? Math.min(1, n / max) : 0;
    const h = 52 - 52 * t;
    const l = 62 - 30 * t;
    return 'hsl(' + h.toFixed(0) + ',90%,' + l.toFixed(0) + '%)';
  }

  function describe(c) {
    const parts = Object.entries(c.by_category).map(([k, v]) => k.replace(/_/g, ' ') + ': ' + v);
    return c.cell + ': ' + c.total + ' reports' + (parts.length ? ' (' + parts.join(', ') + ')' : '');
  }

  function drawMap() {
    const cfg = state.config;
    const z = state.zoom;
    const map = $('map');
    map.replaceChildren();
    const [bx0, by0] = project(cfg.bbox[2], cfg.bbox[1], z);
    const [bx1, by1] = project(cfg.bbox[0], cfg.bbox[3], z);
    if (!state.basemap) {
      map.append(svg('rect', { x: bx0 - 5000, y: by0 - 5000, width: bx1 - bx0 + 10000, height: by1 - by0 + 10000, fill: '#e8ecef' }));
      map.append(tileLayer(cfg, z));
    }
    const areas = svg('g', { class: 'areas' });
    for (const a of cfg.areas) {
      const [s, w, n, e] = a.bounds;
      const [x0, y0] = project(n, w, z);
      const [x1, y1] = project(s, e, z);
      const r = svg('rect', { class: 'area', x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
      r.append(svg('title'));
      r.lastChild.textContent = 'area ' + a.area;
      areas.append(r);
    }
    map.append(areas);

    const max = state.cells.reduce((m, c) => Math.max(m, c.total), 0);
    const cells = svg('g', { class: 'cells' });
    const labels = svg('g', { class: 'labels' });
    for (const c of state.cells) {
      const [s, w, n, e] = c.bounds;
      const pts = [[n, w], [n, e], [s, e], [s, w]].map(([la, lo]) => project(la, lo, z).map((v) => v.toFixed(2)).join(','));
      const p = svg('polygon', {
        class: 'cell' + (state.selected === c.cell ? ' selected' : ''),
        points: pts.join(' '),
        fill: colour(c.total, max),
        'data-cell': c.cell,
        'data-count': c.total,
      });
      const t = svg('title');
      t.textContent = describe(c);
      p.append(t);
      p.addEventListener('click', () => select(c.cell));
      cells.append(p);
      const [cx, cy] = project(c.center[0], c.center[1], z);
      const [px0] = project(n, w, z);
      const [px1] = project(n, e, z);
      if (px1 - px0 >= 10) {
        const label = svg('text', { class: 'label', x: cx.toFixed(1), y: cy.toFixed(1) });
        label.textContent = String(c.total);
        labels.append(label);
      }
    }
    map.append(cells, labels);

    const places = svg('g', { class: 'places' });
    for (const v of state.places) {
      const [x, y] = project(v.location.lat, v.location.lon, z);
      const status = v.freshness.status;
      const dot = svg('circle', { class: 'place ' + status, cx: x.toFixed(1), cy: y.toFixed(1), r: 5, 'data-place': v.id, 'data-freshness': status });
      const t = svg('title');
      t.textContent = v.name + ' (' + v.kind.replace(/_/g, ' ') + '): ' + status;
      dot.append(t);
      places.append(dot);
    }
    map.append(places);
    drawLegend(max);
  }

  function drawLegend(max) {
    const lg = $('legend');
    lg.replaceChildren();
    if (max > 0) {
      const steps = [...new Set([state.config.k, Math.ceil((state.config.k + max) / 2), max])].filter((n) => n <= max);
      for (const n of steps) {
        const s = el('span');
        const sw = el('span', { class: 'swatch' });
        sw.style.background = colour(n, max);
        s.append(sw, t('reports_n', { n }));
        lg.append(s);
      }
    }
    for (const [cls, text] of [['fresh', t('safe_place')], ['stale', t('going_stale')], ['expired', t('expired')]]) {
      const s = el('span');
      const sw = el('span', { class: 'swatch' });
      sw.style.background = cls === 'fresh' ? '#1a7f37' : cls === 'stale' ? '#bf8700' : '#6e7781';
      sw.style.borderRadius = '50%';
      s.append(sw, text);
      lg.append(s);
    }
  }

  function select(cell) {
    state.selected = state.selected === cell ? null : cell;
    for (const p of document.querySelectorAll('#map polygon.cell')) {
      p.classList.toggle('selected', p.dataset.cell === state.selected);
    }
    for (const r of document.querySelectorAll('#hot-table tbody tr')) {
      r.style.fontWeight = r.dataset.cell === state.selected ? 'bold' : '';
    }
  }

  // --- panels -----------------------------------------------------------
  function drawTrend(days, k) {
    const chart = $('trend-chart');
    chart.replaceChildren();
    const W = 600, H = 160, B = 18;
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    chart.setAttribute('preserveAspectRatio', 'none');
    const max = days.reduce((m, d) => Math.max(m, d.total || 0), 0);
    const bw = W / Math.max(1, days.length);
    days.forEach((d, i) => {
      const suppressed = d.total === null;
      const h = suppressed ? 3 : max > 0 ? ((H - B - 14) * d.total) / max : 0;
      const r = svg('rect', { class: 'bar' + (suppressed ? ' suppressed' : ''), x: (i * bw + 0.5).toFixed(1), y: (H - B - h).toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: h.toFixed(1), 'data-day': d.day });
      const t = svg('title');
      t.textContent = d.day + ': ' + (suppressed ? 'fewer than ' + k + ' (or none)' : d.total + ' reports');
      r.append(t);
      chart.append(r);
    });
    if (days.length) {
      const a = svg('text', { x: 2, y: H - 4 });
      a.textContent = days[0].day;
      const b = svg('text', { x: W - 2, y: H - 4, 'text-anchor': 'end' });
      b.textContent = days[days.length - 1].day;
      const m = svg('text', { x: 2, y: 11 });
      m.textContent = t('max_day', { n: max });
      chart.append(a, b, m);
    }
  }

  function drawHotspots(list) {
    const tb = $('hot-table').tBodies[0];
    tb.replaceChildren();
    if (!list.length) {
      const tr = el('tr');
      tr.append(el('td', { colspan: 5, class: 'muted' }, t('no_cell')));
      tb.append(tr);
      return;
    }
    for (const h of list) {
      if (h.near) hotNames.set(h.cell, h.near);
      const tr = el('tr', { 'data-cell': h.cell });
      const cats = Object.entries(h.by_category).map(([k, v]) => catName(k) + ' ' + v).join(', ');
      const bands = Object.entries(h.by_band).map(([k, v]) => k + 'h ' + v).join(', ');
      const where = el('td', { class: 'hot-where cell-where' }, hotNames.get(h.cell) ? hotNames.get(h.cell) + ' (' + h.cell + ')' : h.cell);
      tr.append(el('td', {}, String(h.rank)), where, el('td', {}, String(h.total)), el('td', {}, cats), el('td', {}, bands));
      tr.addEventListener('click', () => { select(h.cell); flyToCell(h.cell); });
      tb.append(tr);
    }
    showNames();
  }

  // --- hotspots on the basemap -----------------------------------------
  // cell → its nearest street or landmark, as the relay names it from the
  // basemap (`near` in its answers)
  const hotNames = new Map();
  const B32 = '0123456789bcdefghjkmnpqrstuvwxyz';
  function geohashBounds(gh) {
    let lat = [-90, 90], lon = [-180, 180], even = true;
    for (const ch of gh) {
      const v = B32.indexOf(ch);
      for (let b = 4; b >= 0; b--) {
        const r = even ? lon : lat;
        const mid = (r[0] + r[1]) / 2;
        if ((v >> b) & 1) r[0] = mid; else r[1] = mid;
        even = !even;
      }
    }
    return [lat[0], lon[0], lat[1], lon[1]];
  }

  // Each cell of the hotspots and of the comparison shows its name, with
  // the geohash beside it.
  function showNames() {
    for (const td of document.querySelectorAll('tr[data-cell] td.cell-where')) {
      const name = hotNames.get(td.parentElement.dataset.cell);
      if (name) {
        td.textContent = name + ' (' + td.parentElement.dataset.cell + ')';
        td.dataset.name = name;
      }
    }
  }

  // Fly the map to a cell at street level (about 600 m across).
  function flyToCell(cell) {
    const [s, w, n, e] = geohashBounds(cell);
    const lat = (s + n) / 2, lon = (w + e) / 2;
    const mpp = (156543.03 * Math.cos((lat * Math.PI) / 180)) / Math.pow(2, state.zoom);
    const map = $('map');
    const aspect = (map.clientHeight || 1) / (map.clientWidth || 1);
    const tw = 600 / mpp, th = tw * aspect;
    const [cx, cy] = project(lat, lon, state.zoom);
    const target = [cx - tw / 2, cy - th / 2, tw, th];
    const from = state.view.slice();
    const t0 = performance.now();
    const step = (now) => {
      const t = Math.min(1, (now - t0) / 400);
      const k = t * (2 - t);
      state.view = from.map((v, i) => v + (target[i] - v) * k);
      applyView();
      if (t < 1) requestAnimationFrame(step);
      else map.dataset.flownTo = cell;
    };
    requestAnimationFrame(step);
  }

  // A Unix time as the city's clock reads it (its IANA zone, daylight
  // saving time included; a fixed offset when the relay has no zone).
  function fmtTime(t) {
    if (!t) return '—';
    const cfg = state.config || {};
    try {
      const f = new Intl.DateTimeFormat('sv-SE', { timeZone: cfg.time_zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      return f.format(new Date(t * 1000));
    } catch (e) {
      const off = cfg.utc_offset_hours || 0;
      return new Date((t + off * 3600) * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' ' + (cfg.time_zone || 'UTC');
    }
  }

  function drawPlaces(views) {
    const tb = $('places-table').tBodies[0];
    tb.replaceChildren();
    const stale = $('stale-list');
    stale.replaceChildren();
    for (const v of views) {
      const f = v.freshness;
      const tr = el('tr', { 'data-place': v.id, 'data-freshness': f.status });
      const statusText = (st) => t(st === 'expired' ? 'expired_status' : st);
      const badge = el('span', { class: 'badge ' + f.status }, statusText(f.status));
      const tdStatus = el('td');
      tdStatus.append(badge);
      const flags = Object.entries(v.flags).map(([k, n]) => t('flag_' + k) + ' ' + n).join(', ');
      const btn = el('button', { type: 'button' }, t('confirm'));
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        try {
          const res = await fetch('/api/places/' + v.id + '/confirm', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}' });
          if (!res.ok) throw new Error(res.statusText);
          await loadPlaces();
          drawMap();
        } catch (e) {
          btn.disabled = false;
          btn.textContent = t('failed');
        }
      });
      const tdBtn = el('td');
      tdBtn.append(btn);
      tr.append(el('td', {}, v.name), el('td', {}, v.kind.replace(/_/g, ' ')), tdStatus,
        el('td', {}, fmtTime(f.until || f.since)), el('td', {}, fmtTime(v.last_heartbeat)), el('td', {}, flags || '—'), tdBtn);
      tb.append(tr);
      if (f.status !== 'fresh') {
        stale.append(el('li', { 'data-place': v.id }, v.name + ': ' + statusText(f.status) + (f.until ? t('until', { t: fmtTime(f.until) }) : t('since', { t: fmtTime(f.since) }))));
      }
    }
    if (!stale.children.length) stale.append(el('li', { class: 'muted' }, t('all_fresh')));
  }

  function drawMediators(list) {
    const tb = $('mediators-table').tBodies[0];
    tb.replaceChildren();
    for (const m of list) {
      const tr = el('tr');
      tr.append(el('td', {}, m.name), el('td', {}, m.role), el('td', {}, m.phone), el('td', {}, m.area || 'whole city'), el('td', {}, m.hours), el('td', {}, fmtTime(m.expires_at)));
      tb.append(tr);
    }
  }

  async function drawStatus() {
    try {
      const s = await getJSON('/api/status');
      const dl = $('status-list');
      dl.replaceChildren();
      for (const [k, v] of [['st_peers', s.connected_peers], ['st_areas', s.areas], ['st_live', s.live_reports], ['st_rows', s.aggregate_rows], ['st_counted', s.reports_accepted], ['st_flood', s.suppressed_as_flood], ['st_serial', s.directory_serial]]) {
        dl.append(el('dt', {}, t(k)), el('dd', {}, String(v)));
      }
    } catch (e) { /* shown elsewhere */ }
  }

  async function loadPlaces() {
    const views = await getJSON('/api/places');
    state.places = views;
    drawPlaces(views);
  }

  // --- refresh ----------------------------------------------------------
  let pending = 0;
  async function refresh() {
    const mine = ++pending;
    const status = $('map-status');
    status.dataset.state = 'loading';
    updateExports();
    try {
      const cellsUrl = state.mode === 'live' ? '/api/live?' + params(false) : '/api/cells?' + params(true);
      const [cells, trend, hot, views, meds] = await Promise.all([
        getJSON(cellsUrl),
        getJSON('/api/trend?' + params(true)),
        getJSON('/api/hotspots?' + params(true)),
        getJSON('/api/places'),
        getJSON('/api/mediators'),
      ]);
      if (mine !== pending) return; // a newer refresh is on its way
      state.cells = cells.cells;
      state.places = views;
      drawMap();
      drawTrend(trend.days, trend.k);
      drawHotspots(hot.hotspots);
      drawPlaces(views);
      drawMediators(meds);
      drawStatus();
      state.version += 1;
      status.textContent = (state.mode === 'live' ? t('status_live') : t('status_range', { from: state.from, to: state.to })) +
        t('status_cells', { n: state.cells.length, k: state.config.k });
      status.dataset.version = String(state.version);
      status.dataset.state = 'ready';
    } catch (e) {
      if (mine !== pending) return;
      status.textContent = t('could_not_load') + e.message;
      status.dataset.state = 'error';
    }
  }

  // --- comparing two periods -------------------------------------------
  // Counts per cell and category of two date ranges (the categories and
  // time of day chosen above), and the change. A count under k is hidden
  // by the relay in either period, so it shows as "< k", never as 0.
  async function compare(ev) {
    if (ev) ev.preventDefault();
    const status = $('cmp-status');
    const q = (from, to) => {
      const p = new URLSearchParams(params(false));
      p.set('from', from);
      p.set('to', to);
      if (state.band !== '') p.set('bands', state.band);
      return '/api/cells?' + p.toString();
    };
    status.dataset.state = 'loading';
    try {
      const [a, b] = await Promise.all([
        getJSON(q($('cmp-a-from').value, $('cmp-a-to').value)),
        getJSON(q($('cmp-b-from').value, $('cmp-b-to').value)),
      ]);
      const rows = new Map();
      const add = (cells, side) => {
        for (const c of cells.cells) {
          if (c.near) hotNames.set(c.cell, c.near);
          for (const [cat, n] of Object.entries(c.by_category)) {
            const key = c.cell + ' ' + cat;
            const r = rows.get(key) || { cell: c.cell, cat, a: null, b: null };
            r[side] = n;
            rows.set(key, r);
          }
        }
      };
      add(a, 'a');
      add(b, 'b');
      const k = state.config.k;
      const tb = $('cmp-table').tBodies[0];
      tb.replaceChildren();
      const list = [...rows.values()].sort((x, y) => x.cell.localeCompare(y.cell) || x.cat.localeCompare(y.cat));
      for (const r of list) {
        const shown = (n) => (n === null ? '< ' + k : String(n));
        let change = '';
        if (r.a !== null && r.b !== null) {
          const d = r.b - r.a;
          change = (d > 0 ? '+' : '') + d + ' (' + (d > 0 ? '+' : '') + Math.round((100 * d) / r.a) + ' %)';
        } else if (r.a === null) {
          change = t('now_over', { k });
        } else {
          change = t('now_under', { k });
        }
        const tr = el('tr', { 'data-cell': r.cell, 'data-category': r.cat, 'data-before': r.a === null ? '' : r.a, 'data-after': r.b === null ? '' : r.b });
        const where = hotNames.get(r.cell) ? hotNames.get(r.cell) + ' (' + r.cell + ')' : r.cell;
        tr.append(el('td', { class: 'cell-where' }, where), el('td', {}, catName(r.cat)), el('td', {}, shown(r.a)), el('td', {}, shown(r.b)), el('td', {}, change));
        tr.addEventListener('click', () => { select(r.cell); flyToCell(r.cell); });
        tb.append(tr);
      }
      status.textContent = list.length ? t('cmp_rows', { n: list.length, k }) : t('cmp_none');
      status.dataset.state = 'ready';
      showNames();
    } catch (e) {
      status.textContent = t('cmp_failed') + e.message;
      status.dataset.state = 'error';
    }
  }

  async function start() {
    try {
      state.config = await getJSON('/api/config');
    } catch (e) {
      $('map-status').textContent = 'Could not load the configuration: ' + e.message;
      $('map-status').dataset.state = 'error';
      return;
    }
    buildControls(state.config);
    applyLang();
    $('lang').addEventListener('click', () => {
      lang = lang === 'fr' ? 'en' : 'fr';
      try { window.localStorage.setItem('ronde-dashboard-lang', lang); } catch (e) { /* private mode */ }
      applyLang();
      updateExports();
      refresh();
      if ($('cmp-status').dataset.state === 'ready') compare();
    });
    setupMap(state.config);
    $('compare-form').addEventListener('submit', compare);
    await refresh();
    setInterval(() => { if (state.mode === 'live') refresh(); }, 30000);
  }

  start();
})();

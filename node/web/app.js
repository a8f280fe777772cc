// Ronde, the phone's app. Vanilla JavaScript, no dependency, served by the
// node on this phone (same origin as its API: /v1/...).
//
// What lives where: state (one object), the API client, the position, the
// map (an SVG in a local projection around me: no tile server, works
// offline), the report flow, live updates (EventSource /v1/events), the
// circle (contacts, inbox, journey, SOS) and the city directory.
'use strict';

(function () {
  // ---------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------

  const CATEGORIES = [
    'feeling_unsafe', 'harassment', 'verbal_aggression', 'physical_aggression',
    'sexual_aggression', 'exhibitionism', 'following', 'poor_lighting', 'other_hazard',
  ];
  // 3 = violence, 2 = aggression or threat, 1 = unease or hazard, 0 = environment.
  const SEVERITY = {
    physical_aggression: 3, sexual_aggression: 3,
    harassment: 2, verbal_aggression: 2, following: 2, exhibitionism: 2,
    feeling_unsafe: 1, other_hazard: 1, poor_lighting: 0,
  };
  // Small pictograms, 24×24, drawn with strokes.
  const CATEGORY_ICONS = {
    feeling_unsafe: 'M12 3 2.5 20h19z M12 9v5 M12 16.5v.5',
    harassment: 'M4 5h16v10H10l-5 4v-4H4z M8 10l2-2 2 2 2-2 2 2',
    verbal_aggression: 'M4 5h16v10H10l-5 4v-4H4z M12 7.5v4 M12 13v.3',
    physical_aggression: 'M12 2l2 6 6-2-3 5 5 3-6 1 1 6-5-4-5 4 1-6-6-1 5-3-3-5 6 2z',
    sexual_aggression: 'M8 2h8l6 6v8l-6 6H8l-6-6V8z M8 12h8',
    exhibitionism: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z M12 9a3 3 0 1 0 0 6 3 3 0 1 0 0-6',
    following: 'M7 4c2 0 3 2 3 4s-1 4-3 4-3-2-3-4 1-4 3-4z M6 14h3v2H6z M17 10c2 0 3 2 3 4s-1 4-3 4-3-2-3-4 1-4 3-4z M16 20h3v2h-3z',
    poor_lighting: 'M9 18h6 M10 21h4 M12 3a6 6 0 0 0-4 10.5c1 1 1 2 1 3h6c0-1 0-2 1-3A6 6 0 0 0 12 3z M3 3l18 18',
    other_hazard: 'M12 2l10 10-10 10L2 12z M12 7v6 M12 16v.3',
  };
  const EMERGENCY = [
    { n: '112', key: 'help.n.112' },
    { n: '17', key: 'help.n.17' },
    { n: '15', key: 'help.n.15' },
    { n: '18', key: 'help.n.18' },
    { n: '114', key: 'help.n.114', sms: true },
    { n: '3919', key: 'help.n.3919' },
  ];
  // The node's routes. The circle routes answer 404 on a node that does not
  // have them yet; the app then says so. The directory routes answer 200
  // with `directory: null` while the node holds no directory of its city
  // (GET /v1/safe-places?lat&lon[&radius_m] → {directory, places: [{id,
  // name, kind, location: {lat, lon}, opening_hours, contact, freshness:
  // {status, until}, distance_m}]}; GET /v1/directory → {directory: {city,
  // serial, issued_at, expires_at, places, mediators: [...]}}; POST
  // /v1/safe-places/{id}/flag {reason} → 202 {status: sent | queued}).
  const ROUTES = {
    status: '/v1/status',
    location: '/v1/location',
    reports: '/v1/reports',
    events: '/v1/events',
    contacts: '/v1/contacts',
    invite: '/v1/contacts/invites',
    accept: '/v1/contacts/accept',
    approve: (id) => '/v1/contacts/' + encodeURIComponent(id) + '/approve',
    contact: (id) => '/v1/contacts/' + encodeURIComponent(id),
    inbox: '/v1/inbox',
    sharedJourneys: '/v1/circle/journeys',
    inboxAck: '/v1/inbox/ack',
    journey: '/v1/journey',
    journeyArrived: '/v1/journey/arrived',
    journeyCancel: '/v1/journey/cancel',
    journeyExtend: '/v1/journey/extend',
    sos: '/v1/sos',
    sosCancel: '/v1/sos/cancel',
    codes: '/v1/circle/codes',
    circleStatus: '/v1/circle',
    safePlaces: '/v1/safe-places',
    directory: '/v1/directory',
    flag: (id) => '/v1/safe-places/' + encodeURIComponent(id) + '/flag',
  };
  const SOS_COUNTDOWN_SECS = 5;
  /** How long the discreet SOS is held before it is sent. */
  const SOS_HOLD_MS = 2000;
  const STATUS_EVERY_MS = 10000;
  const REPORTS_EVERY_MS = 60000;
  const CIRCLE_EVERY_MS = 10000;
  const TICK_MS = 15000;

  // ---------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------

  const state = {
    lang: 'en',
    view: 'map',
    here: null, // {lat, lon, acc, at, source: 'gps' | 'manual'}
    nodeAt: null, // the last point sent to PUT /v1/location
    radius: 1000,
    lens: null, // the map zoomed in: see setLens
    reports: new Map(), // id → report (+ _t0: when its age_secs was read)
    cellFilter: null,
    status: null,
    nodeUp: null,
    loggedIn: null,
    live: false,
    category: null,
    lastReport: null,
    circle: {
      available: null,
      contacts: [],
      pendingInvites: 0,
      inbox: [],
      shared: [], // contacts' journeys (GET /v1/circle/journeys)
      journey: null,
      sos: null,
      alerted: new Set(), // inbox item ids already shown as an alert
    },
    journeyDest: null, // {lat, lon, label}
    directory: { available: null, places: [], mediators: [], city: '', error: null },
    flagging: null,
    sosTimer: null,
    sosLeft: 0,
  };

  // ---------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** An element with attributes (`class`, `text`, `on*` handlers) and children. */
  function el(tag, attrs, ...children) {
    const node = tag.startsWith('svg:')
      ? document.createElementNS(SVG_NS, tag.slice(4))
      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const svgEl = (tag, attrs, ...children) => el('svg:' + tag, attrs, ...children);

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  function icon(category) {
    return svgEl('svg', { class: 'cat-ico sev' + (SEVERITY[category] ?? 1), viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
      svgEl('path', { d: CATEGORY_ICONS[category] || CATEGORY_ICONS.other_hazard }));
  }

  const nowSecs = () => Math.floor(Date.now() / 1000);

  // ---------------------------------------------------------------------
  // Language
  // ---------------------------------------------------------------------

  const STRINGS = window.RONDE_I18N || { en: {}, fr: {} };

  function pickLanguage() {
    let saved = null;
    try { saved = localStorage.getItem('ronde.lang'); } catch (_) { /* private mode */ }
    if (saved && STRINGS[saved]) return saved;
    const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const l of langs) {
      const base = String(l).toLowerCase().split('-')[0];
      if (STRINGS[base]) return base;
    }
    return 'en';
  }

  /** The string `key` in the current language, `{name}` replaced by `vars`. */
  function t(key, vars) {
    let s = (STRINGS[state.lang] && STRINGS[state.lang][key]) ?? STRINGS.en[key] ?? key;
    if (typeof s === 'object') {
      const n = vars && typeof vars.n === 'number' ? vars.n : 0;
      const form = n === 0 && s.zero ? 'zero' : new Intl.PluralRules(state.lang).select(n);
      s = s[form] ?? s.other ?? key;
    }
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    return s;
  }

  function fmtDist(m) {
    if (!Number.isFinite(m)) return '';
    if (m < 1000) return new Intl.NumberFormat(state.lang).format(Math.max(0, Math.round(m / 10) * 10)) + ' m';
    return new Intl.NumberFormat(state.lang, { maximumFractionDigits: 1 }).format(m / 1000) + ' km';
  }

  function fmtTime(unix) {
    return new Intl.DateTimeFormat(state.lang, { hour: '2-digit', minute: '2-digit' }).format(new Date(unix * 1000));
  }

  function fmtDate(unix) {
    return new Intl.DateTimeFormat(state.lang, { day: 'numeric', month: 'long' }).format(new Date(unix * 1000));
  }

  function fmtAgo(secs) {
    if (secs < 60) return t('time.now');
    const rtf = new Intl.RelativeTimeFormat(state.lang, { numeric: 'auto' });
    if (secs < 3600) return rtf.format(-Math.floor(secs / 60), 'minute');
    return rtf.format(-Math.floor(secs / 3600), 'hour');
  }

  function fmtIn(secs) {
    const rtf = new Intl.RelativeTimeFormat(state.lang, { numeric: 'auto' });
    if (secs < 60) return rtf.format(Math.max(0, Math.round(secs)), 'second');
    return rtf.format(Math.round(secs / 60), 'minute');
  }

  function fmtCoords(lat, lon) {
    return lat.toFixed(5) + ', ' + lon.toFixed(5);
  }

  function applyI18n() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-aria]')) node.setAttribute('aria-label', t(node.dataset.i18nAria));
    const other = state.lang === 'fr' ? 'en' : 'fr';
    const btn = $('#lang');
    btn.textContent = other.toUpperCase();
    btn.setAttribute('lang', other);
    btn.setAttribute('aria-label', STRINGS[other]['lang.switch']);
    renderAll();
  }

  // ---------------------------------------------------------------------
  // Announcements (screen readers) and errors
  // ---------------------------------------------------------------------

  function announce(text) {
    const live = $('#live');
    live.textContent = '';
    setTimeout(() => { live.textContent = text; }, 60);
  }

  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function errorText(e) {
    if (!(e instanceof ApiFailure)) return t('err.generic', { message: String(e && e.message || e) });
    if (e.code === 'unreachable') return t('err.unreachable');
    const known = 'err.' + e.code;
    const s = t(known);
    return s !== known ? s : t('err.generic', { message: e.message });
  }

  function showError(node, e) {
    if (!node) return;
    if (!e) { node.hidden = true; node.textContent = ''; return; }
    node.textContent = typeof e === 'string' ? e : errorText(e);
    node.hidden = false;
  }

  // ---------------------------------------------------------------------
  // The API
  // ---------------------------------------------------------------------

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (_) {
      setNodeUp(false);
      throw new ApiFailure(0, 'unreachable', 'unreachable');
    }
    setNodeUp(true);
    setLoggedIn(resp.status !== 401);
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) {
      throw new ApiFailure(resp.status, (data && data.error) || 'http_' + resp.status,
        (data && data.message) || resp.statusText);
    }
    return data;
  }

  const isMissingRoute = (e) => e instanceof ApiFailure && (e.status === 404 || e.status === 405) &&
    (e.code === 'not_found' || e.code === 'method_not_allowed' || e.code.startsWith('http_'));

  // A 401: the session cookie is missing or from before the node's last
  // restart; only the login link the node printed opens the app again.
  function setLoggedIn(yes) {
    if (state.loggedIn === yes) return;
    state.loggedIn = yes;
    renderConn();
  }

  function setNodeUp(up) {
    if (state.nodeUp === up) return;
    state.nodeUp = up;
    renderConn();
  }

  // ---------------------------------------------------------------------
  // Geometry: geohash cells and a local projection in metres
  // ---------------------------------------------------------------------

  const B32 = '0123456789bcdefghjkmnpqrstuvwxyz';

  /** South, west, north, east of a geohash cell. */
  function cellBounds(hash) {
    let even = true;
    const lat = [-90, 90];
    const lon = [-180, 180];
    for (const c of hash) {
      const v = B32.indexOf(c);
      if (v < 0) return null;
      for (let mask = 16; mask; mask >>= 1) {
        const r = even ? lon : lat;
        const mid = (r[0] + r[1]) / 2;
        if (v & mask) r[0] = mid; else r[1] = mid;
        even = !even;
      }
    }
    return { s: lat[0], w: lon[0], n: lat[1], e: lon[1] };
  }

  const M_PER_DEG_LAT = 110574;

  /** Equirectangular projection around (lat0, lon0): metres east, metres south. */
  function projector(lat0, lon0) {
    const kx = 111320 * Math.cos(lat0 * Math.PI / 180);
    return {
      x: (lon) => (lon - lon0) * kx,
      y: (lat) => (lat0 - lat) * M_PER_DEG_LAT,
      lon: (x) => lon0 + x / kx,
      lat: (y) => lat0 - y / M_PER_DEG_LAT,
    };
  }

  function distanceM(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function parseCoords(text) {
    const m = String(text || '').trim().match(/^(-?\d+(?:[.,]\d+)?)\s*[,; ]\s*(-?\d+(?:[.,]\d+)?)$/);
    if (!m) return null;
    const lat = parseFloat(m[1].replace(',', '.'));
    const lon = parseFloat(m[2].replace(',', '.'));
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    return { lat, lon };
  }

  // ---------------------------------------------------------------------
  // Position
  // ---------------------------------------------------------------------

  let watchId = null;

  function restoreHere() {
    try {
      // A position typed by the person is remembered on this device; a
      // GPS one only for this session.
      const saved = JSON.parse(sessionStorage.getItem('ronde.here') || localStorage.getItem('ronde.typed') || 'null');
      if (saved && Number.isFinite(saved.lat) && Number.isFinite(saved.lon)) state.here = saved;
    } catch (_) { /* nothing saved */ }
  }

  function locateOnce(timeoutMs) {
    return new Promise((resolve, reject) => {
      if (!('geolocation' in navigator)) { reject(new Error('no_gps')); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => resolve(gpsFix(p)),
        (err) => reject(err),
        { enableHighAccuracy: true, timeout: timeoutMs || 15000, maximumAge: 60000 },
      );
    });
  }

  const gpsFix = (p) => ({
    lat: p.coords.latitude, lon: p.coords.longitude,
    acc: Math.round(p.coords.accuracy || 0), at: Date.now(), source: 'gps',
  });

  function watchGps() {
    if (!('geolocation' in navigator) || watchId !== null) return;
    watchId = navigator.geolocation.watchPosition(
      (p) => {
        // A position typed by hand wins over the GPS until the person asks
        // for the GPS again.
        if (state.here && state.here.source === 'manual') return;
        setHere(gpsFix(p));
      },
      (err) => {
        if (!state.here) {
          $('#where-text').textContent = err && err.code === 1 ? t('where.denied') : t('where.unavailable');
        }
      },
      { enableHighAccuracy: true, maximumAge: 30000, timeout: 30000 },
    );
  }

  /** A new position: tell the node (its areas), re-read what is around. */
  async function setHere(here) {
    const moved = !state.here ? Infinity : distanceM(state.here, here);
    state.here = here;
    try { sessionStorage.setItem('ronde.here', JSON.stringify(here)); } catch (_) { /* ignore */ }
    renderWhere();
    if (!state.nodeAt || distanceM(state.nodeAt, here) > 200) {
      try {
        await api('PUT', ROUTES.location, { lat: here.lat, lon: here.lon });
        state.nodeAt = { lat: here.lat, lon: here.lon };
      } catch (_) { /* shown by the connection chip */ }
    }
    if (moved > 50) {
      refreshReports();
      refreshPlaces();
    } else {
      renderMap();
    }
  }

  function renderWhere() {
    const h = state.here;
    let text;
    if (!h) text = t('where.none');
    else if (h.source === 'gps') text = t('where.gps', { acc: fmtDist(h.acc || 0) });
    else text = t('where.manual') + ' · ' + fmtCoords(h.lat, h.lon);
    $('#where-text').textContent = text;
  }

  function openWhereDialog() {
    const d = $('#where-dialog');
    showError($('#where-error'), null);
    $('#where-coords').value = state.here ? fmtCoords(state.here.lat, state.here.lon) : '';
    d.showModal();
    $('#where-coords').focus();
  }

  async function whereUseGps() {
    showError($('#where-error'), null);
    try {
      const fix = await locateOnce(15000);
      $('#where-dialog').close();
      await setHere(fix);
    } catch (err) {
      showError($('#where-error'), err && err.message === 'no_gps' ? t('where.no_gps')
        : err && err.code === 1 ? t('where.denied') : t('where.unavailable'));
    }
  }

  async function whereSet(ev) {
    ev.preventDefault();
    const c = parseCoords($('#where-coords').value);
    if (!c) { showError($('#where-error'), t('where.bad_coords')); return; }
    $('#where-dialog').close();
    const here = { lat: c.lat, lon: c.lon, acc: 0, at: Date.now(), source: 'manual' };
    try { localStorage.setItem('ronde.typed', JSON.stringify(here)); } catch (_) { /* ignore */ }
    await setHere(here);
  }

  // ---------------------------------------------------------------------
  // Reports
  // ---------------------------------------------------------------------

  const ageOf = (r) => r.age_secs + (Date.now() - r._t0) / 1000;
  const ttlOf = (r) => Math.max(60, (r.expires_at - r.observed_at) || 1800);
  const liveReports = () => [...state.reports.values()]
    .filter((r) => ageOf(r) < ttlOf(r))
    .sort((a, b) => ageOf(a) - ageOf(b));

  function distanceOf(r) {
    if (state.here && Array.isArray(r.center)) {
      // The node measures to the nearest point of the cell; keep its figure
      // when it measured from where we are.
      if (state.nodeAt && distanceM(state.nodeAt, state.here) < 1) return r.distance_m;
      const b = cellBounds(r.cell);
      if (b) {
        const lat = Math.min(Math.max(state.here.lat, b.s), b.n);
        const lon = Math.min(Math.max(state.here.lon, b.w), b.e);
        return distanceM(state.here, { lat, lon });
      }
    }
    return r.distance_m;
  }

  let refreshing = null;
  async function refreshReports() {
    if (!state.here) { renderMap(); renderReports(); return; }
    if (refreshing) return refreshing;
    const q = new URLSearchParams({ lat: state.here.lat.toFixed(6), lon: state.here.lon.toFixed(6), radius_m: String(state.radius) });
    refreshing = api('GET', ROUTES.reports + '?' + q)
      .then((data) => {
        const t0 = Date.now();
        state.reports = new Map();
        for (const r of (data && data.reports) || []) state.reports.set(r.id, Object.assign({}, r, { _t0: t0 }));
        renderMap();
        renderReports();
      })
      .catch(() => { /* the connection chip says it */ })
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  function addLiveReport(r) {
    if (!r || !r.id || !r.cell) return;
    const known = state.reports.has(r.id);
    const item = Object.assign({}, r, { _t0: Date.now() });
    if (state.here) {
      const d = distanceOf(item);
      if (!(d <= state.radius)) return;
    }
    state.reports.set(r.id, item);
    renderMap();
    renderReports();
    if (!known && !sending && (!state.lastReport || state.lastReport.id !== r.id)) {
      announce(t('list.new_report', { cat: t('cat.' + r.category), dist: fmtDist(distanceOf(item)) }));
    }
  }

  /** Tokens one issuance identity gets per day (docs/protocol.md §8.5). */
  const TOKENS_PER_DAY = 24;

  /**
   * Reports grouped by cell: [{cell, reports, sev, minPeople}], most first.
   * `minPeople` is the API's `min_people`: with at most 24 tokens per
   * identity per day, k tokened reports of one day come from at least
   * ceil(k / 24) identities; the largest bound over the days (0: none).
   */
  function cellsOf(reports) {
    const map = new Map();
    for (const r of reports) {
      let c = map.get(r.cell);
      if (!c) { c = { cell: r.cell, reports: [], sev: -1, days: new Map() }; map.set(r.cell, c); }
      c.reports.push(r);
      c.sev = Math.max(c.sev, SEVERITY[r.category] ?? 1);
      if (r.tokened) {
        const day = Math.floor(r.observed_at / 86400);
        c.days.set(day, (c.days.get(day) || 0) + 1);
      }
    }
    for (const c of map.values()) {
      c.minPeople = Math.max(0, ...[...c.days.values()].map((k) => Math.ceil(k / TOKENS_PER_DAY)));
    }
    return [...map.values()].sort((a, b) => b.reports.length - a.reports.length);
  }

  function renderReports() {
    const list = $('#report-list');
    list.replaceChildren();
    let reports = liveReports();
    const total = reports.length;
    $('#report-count').textContent = t('list.count', { n: total });
    if (state.cellFilter) reports = reports.filter((r) => r.cell === state.cellFilter);
    show($('#cell-filter'), !!state.cellFilter);
    if (state.cellFilter) $('#cell-filter-text').textContent = t('list.filter', { cell: state.cellFilter });
    show($('#reports-empty'), total === 0);
    for (const r of reports) {
      const age = ageOf(r);
      const sev = SEVERITY[r.category] ?? 1;
      list.append(el('li', { class: 'card report sev' + sev, 'data-id': r.id, 'data-cell': r.cell, 'data-category': r.category },
        icon(r.category),
        el('div', { class: 'report-body' },
          el('strong', { class: 'report-cat', text: t('cat.' + r.category) }),
          el('span', { class: 'meta', text: t('list.item', { age: fmtAgo(age), dist: fmtDist(distanceOf(r)), cell: r.cell }) }),
          el('span', { class: 'meta faint', text: t('list.expires', { time: fmtIn(ttlOf(r) - age) }) }))));
    }
  }

  // ---------------------------------------------------------------------
  // The map
  // ---------------------------------------------------------------------

  /**
   * Draws the local map into `svg`: rings, cells, safe places, a
   * destination, me. `opts.cells` makes cells focusable buttons.
   */
  function drawMap(svg, radius, opts) {
    const keep = [...svg.children].filter((c) => c.tagName === 'title');
    svg.replaceChildren(...keep);
    const R = radius * 1.1;
    // What is shown: the whole radar, or the lens zoomed into it.
    const V = opts.view || [-R, -R, 2 * R, 2 * R];
    svg.setAttribute('viewBox', V.map((v) => v.toFixed(1)).join(' '));
    const here = state.here;
    if (!here) return null;
    const p = projector(here.lat, here.lon);
    const fs = (V[2] / 2) * 0.062; // label size, in metres
    svg.append(svgEl('rect', { class: 'map-bg', x: -R, y: -R, width: 2 * R, height: 2 * R }));
    const grid = svgEl('g', { class: 'map-grid', 'aria-hidden': 'true' });
    for (const f of [0.5, 1]) {
      grid.append(svgEl('circle', { class: 'ring', cx: 0, cy: 0, r: radius * f, 'vector-effect': 'non-scaling-stroke' }));
      grid.append(svgEl('text', { class: 'ring-label', x: fs * 0.3, y: -radius * f - fs * 0.3, 'font-size': fs * 0.8, text: fmtDist(radius * f) }));
    }
    grid.append(svgEl('line', { class: 'axis', x1: -R, y1: 0, x2: R, y2: 0, 'vector-effect': 'non-scaling-stroke' }));
    grid.append(svgEl('line', { class: 'axis', x1: 0, y1: -R, x2: 0, y2: R, 'vector-effect': 'non-scaling-stroke' }));
    // North arrow, top right.
    const nx = V[0] + V[2] - fs * 1.6;
    const ny = V[1] + fs * 2.6;
    grid.append(svgEl('path', { class: 'north', d: `M${nx} ${ny - fs * 1.8} l${fs * 0.6} ${fs * 1.4} h${-fs * 1.2} z` }));
    grid.append(svgEl('text', { class: 'north-label', x: nx, y: ny + fs * 0.9, 'font-size': fs, 'text-anchor': 'middle', text: t('map.north') }));
    svg.append(grid);

    const layer = svgEl('g', { class: 'cells' });
    for (const c of opts.cells || []) {
      const b = cellBounds(c.cell);
      if (!b) continue;
      const x0 = p.x(b.w); const x1 = p.x(b.e); const y0 = p.y(b.n); const y1 = p.y(b.s);
      const cx = (x0 + x1) / 2; const cy = (y0 + y1) / 2;
      const n = c.reports.length;
      const cats = [...new Set(c.reports.map((r) => t('cat.' + r.category)))].join(', ');
      const dist = fmtDist(Math.min(...c.reports.map(distanceOf)));
      const g = svgEl('g', {
        class: 'cell sev' + c.sev + (state.cellFilter === c.cell ? ' selected' : ''),
        'data-cell': c.cell, 'data-count': n, 'data-min-people': c.minPeople,
        tabindex: opts.interactive ? 0 : null, role: opts.interactive ? 'button' : null,
        'aria-label': t('map.cell_label', { cell: c.cell, n, cats, dist })
          + (c.minPeople > 0 ? ' ' + t('map.cell_people', { n: c.minPeople }) : ''),
        'aria-pressed': opts.interactive ? String(state.cellFilter === c.cell) : null,
      });
      g.append(svgEl('polygon', {
        points: `${x0},${y0} ${x1},${y0} ${x1},${y1} ${x0},${y1}`,
        'fill-opacity': Math.min(0.75, 0.3 + 0.12 * n).toFixed(2), 'vector-effect': 'non-scaling-stroke',
      }));
      // The count sits on the cell's north-east corner, so that the cell
      // and my own position stay visible under it.
      const rr = fs * (n > 9 ? 0.95 : 0.8);
      const bx = Math.abs(x1 - x0) > 4 * rr ? cx : x1;
      const by = Math.abs(y1 - y0) > 4 * rr ? cy : y0;
      g.append(svgEl('circle', { class: 'count-bg', cx: bx, cy: by, r: rr, 'vector-effect': 'non-scaling-stroke' }));
      g.append(svgEl('text', { class: 'count', x: bx, y: by, 'font-size': fs * 1.0, 'text-anchor': 'middle', 'dominant-baseline': 'central', text: String(n) }));
      if (c.minPeople > 0) {
        // The lower bound on the people behind the tokened reports, under
        // the count ("≥2 people"); the label says what it means.
        g.append(svgEl('text', { class: 'people', x: bx, y: by + rr * 1.9, 'font-size': fs * 0.7, 'text-anchor': 'middle', 'dominant-baseline': 'central', 'aria-hidden': 'true', text: t('map.people_short', { n: c.minPeople }) }));
      }
      if (opts.interactive) {
        const pick = () => { state.cellFilter = state.cellFilter === c.cell ? null : c.cell; renderMap(); renderReports(); };
        g.addEventListener('click', pick);
        g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
      }
      layer.append(g);
    }
    svg.append(layer);

    if (opts.places) {
      const pl = svgEl('g', { class: 'places' });
      for (const place of opts.places) {
        const x = p.x(place.lon); const y = p.y(place.lat);
        if (Math.abs(x) > R || Math.abs(y) > R) continue;
        const s = fs * 0.75;
        pl.append(svgEl('g', { class: 'place', role: 'img', 'aria-label': t('map.place_label', { name: place.name, dist: fmtDist(place.distance_m) }) },
          svgEl('rect', { x: x - s, y: y - s, width: 2 * s, height: 2 * s, rx: s * 0.3, 'vector-effect': 'non-scaling-stroke' }),
          svgEl('path', { d: `M${x - s * 0.55} ${y} h${s * 1.1} M${x} ${y - s * 0.55} v${s * 1.1}`, 'vector-effect': 'non-scaling-stroke' })));
      }
      svg.append(pl);
    }

    if (opts.dest) {
      const x = p.x(opts.dest.lon); const y = p.y(opts.dest.lat);
      svg.append(svgEl('g', { class: 'dest', 'aria-hidden': 'true' },
        svgEl('path', { d: `M${x} ${y} l${-fs * 0.7} ${-fs * 1.6} a${fs * 0.75} ${fs * 0.75} 0 1 1 ${fs * 1.4} 0 z`, 'vector-effect': 'non-scaling-stroke' })));
    }

    // Contacts' journeys while they share: path since the start, the
    // destination, the last position with their name.
    for (const j of opts.shared || []) {
      const g = svgEl('g', { class: 'shared state-' + j.state, 'data-journey': j.journey, role: 'img', 'aria-label': sharedLabel(j) });
      const pts = (j.path || []).map((f) => `${p.x(f.lon)},${p.y(f.lat)}`);
      if (pts.length > 1) g.append(svgEl('polyline', { class: 'shared-path', points: pts.join(' '), 'vector-effect': 'non-scaling-stroke' }));
      if (j.destination) {
        const x = p.x(j.destination.lon); const y = p.y(j.destination.lat);
        g.append(svgEl('path', { class: 'shared-dest', d: `M${x} ${y} l${-fs * 0.5} ${-fs * 1.2} a${fs * 0.55} ${fs * 0.55} 0 1 1 ${fs} 0 z`, 'vector-effect': 'non-scaling-stroke' }));
      }
      const last = j.last_position;
      if (last) {
        const x = p.x(last.lon); const y = p.y(last.lat);
        g.append(svgEl('circle', { class: 'shared-pos', cx: x, cy: y, r: fs * 0.6, 'vector-effect': 'non-scaling-stroke' }));
        g.append(svgEl('text', { class: 'shared-name', x, y: y - fs * 0.9, 'font-size': fs * 0.9, 'text-anchor': 'middle', text: j.from_name || contactName(j.from) || '?' }));
      }
      svg.append(g);
    }

    const me = svgEl('g', { class: 'me', role: 'img', 'aria-label': t('map.me') });
    if (here.acc && here.acc < radius) me.append(svgEl('circle', { class: 'acc', cx: 0, cy: 0, r: here.acc }));
    me.append(svgEl('circle', { class: 'dot', cx: 0, cy: 0, r: fs * 0.55, 'vector-effect': 'non-scaling-stroke' }));
    svg.append(me);

    // Scale bar, bottom left: a round length near a fifth of the width.
    const target = (V[2] / 2.2) * 0.4;
    const step = [10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000].reduce((best, s) => (Math.abs(s - target) < Math.abs(best - target) ? s : best), 100);
    const sx = V[0] + fs * 0.8; const sy = V[1] + V[3] - fs * 1.0;
    svg.append(svgEl('g', { class: 'scale', 'aria-hidden': 'true' },
      svgEl('path', { d: `M${sx} ${sy - fs * 0.4} v${fs * 0.4} h${step} v${-fs * 0.4}`, 'vector-effect': 'non-scaling-stroke' }),
      svgEl('text', { x: sx + step / 2, y: sy - fs * 0.6, 'font-size': fs * 0.85, 'text-anchor': 'middle', text: fmtDist(step) })));
    return p;
  }

  // The city basemap, read from the local node (which fetched the whole
  // file once from a relay): streets under the SVG, which keeps every
  // overlay. Nothing is asked of a relay here.
  let basemap = null;
  // The map libraries (about 1 MB) load only when there is a basemap.
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.head.append(s);
    });
  }

  async function setupBasemap() {
    try {
      const res = await fetch('/v1/basemap', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (!res.ok || !(await res.json()).cached) return;
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = '/app/vendor/maplibre-gl.css';
      document.head.append(css);
      await loadScript('/app/vendor/maplibre-gl-csp.js');
      await loadScript('/app/vendor/pmtiles.js');
      await loadScript('/app/basemap.js');
    } catch (e) { return; }
    if (!window.RondeBasemap) return;
    const box = $('#report-basemap');
    basemap = window.RondeBasemap.create(box, '/v1/basemap.pmtiles', '/app/vendor/maplibre-gl-csp-worker.js', true);
    if (!basemap) return;
    show(box, true);
    $('#report-map').classList.add('with-basemap');
    const attr = $('#map-attribution');
    attr.textContent = window.RondeBasemap.ATTRIBUTION;
    show(attr, true);
    renderMap();
  }

  function syncBasemap(svg, view) {
    if (!basemap || !state.here) return;
    const px = Math.min(svg.clientWidth || 1, svg.clientHeight || 1);
    const mpp = view[2] / px;
    // The view's centre, metres east (x) and south (y) of the person.
    const cx = view[0] + view[2] / 2, cy = view[1] + view[3] / 2;
    const lat = state.here.lat - cy / 111320;
    const lon = state.here.lon + cx / (111320 * Math.cos((state.here.lat * Math.PI) / 180));
    window.RondeBasemap.sync(basemap, [lat, lon], window.RondeBasemap.zoomFor(state.here.lat, mpp));
  }

  // The map's lens: zoomed in (wheel, pinch) around the pointer and moved
  // by a drag, inside the radar's square; null shows the whole radius.
  // {cx, cy, half}: metres east and south of the person, half-width.
  function lensView() {
    const R = state.radius * 1.1;
    const l = state.lens;
    return l ? [l.cx - l.half, l.cy - l.half, 2 * l.half, 2 * l.half] : [-R, -R, 2 * R, 2 * R];
  }

  function setLens(l) {
    const R = state.radius * 1.1;
    if (!l || l.half >= R) {
      state.lens = null;
    } else {
      const half = Math.max(40, l.half);
      const m = R - half;
      state.lens = { cx: Math.max(-m, Math.min(m, l.cx)), cy: Math.max(-m, Math.min(m, l.cy)), half };
    }
    // Once zoomed in, a finger moves the map rather than the page.
    $('#report-map').style.touchAction = state.lens ? 'none' : 'pan-x pan-y';
    renderMap();
  }

  // Zoom by `f` (< 1: in) keeping the map point under (clientX, clientY).
  function zoomLensAt(clientX, clientY, f) {
    const svg = $('#report-map');
    const ctm = svg.getScreenCTM();
    if (!ctm || !state.here) return;
    const pt = new DOMPoint(clientX, clientY).matrixTransform(ctm.inverse());
    const R = state.radius * 1.1;
    const l = state.lens || { cx: 0, cy: 0, half: R };
    const half = Math.max(40, Math.min(R, l.half * f));
    const k = half / l.half;
    setLens({ cx: pt.x + (l.cx - pt.x) * k, cy: pt.y + (l.cy - pt.y) * k, half });
  }

  function setupMapGestures() {
    const svg = $('#report-map');
    svg.style.touchAction = 'pan-x pan-y';
    svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      zoomLensAt(e.clientX, e.clientY, e.deltaY > 0 ? 1.25 : 0.8);
    }, { passive: false });
    const down = new Map(); // pointerId → [x, y]
    let moved = false;
    svg.addEventListener('pointerdown', (e) => { down.set(e.pointerId, [e.clientX, e.clientY]); moved = false; });
    svg.addEventListener('pointermove', (e) => {
      const prev = down.get(e.pointerId);
      if (!prev) return;
      if (down.size === 2) {
        const [a, b] = [...down.values()];
        const other = a === prev ? b : a;
        const before = Math.hypot(prev[0] - other[0], prev[1] - other[1]);
        const after = Math.hypot(e.clientX - other[0], e.clientY - other[1]);
        if (before > 0 && after > 0) {
          zoomLensAt((e.clientX + other[0]) / 2, (e.clientY + other[1]) / 2, before / after);
          moved = true;
        }
      } else if (down.size === 1 && state.lens) {
        const dx = e.clientX - prev[0], dy = e.clientY - prev[1];
        if (!moved && Math.hypot(dx, dy) < 6) return;
        moved = true;
        const ctm = svg.getScreenCTM();
        const k = ctm && ctm.a ? 1 / ctm.a : 1;
        setLens({ cx: state.lens.cx - dx * k, cy: state.lens.cy - dy * k, half: state.lens.half });
      }
      down.set(e.pointerId, [e.clientX, e.clientY]);
    });
    const up = (e) => { down.delete(e.pointerId); };
    svg.addEventListener('pointerup', up);
    svg.addEventListener('pointercancel', up);
    // A drag or pinch is no tap on a cell.
    svg.addEventListener('click', (e) => { if (moved) { e.stopPropagation(); moved = false; } }, true);
  }

  function renderMap() {
    const svg = $('#report-map');
    const reports = liveReports();
    const cells = cellsOf(reports);
    const view = lensView();
    syncBasemap(svg, view);
    drawMap(svg, state.radius, {
      view, cells, interactive: true,
      places: state.directory.available ? state.directory.places : null,
      dest: state.circle.journey && isActiveJourney(state.circle.journey) ? state.circle.journey.destination : null,
      shared: state.circle.shared,
    });
    const overlay = $('#map-empty');
    overlay.textContent = t('map.no_location');
    show(overlay, !state.here);
    let desc = svg.querySelector('desc');
    if (!desc) { desc = svgEl('desc', { id: 'map-desc' }); svg.append(desc); }
    desc.textContent = t('map.desc', { n: reports.length, cells: cells.length, radius: fmtDist(state.radius) });
    svg.setAttribute('aria-describedby', 'map-desc');
  }

  // ---------------------------------------------------------------------
  // Reporting, in two taps: a category, then "here"
  // ---------------------------------------------------------------------

  function renderCategories() {
    const grid = $('#category-grid');
    grid.replaceChildren();
    for (const c of CATEGORIES) {
      grid.append(el('button', {
        type: 'button', class: 'cat-btn sev' + SEVERITY[c], 'data-category': c,
        'aria-pressed': String(state.category === c),
        onclick: () => chooseCategory(c),
      }, icon(c), el('span', { text: t('cat.' + c) })));
    }
  }

  function chooseCategory(c) {
    state.category = c;
    showError($('#report-error'), null);
    show($('#report-done'), false);
    show($('#report-step-category'), false);
    show($('#report-step-where'), true);
    renderReportWhere();
    $('#report-here').focus();
  }

  function renderReportWhere() {
    if (!state.category) return;
    $('#report-chosen').replaceChildren(icon(state.category), document.createTextNode(' ' + t('cat.' + state.category)));
    const h = state.here;
    $('#report-here-detail').textContent = !h ? t('report.here_detail_none')
      : h.source === 'gps' ? t('report.here_detail_gps', { acc: fmtDist(h.acc || 0) })
        : t('report.here_detail_manual', { coords: fmtCoords(h.lat, h.lon) });
  }

  function resetReport() {
    state.category = null;
    show($('#report-step-where'), false);
    show($('#report-done'), false);
    show($('#report-step-category'), true);
    showError($('#report-error'), null);
    renderCategories();
  }

  async function reportHere() {
    let pos = state.here;
    const stale = pos && pos.source === 'gps' && Date.now() - pos.at > 120000;
    if (!pos || stale) {
      try { pos = await locateOnce(10000); setHere(pos); } catch (_) { pos = stale ? state.here : null; }
    }
    if (!pos) {
      showError($('#report-error'), t('report.need_location'));
      const details = $('#report-step-where details');
      details.open = true;
      $('#report-else').focus();
      return;
    }
    await sendReport(pos.lat, pos.lon);
  }

  async function reportElsewhere(ev) {
    ev.preventDefault();
    const c = parseCoords($('#report-else').value);
    if (!c) { showError($('#report-error'), t('where.bad_coords')); $('#report-else').focus(); return; }
    await sendReport(c.lat, c.lon);
  }

  let sending = false;
  async function sendReport(lat, lon) {
    if (sending || !state.category) return;
    sending = true;
    const btn = $('#report-here');
    btn.disabled = true;
    btn.textContent = t('report.sending');
    showError($('#report-error'), null);
    const precision = $('#report-coarse').checked ? 6 : 7;
    const category = state.category;
    try {
      const sent = await api('POST', ROUTES.reports, { category, lat, lon, precision });
      state.lastReport = Object.assign({ category, precision }, sent);
      renderReportDone();
      show($('#report-step-where'), false);
      show($('#report-done'), true);
      $('#report-done').focus();
      announce(t('report.sent_title') + ': ' + t('cat.' + category) + '.');
      refreshReports();
    } catch (e) {
      showError($('#report-error'), e);
    } finally {
      sending = false;
      btn.disabled = false;
      btn.textContent = t('report.here');
    }
  }

  function renderReportDone() {
    const r = state.lastReport;
    const box = $('#report-done');
    if (!r) return;
    const size = r.cell && r.cell.length <= 6 ? t('report.sent_cell_size6') : t('report.sent_cell_size7');
    box.replaceChildren(
      el('h2', { class: 'section-title', text: t('report.sent_title') }),
      el('dl', { class: 'sent' },
        el('dt', { text: t('report.sent_what') }), el('dd', { 'data-field': 'category' }, icon(r.category), ' ', t('cat.' + r.category)),
        el('dt', { text: t('report.sent_cell') }), el('dd', { 'data-field': 'cell' }, el('code', { text: r.cell }), ' (' + size + ')'),
        el('dt', { text: t('report.sent_expires') }), el('dd', { 'data-field': 'expires', text: fmtTime(r.expires_at) + ' (' + fmtIn(r.expires_at - nowSecs()) + ')' })),
      el('p', { text: r.published ? t('report.sent_published') : t('report.sent_pending') }),
      el('p', { class: 'anon', text: t('report.sent_anonymous') }),
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'btn', onclick: () => showView('map', true), text: t('report.see_map') }),
        el('button', { type: 'button', class: 'btn ghost', onclick: () => { resetReport(); $('#category-grid button').focus(); }, text: t('report.another') })));
  }

  // ---------------------------------------------------------------------
  // Node status and live events
  // ---------------------------------------------------------------------

  async function refreshStatus() {
    try {
      state.status = await api('GET', ROUTES.status);
    } catch (_) {
      state.status = null;
    }
    // No position yet (no GPS answer, nothing typed): start from where the
    // node was told it is (`ronde node --at`).
    const at = state.status && state.status.location;
    if (!state.here && at && Number.isFinite(at.lat) && Number.isFinite(at.lon)) {
      state.nodeAt = { lat: at.lat, lon: at.lon };
      setHere({ lat: at.lat, lon: at.lon, acc: 0, at: Date.now(), source: 'node' });
    }
    renderConn();
  }

  function renderConn() {
    const chip = $('#conn');
    let text; let cls;
    if (state.nodeUp === false) { text = t('conn.down'); cls = 'down'; }
    else if (state.loggedIn === false) { text = t('conn.login'); cls = 'down'; }
    else if (!state.status) { text = ''; cls = ''; }
    else if (state.status.connected_peers > 0) { text = t('conn.peers', { n: state.status.connected_peers }); cls = 'up'; }
    else { text = t('conn.alone'); cls = 'alone'; }
    if (state.nodeUp && !state.live && state.status) { text += ' · ' + t('conn.live_lost'); }
    chip.textContent = text;
    chip.className = 'conn ' + cls;
  }

  let source = null;
  function connectEvents() {
    if (!('EventSource' in window) || source) return;
    source = new EventSource(ROUTES.events);
    source.addEventListener('open', () => { state.live = true; renderConn(); refreshReports(); });
    source.addEventListener('error', () => { state.live = false; renderConn(); });
    source.addEventListener('report', (e) => {
      try { addLiveReport(JSON.parse(e.data)); } catch (_) { /* ignore a bad event */ }
    });
    source.addEventListener('lagged', () => refreshReports());
    // The circle's events: any of them means "read the inbox again".
    for (const name of ['alert', 'circle', 'inbox', 'contact', 'journey', 'sos']) {
      source.addEventListener(name, (e) => {
        let data = null;
        try { data = JSON.parse(e.data); } catch (_) { /* ignore */ }
        onCircleEvent(name, data);
      });
    }
  }

  // ---------------------------------------------------------------------
  // The circle: contacts, inbox, journey, SOS
  // ---------------------------------------------------------------------

  async function refreshCircle() {
    try {
      const list = await api('GET', ROUTES.contacts);
      state.circle.available = true;
      state.circle.contacts = (list && list.contacts) || [];
      state.circle.pendingInvites = (list && list.pending_invites) || 0;
    } catch (e) {
      if (isMissingRoute(e)) state.circle.available = false;
      renderCircle();
      renderJourney();
      return;
    }
    await Promise.all([
      api('GET', ROUTES.circleStatus).then((d) => { state.circle.codes = !!(d && d.codes); }).catch(() => {}),
      api('GET', ROUTES.inbox).then((d) => { state.circle.inbox = (d && d.items) || []; }).catch(() => {}),
      api('GET', ROUTES.sharedJourneys).then((d) => { state.circle.shared = (d && d.journeys) || []; }).catch(() => {}),
      api('GET', ROUTES.journey).then((d) => { state.circle.journey = unwrap(d, 'journey'); })
        .catch((e) => { if (e.code === 'no_journey') state.circle.journey = null; }),
      api('GET', ROUTES.sos).then((d) => { state.circle.sos = unwrap(d, 'sos'); })
        .catch((e) => { if (e.code === 'no_sos') state.circle.sos = null; }),
    ]);
    renderCircle();
    renderJourney();
    renderSosState();
    renderCodes();
    renderMap();
    raiseNewAlerts();
  }

  /** `{journey: X}` or `X` → X (or null). */
  function unwrap(d, key) {
    if (!d) return null;
    if (Object.prototype.hasOwnProperty.call(d, key)) return d[key];
    return d;
  }

  function onCircleEvent(name, data) {
    // An inbox item, pushed live: show it at once, then re-read everything.
    if (data && typeof data === 'object') {
      const item = data.item || (data.id !== undefined && data.kind ? data : null);
      if (item && !state.circle.inbox.some((i) => i.id === item.id)) {
        state.circle.inbox.push(item);
        renderCircle();
        raiseNewAlerts();
      }
    }
    refreshCircle();
  }

  const contactName = (id) => (state.circle.contacts.find((c) => c.id === id) || {}).name || '';

  function inboxText(item) {
    const name = item.from_name || contactName(item.from) || '?';
    let key = 'inbox.k.' + item.kind;
    if (item.kind === 'deviated') key += '.' + item.reason;
    if (item.kind === 'journey_started' && item.states_only) key = 'inbox.k.journey_started_states_only';
    const time = item.expected_arrival ? fmtTime(item.expected_arrival) : '';
    const s = t(key, { name, time });
    return s === key ? t('inbox.k.other', { name }) : s;
  }

  function placeOf(item) {
    return item.place || (item.last_seen) || (item.fix) || item.destination || null;
  }

  /** How urgent an alert is: the banner shows the most urgent unseen one. */
  const ALERT_RANK = { sos: 5, duress: 4, overdue: 3, deviated: 2 };
  const alertRank = (i) => ALERT_RANK[i.kind] || 1;
  /** The item an alert is about (SOS id or journey id). */
  const subjectOf = (i) => i.sos || i.journey || i.of || null;

  function raiseNewAlerts() {
    const fresh = state.circle.inbox.filter((i) => i.alert && !i.seen && !state.circle.alerted.has(i.id));
    for (const i of fresh) state.circle.alerted.add(i.id);
    const unseen = state.circle.inbox.filter((i) => i.alert && !i.seen);
    const badge = $('#inbox-badge');
    badge.textContent = unseen.length ? String(unseen.length) : '';
    show(badge, unseen.length > 0);
    const banner = $('#alert-banner');
    if (unseen.length) {
      // The most urgent, then the newest: an overdue never hides an SOS.
      const last = [...unseen].sort((a, b) => alertRank(b) - alertRank(a) || b.id - a.id)[0];
      banner.replaceChildren(
        el('span', { text: t('inbox.alert_banner', { text: inboxText(last) }) }),
        el('button', { type: 'button', class: 'btn small', onclick: () => showView('circle', true), text: t('nav.circle') }));
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    if (fresh.length && navigator.vibrate) navigator.vibrate([300, 100, 300, 100, 300]);
  }

  function renderCircle() {
    const available = state.circle.available !== false;
    const unavailable = $('#circle-unavailable');
    unavailable.textContent = t('circle.unavailable');
    show(unavailable, !available);
    show($('#circle-body'), available);
    if (!available) return;
    renderShared();

    // Inbox, newest first; position updates folded into their journey.
    const list = $('#inbox-list');
    list.replaceChildren();
    // Only the latest position of each journey, and none once it ended.
    const ended = new Set();
    const placed = new Set();
    const alerted = new Set(state.circle.inbox.filter((i) => i.alert && i.kind !== 'sos').map(subjectOf));
    const items = [...state.circle.inbox].sort((a, b) => b.id - a.id).filter((i) => {
      if (i.kind === 'arrived' || i.kind === 'journey_cancelled') ended.add(i.journey);
      if (i.kind !== 'position') return true;
      if (ended.has(i.journey) || placed.has(i.journey)) return false;
      placed.add(i.journey);
      return true;
    })
      // Alerts not yet acknowledged stay pinned at the top, the most urgent
      // first; then everything else, newest first.
      .sort((a, b) => {
        const pa = a.alert && !a.seen ? alertRank(a) : 0;
        const pb = b.alert && !b.seen ? alertRank(b) : 0;
        return pb - pa || b.id - a.id;
      });
    show($('#inbox-empty'), items.length === 0);
    for (const item of items.slice(0, 50)) {
      const place = placeOf(item);
      let where = null;
      if (place && Number.isFinite(place.lat) && Number.isFinite(place.lon)) {
        const d = state.here ? fmtDist(distanceM(state.here, place)) : '';
        where = el('p', { class: 'meta' },
          t('inbox.at', { coords: fmtCoords(place.lat, place.lon), dist: d }), ' ',
          el('a', { href: `geo:${place.lat.toFixed(6)},${place.lon.toFixed(6)}`, class: 'link', text: t('inbox.open_map') }));
      }
      const ack = item.alert && !item.seen
        ? el('button', { type: 'button', class: 'btn primary', 'data-ack': item.id, onclick: () => ackItem(item), text: t('inbox.ack') })
        : (item.alert ? el('span', { class: 'seen', text: t('inbox.seen') }) : null);
      // After an alert about a journey, a position no longer says "on the
      // way": it is the last position known.
      const text = item.kind === 'position' && alerted.has(item.journey)
        ? t('inbox.k.position_after_alert', { name: item.from_name || contactName(item.from) || '?', time: fmtTime((item.fix && item.fix.at) || item.received_at) })
        : inboxText(item);
      list.append(el('li', { class: 'card inbox' + (item.alert ? ' alert' : '') + (item.alert && !item.seen ? ' pinned' : '') + (item.seen ? ' seen' : ''), 'data-kind': item.kind, 'data-id': item.id },
        el('strong', { text }),
        item.note ? el('p', { class: 'note-text', text: t('inbox.note', { note: item.note }) }) : null,
        where,
        item.safety_number ? el('p', { class: 'safety' }, el('span', { class: 'meta', text: t('contacts.safety') + ' ' }), el('code', { text: item.safety_number })) : null,
        el('p', { class: 'meta faint', text: fmtAgo(nowSecs() - (item.received_at || nowSecs())) }),
        ack));
    }

    const contacts = $('#contact-list');
    contacts.replaceChildren();
    show($('#contacts-empty'), state.circle.contacts.length === 0);
    for (const c of state.circle.contacts) {
      contacts.append(el('li', { class: 'card contact state-' + c.state, 'data-contact': c.id },
        el('strong', { text: c.name }),
        el('span', { class: 'meta', text: t('contacts.state.' + c.state) }),
        c.queued ? el('span', { class: 'meta faint', text: t('contacts.queued', { n: c.queued }) }) : null,
        el('details', { class: 'safety' },
          el('summary', { text: t('contacts.safety') }),
          el('p', { class: 'meta', text: t('contacts.safety_help') }),
          el('code', { class: 'digits', text: c.safety_number })),
        el('div', { class: 'row' },
          c.state === 'awaiting_my_approval'
            ? el('button', { type: 'button', class: 'btn primary', onclick: () => approveContact(c), text: t('contacts.approve') }) : null,
          el('button', { type: 'button', class: 'btn ghost', onclick: () => removeContact(c), text: t('contacts.remove') }))));
    }
  }

  /** One line about a contact's journey: who, its state, when. */
  function sharedLabel(j) {
    const name = j.from_name || contactName(j.from) || '?';
    const key = 'shared.state.' + j.state + (j.state === 'deviated' && j.deviation ? '.' + j.deviation : '');
    return t(key, { name, time: fmtTime(j.expected_arrival) });
  }

  /** Contacts' journeys while they share: state, expected arrival, last
   *  position; alerts first (the node orders them). */
  function renderShared() {
    const list = $('#shared-list');
    list.replaceChildren();
    const journeys = state.circle.shared || [];
    show($('#shared-title'), journeys.length > 0);
    for (const j of journeys) {
      const last = j.last_position;
      const where = last && Number.isFinite(last.lat) && Number.isFinite(last.lon)
        ? el('p', { class: 'meta' },
          t('shared.last', { time: fmtTime(last.at), dist: state.here ? fmtDist(distanceM(state.here, last)) : '' }), ' ',
          el('button', { type: 'button', class: 'link', onclick: () => showView('map', true), text: t('shared.on_map') }), ' ',
          el('a', { href: `geo:${last.lat.toFixed(6)},${last.lon.toFixed(6)}`, class: 'link', text: t('inbox.open_map') }))
        : el('p', { class: 'meta faint', text: j.states_only ? t('shared.states_only') : t('shared.no_position') });
      list.append(el('li', { class: 'card shared-card state-' + j.state + (j.state === 'overdue' || j.state === 'deviated' || j.state === 'duress' ? ' alert' : ''), 'data-journey': j.journey, 'data-state': j.state },
        el('strong', { text: sharedLabel(j) }),
        j.ended_at ? null : el('p', { class: 'meta', text: t('shared.eta', { time: fmtTime(j.expected_arrival) }) }),
        where));
    }
  }

  async function ackItem(item) {
    try {
      await api('POST', ROUTES.inboxAck, { ids: [item.id] });
      item.seen = true;
      renderCircle();
      raiseNewAlerts();
    } catch (e) { showError($('#circle-error'), e); }
    refreshCircle();
  }

  // Approving is where a phished invite is caught: the whole safety number
  // is shown and the person says it matches; the node checks it was sent.
  async function approveContact(c) {
    if (!window.confirm(t('contacts.approve_confirm', { name: c.name, number: c.safety_number }))) return;
    try {
      await api('POST', ROUTES.approve(c.id), { safety_number: c.safety_number });
    } catch (e) { showError($('#circle-error'), e); }
    refreshCircle();
  }

  async function removeContact(c) {
    if (!window.confirm(t('contacts.remove_confirm', { name: c.name }))) return;
    try { await api('DELETE', ROUTES.contact(c.id)); } catch (e) { showError($('#circle-error'), e); }
    refreshCircle();
  }

  function savedName() {
    try { return localStorage.getItem('ronde.name') || ''; } catch (_) { return ''; }
  }

  function saveName(name) {
    try { localStorage.setItem('ronde.name', name); } catch (_) { /* ignore */ }
  }

  /** The QR code of `text` (upper case, alphanumeric mode) as an SVG built
   *  element by element (the app's policy allows no inline markup). */
  function qrSvg(text) {
    if (typeof window.qrcode !== 'function') return null;
    let qr;
    try {
      qr = window.qrcode(0, 'L');
      qr.addData(text, 'Alphanumeric');
      qr.make();
    } catch (_) { return null; }
    const n = qr.getModuleCount();
    const q = 4; // the quiet zone
    const size = n + 2 * q;
    let d = '';
    for (let r = 0; r < n; r += 1) {
      for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) d += `M${c + q} ${r + q}h1v1h-1z`;
    }
    return svgEl('svg', { class: 'qr', id: 'invite-qr', viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': t('contacts.qr_label'), 'shape-rendering': 'crispEdges' },
      svgEl('rect', { width: size, height: size, fill: '#fff' }),
      svgEl('path', { d, fill: '#000' }));
  }

  async function createInvite(ev) {
    ev.preventDefault();
    const name = $('#invite-name').value.trim();
    const out = $('#invite-result');
    showError($('#circle-error'), null);
    if (name) saveName(name);
    try {
      const inv = await api('POST', ROUTES.invite, name ? { name } : {});
      const code = inv.code;
      out.replaceChildren(
        el('p', { class: 'meta', text: t('contacts.invite_code', { time: fmtDate(inv.expires_at) + ' ' + fmtTime(inv.expires_at) }) }),
        el('p', { class: 'meta', text: t('contacts.qr_help') }),
        qrSvg(inv.qr || code.toUpperCase()),
        inv.short_code ? el('p', { class: 'short-code-line' },
          el('span', { class: 'meta', text: t('contacts.short_code') + ' ' }),
          el('strong', { class: 'short-code', id: 'invite-short-code', text: inv.short_code })) : null,
        inv.short_code ? el('p', { class: 'meta faint', text: t('contacts.short_help') }) : null,
        el('code', { class: 'invite-code', id: 'invite-code', tabindex: 0, text: groupCode(code) }),
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'btn', onclick: () => copy(code), text: t('contacts.copy') }),
          navigator.share ? el('button', { type: 'button', class: 'btn ghost', onclick: () => navigator.share({ text: code }).catch(() => {}), text: t('contacts.share') }) : null));
      out.hidden = false;
      $('#invite-code').focus();
      refreshCircle();
    } catch (e) { showError($('#circle-error'), e); }
  }

  /** `ronde1:abcd…` in groups of 4 for reading; decoders skip the dashes. */
  function groupCode(code) {
    const i = code.indexOf(':');
    const body = code.slice(i + 1).match(/.{1,4}/g) || [];
    return code.slice(0, i + 1) + body.join('-');
  }

  async function copy(text) {
    try { await navigator.clipboard.writeText(text); announce(t('contacts.copied')); } catch (_) { /* ignore */ }
  }

  async function acceptInvite(ev) {
    ev.preventDefault();
    const code = $('#accept-code').value.trim();
    const name = $('#accept-name').value.trim();
    const out = $('#accept-result');
    showError($('#circle-error'), null);
    if (!code) { showError($('#circle-error'), t('contacts.need_code')); $('#accept-code').focus(); return; }
    if (name) saveName(name);
    // A short code is looked for at the mailbox hosts: it may take a while.
    const shortCode = /^[0-9a-z]{5}[-\s]?[0-9a-z]{5}$/i.test(code);
    if (shortCode) {
      out.replaceChildren(el('p', { class: 'meta', text: t('contacts.looking') }));
      out.hidden = false;
    }
    try {
      const res = await api('POST', ROUTES.accept, name ? { code, name } : { code });
      const c = unwrap(res, 'contact') || {};
      out.replaceChildren(
        el('p', { text: t('contacts.accepted', { name: c.name || '' }) }),
        el('code', { class: 'digits', text: c.safety_number || '' }));
      out.hidden = false;
      $('#accept-code').value = '';
      refreshCircle();
    } catch (e) {
      if (shortCode) out.hidden = true;
      showError($('#circle-error'), e);
    }
  }

  // Journey --------------------------------------------------------------

  const isActiveJourney = (j) => j && (j.state === 'active' || j.state === 'overdue' || j.state === 'started');

  function renderJourney() {
    const available = state.circle.available !== false;
    const un = $('#journey-unavailable');
    un.textContent = t('circle.unavailable');
    show(un, !available);
    const j = state.circle.journey;
    const active = available && isActiveJourney(j);
    show($('#journey-form'), available && !active);
    show($('#journey-active'), active || (available && j && justEnded));
    if (!available) return;
    const box = $('#journey-active');
    if (active) {
      const dest = j.destination || {};
      const acked = (j.acked_by || []).map((a) => a.name).join(', ');
      box.replaceChildren(el('div', { class: 'card journey ' + j.state },
        el('h2', { class: 'section-title', text: t('journey.active_title') }),
        j.state !== 'active' ? el('p', { class: 'status-line', text: t('journey.state.' + j.state) }) : null,
        el('p', { id: 'journey-to', text: t('journey.to', { dest: j.destination_name || dest.label || fmtCoords(dest.lat || 0, dest.lon || 0) }) + (state.here && Number.isFinite(dest.lat) ? ' · ' + fmtDist(distanceM(state.here, dest)) : '') }),
        el('dl', { class: 'sent' },
          el('dt', { text: t('journey.expected') }), el('dd', { text: fmtTime(j.expected_arrival) }),
          el('dt', { text: t('journey.overdue_at') }), el('dd', { text: fmtTime(j.overdue_at || j.expected_arrival) })),
        el('p', { class: 'meta', text: t('journey.told', { n: j.contacts || 0 }) }),
        j.switch ? el('p', { class: 'meta', text: t('journey.switch.' + j.switch) }) : null,
        (j.switch_hosts || []).length ? el('ul', { class: 'meta switch-hosts', 'aria-label': t('journey.switch.held_by') },
          ...j.switch_hosts.map((h) => el('li', { text: t('journey.switch.host', {
            peer: h.peer,
            operator: h.operator || t('journey.switch.own_host'),
            state: t('journey.switch.host.' + h.state),
          }) }))) : null,
        acked ? el('p', { class: 'meta', text: t('journey.acked_by', { names: acked }) }) : null,
        j.states_only ? el('p', { class: 'meta', text: t('journey.parents_on') }) : null,
        j.near_destination ? el('p', { class: 'status-line', role: 'status', text: t('journey.near') }) : null,
        j.state === 'active' ? el('button', { type: 'button', id: 'journey-more', class: 'btn', onclick: journeyMoreTime, text: t('journey.more_time') }) : null,
        codeField('journey-code'),
        el('button', { type: 'button', id: 'journey-arrived', class: 'btn ok huge', onclick: journeyArrived, text: t('journey.arrived') }),
        el('button', { type: 'button', id: 'journey-cancel', class: 'btn ghost', onclick: journeyCancel, text: t('journey.cancel') })));
    } else if (justEnded) {
      box.replaceChildren(el('div', { class: 'card done', role: 'status' },
        el('p', { text: justEnded === 'arrived' ? t('journey.done_arrived') : t('journey.done_cancelled') }),
        el('button', { type: 'button', class: 'btn', onclick: () => { justEnded = null; renderJourney(); }, text: t('journey.new') })));
    }
    renderDestKinds();
    renderJourneyMap();
  }
  let justEnded = null;

  /** Saved destinations ("Home", "Work"): on this device only. */
  function savedPlaces() {
    try {
      const v = JSON.parse(localStorage.getItem('ronde.saved') || '[]');
      return Array.isArray(v) ? v.filter((p) => p && typeof p.name === 'string' && Number.isFinite(p.lat) && Number.isFinite(p.lon)) : [];
    } catch (_) { return []; }
  }

  function savePlace(name, dest) {
    const list = savedPlaces().filter((p) => p.name !== name);
    list.unshift({ name, lat: dest.lat, lon: dest.lon });
    try { localStorage.setItem('ronde.saved', JSON.stringify(list.slice(0, 10))); } catch (_) { /* ignore */ }
  }

  function renderDestKinds() {
    const sel = $('#journey-dest-kind');
    const saved = savedPlaces();
    const value = sel.value || (saved.length ? 'saved:0' : 'map');
    sel.setAttribute('aria-label', t('journey.destination'));
    sel.replaceChildren(
      ...saved.map((p, i) => el('option', { value: 'saved:' + i, text: p.name })),
      el('option', { value: 'map', text: t('journey.dest_map') }),
      el('option', { value: 'coords', text: t('journey.dest_coords') }),
      ...state.directory.places.slice(0, 10).map((p) => el('option', { value: 'place:' + p.id, text: t('journey.dest_place', { name: p.name }) + ' · ' + fmtDist(p.distance_m) })));
    sel.value = [...sel.options].some((o) => o.value === value) ? value : 'map';
    const kind = sel.value;
    show($('#journey-dest-map-wrap'), kind === 'map');
    show($('#journey-coords'), kind === 'coords');
    show($('#journey-coords-label'), kind === 'coords');
  }

  function renderJourneyMap() {
    const svg = $('#journey-map');
    drawMap(svg, 2000, { cells: [], places: state.directory.places, dest: state.journeyDest });
  }

  function journeyMapPick(ev) {
    if (!state.here) return;
    const svg = $('#journey-map');
    const pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    const ctm = svg.getScreenCTM();
    if (!ctm) return;
    const local = pt.matrixTransform(ctm.inverse());
    const p = projector(state.here.lat, state.here.lon);
    state.journeyDest = { lat: p.lat(local.y), lon: p.lon(local.x) };
    renderJourneyMap();
    announce(t('journey.destination') + ': ' + fmtDist(distanceM(state.here, state.journeyDest)));
  }

  function journeyMapKey(ev) {
    const moves = { ArrowUp: [0, -50], ArrowDown: [0, 50], ArrowLeft: [-50, 0], ArrowRight: [50, 0] };
    const m = moves[ev.key];
    if (!m || !state.here) return;
    ev.preventDefault();
    const p = projector(state.here.lat, state.here.lon);
    const cur = state.journeyDest || state.here;
    state.journeyDest = { lat: p.lat(p.y(cur.lat) + m[1]), lon: p.lon(p.x(cur.lon) + m[0]) };
    renderJourneyMap();
    announce(fmtDist(distanceM(state.here, state.journeyDest)));
  }

  async function startJourney(ev) {
    ev.preventDefault();
    showError($('#journey-error'), null);
    const kind = $('#journey-dest-kind').value;
    let dest = null;
    let name = null;
    if (kind === 'map') dest = state.journeyDest;
    else if (kind === 'coords') dest = parseCoords($('#journey-coords').value);
    else if (kind.startsWith('saved:')) {
      const s = savedPlaces()[parseInt(kind.slice(6), 10)];
      if (s) { dest = { lat: s.lat, lon: s.lon }; name = s.name; }
    } else if (kind.startsWith('place:')) {
      const place = state.directory.places.find((p) => 'place:' + p.id === kind);
      if (place) { dest = { lat: place.lat, lon: place.lon }; name = place.name; }
    }
    if (!dest) { showError($('#journey-error'), t('journey.need_dest')); return; }
    const saveAs = $('#journey-save-name').value.trim();
    if (saveAs) { savePlace(saveAs, dest); name = saveAs; $('#journey-save-name').value = ''; }
    const minutes = parseInt($('#journey-eta').value, 10) || 20;
    const body = { lat: dest.lat, lon: dest.lon, eta_secs: minutes * 60 };
    if (name) body.destination_name = name;
    if ($('#journey-parents').checked) body.states_only = { corridor_m: 300, stop_secs: 600 };
    try {
      const res = await api('POST', ROUTES.journey, body);
      state.circle.journey = unwrap(res, 'journey');
      justEnded = null;
      renderJourney();
      renderMap();
      const b = $('#journey-arrived');
      if (b) b.focus();
      refreshCircle();
    } catch (e) { showError($('#journey-error'), e); }
  }

  /** A field for the person's code, shown once codes are set. */
  function codeField(id) {
    if (!state.circle.codes) return null;
    const input = el('input', { id, class: 'input', type: 'password', inputmode: 'numeric', autocomplete: 'off', maxlength: '12' });
    // The views are rebuilt on every refresh: what the person is typing
    // (their code, perhaps under pressure) must survive it, focus included.
    const old = document.getElementById(id);
    if (old) {
      input.value = old.value;
      // A microtask, not a timer: it runs as soon as the view is in the
      // page, before any key the person presses next (a timer let keys
      // typed in between fall on nothing).
      if (document.activeElement === old) queueMicrotask(() => input.focus());
    }
    return el('label', { class: 'code-field', for: id }, t('codes.enter'), input);
  }

  /** `{code}` from a code field, or `{}` without codes. */
  function codeBody(id) {
    const f = document.getElementById(id);
    const code = f ? f.value.trim() : '';
    return code ? { code } : {};
  }

  async function saveCodes(ev) {
    ev.preventDefault();
    showError($('#codes-error'), null);
    const body = { code: $('#codes-code').value.trim(), duress_code: $('#codes-duress').value.trim() };
    const current = $('#codes-current').value.trim();
    if (current) body.current_code = current;
    try {
      await api('PUT', ROUTES.codes, body);
      for (const id of ['#codes-code', '#codes-duress', '#codes-current']) $(id).value = '';
      state.circle.codes = true;
      renderCodes();
      announce(t('codes.saved'));
    } catch (e) { showError($('#codes-error'), e); }
  }

  function renderCodes() {
    $('#codes-state').textContent = t(state.circle.codes ? 'codes.on' : 'codes.off');
    show($('#codes-current'), !!state.circle.codes);
    show($('label[for="codes-current"]'), !!state.circle.codes);
  }

  async function journeyMoreTime() {
    try {
      const res = await api('POST', ROUTES.journeyExtend, { add_secs: 600 });
      state.circle.journey = unwrap(res, 'journey');
      renderJourney();
      announce(t('journey.more_time_done', { time: fmtTime(state.circle.journey.expected_arrival) }));
    } catch (e) { showError($('#journey-error'), e); }
  }

  async function journeyArrived() {
    try {
      await api('POST', ROUTES.journeyArrived, codeBody('journey-code'));
      justEnded = 'arrived';
      announce(t('journey.done_arrived'));
    } catch (e) { showError($('#journey-error'), e); }
    state.journeyDest = null;
    await refreshCircle();
  }

  async function journeyCancel() {
    try {
      await api('POST', ROUTES.journeyCancel, codeBody('journey-code'));
      justEnded = 'cancelled';
      announce(t('journey.done_cancelled'));
    } catch (e) { showError($('#journey-error'), e); }
    await refreshCircle();
  }

  // SOS --------------------------------------------------------------------

  const sosActive = () => state.circle.sos && state.circle.sos.state === 'active';

  /** Whether anyone in the circle can be alerted. */
  const hasMutual = () => state.circle.contacts.some((c) => c.state === 'mutual');

  function openSos() {
    const d = $('#sos-dialog');
    if (d.open) return;
    show($('#sos-close'), false);
    if (!sosActive() && state.circle.available !== false && !hasMutual()) {
      // Nobody to alert: say so at once, with the numbers, no countdown.
      show($('#sos-countdown-wrap'), false);
      const box = $('#sos-state');
      box.replaceChildren(el('p', { class: 'sos-text', id: 'sos-nobody', text: t('sos.no_contacts') }));
      show(box, true);
      show($('#sos-close'), true);
      d.showModal();
      const call = d.querySelector('.sos-calls a');
      if (call) call.focus();
      return;
    }
    if (sosActive()) {
      // Already raised: show where it stands.
      show($('#sos-countdown-wrap'), false);
      renderSosState();
      show($('#sos-state'), true);
      show($('#sos-close'), true);
      d.showModal();
      return;
    }
    state.sosLeft = SOS_COUNTDOWN_SECS;
    show($('#sos-countdown-wrap'), true);
    show($('#sos-state'), false);
    renderSosCountdown();
    d.showModal();
    $('#sos-abort').focus();
    state.sosTimer = setInterval(() => {
      state.sosLeft -= 1;
      if (state.sosLeft <= 0) { sendSos(); return; }
      renderSosCountdown();
    }, 1000);
  }

  /** The discreet trigger: pressing and holding 2 s sends the SOS at once,
   *  with no dialog and no sound, only a short vibration. */
  function wireSosHold(btn) {
    if (!btn) return;
    let timer = null;
    const cancel = () => { if (timer) { clearTimeout(timer); timer = null; } btn.classList.remove('holding'); };
    btn.addEventListener('pointerdown', (ev) => {
      ev.preventDefault();
      cancel();
      btn.classList.add('holding');
      timer = setTimeout(async () => {
        timer = null;
        btn.classList.remove('holding');
        if (navigator.vibrate) navigator.vibrate(60);
        try {
          if (state.here) await api('PUT', ROUTES.location, { lat: state.here.lat, lon: state.here.lon }).catch(() => {});
          const res = await api('POST', ROUTES.sos, {});
          state.circle.sos = unwrap(res, 'sos');
          btn.dataset.sent = 'true';
          renderSosState();
          refreshCircle();
        } catch (e) {
          // Nobody to alert, or the node is down: now it must be said.
          openSos();
        }
      }, SOS_HOLD_MS);
    });
    for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) btn.addEventListener(ev, cancel);
    btn.addEventListener('contextmenu', (ev) => ev.preventDefault());
  }

  function renderSosCountdown() {
    $('#sos-count').textContent = String(state.sosLeft);
    $('#sos-text').textContent = t('sos.countdown', { n: state.sosLeft });
  }

  function stopSosTimer() {
    if (state.sosTimer) { clearInterval(state.sosTimer); state.sosTimer = null; }
  }

  function abortSos() {
    stopSosTimer();
    $('#sos-dialog').close();
    announce(t('sos.aborted'));
    $('#sos-open').focus();
  }

  async function sendSos() {
    stopSosTimer();
    show($('#sos-countdown-wrap'), false);
    const box = $('#sos-state');
    box.replaceChildren(el('p', { class: 'sos-text', text: t('sos.sending') }));
    show(box, true);
    show($('#sos-close'), true);
    try {
      // The node sends its own location with the SOS: make it the latest.
      if (state.here) {
        await api('PUT', ROUTES.location, { lat: state.here.lat, lon: state.here.lon }).catch(() => {});
        state.nodeAt = { lat: state.here.lat, lon: state.here.lon };
      }
      const res = await api('POST', ROUTES.sos, {});
      state.circle.sos = unwrap(res, 'sos');
      renderSosState();
      refreshCircle();
    } catch (e) {
      box.replaceChildren(
        el('p', { class: 'sos-text', text: isMissingRoute(e) ? t('sos.unavailable') : e.code === 'no_contacts' ? t('sos.no_contacts') : errorText(e) }));
    }
    $('#sos-close').focus();
  }

  function renderSosState() {
    const s = state.circle.sos;
    const box = $('#sos-state');
    const btn = $('#sos-open');
    btn.classList.toggle('active', !!sosActive());
    if (!s || box.hidden) return;
    if (s.state !== 'active') {
      box.replaceChildren(el('p', { class: 'sos-text', text: t('sos.cancelled') }));
      return;
    }
    const recipients = s.recipients || [];
    const seen = recipients.filter((r) => r.acked_at);
    box.replaceChildren(
      el('p', { class: 'sos-text', id: 'sos-sent', text: t('sos.sent', { n: recipients.length }) }),
      seen.length
        ? el('p', { class: 'sos-acked', role: 'status', text: t('sos.acked_by', { names: seen.map((r) => r.name).join(', ') }) })
        : el('p', { class: 'meta', text: t('sos.waiting', { sends: s.sends || 1 }) }),
      el('ul', { class: 'recipients' }, recipients.map((r) => el('li', {},
        el('span', { text: r.name }), ' — ', el('span', { class: r.acked_at ? 'ok-text' : 'faint', text: r.acked_at ? t('inbox.seen') + ' ' + fmtTime(r.acked_at) : t('sos.not_acked') })))),
      codeField('sos-code'),
      el('button', { type: 'button', id: 'sos-cancel', class: 'btn ok', onclick: cancelSos, text: t('sos.cancel') }));
  }

  async function cancelSos() {
    try {
      const res = await api('POST', ROUTES.sosCancel, codeBody('sos-code'));
      if (res) state.circle.sos = unwrap(res, 'sos');
      else if (state.circle.sos) state.circle.sos.state = 'cancelled';
      renderSosState();
      announce(t('sos.cancelled'));
    } catch (e) {
      $('#sos-state').append(el('p', { class: 'error', text: errorText(e) }));
    }
    refreshCircle();
  }

  // ---------------------------------------------------------------------
  // Directory: safe places, mediators, emergency numbers
  // ---------------------------------------------------------------------

  function renderEmergency() {
    const list = $('#emergency-list');
    list.replaceChildren();
    for (const e of EMERGENCY) {
      list.append(el('li', { class: 'number' },
        el('a', { class: 'btn call', href: (e.sms ? 'sms:' : 'tel:') + e.n, 'aria-label': (e.sms ? t('help.sms') : t('help.call')) + ' ' + e.n + ' — ' + t(e.key) },
          el('span', { class: 'num', text: e.n })),
        el('span', { class: 'what', text: t(e.key) })));
    }
  }

  /** A place as the app uses it, whatever the exact shape the node sends. */
  function normalizePlace(p) {
    const loc = p.location || p;
    const lat = Number(loc.lat ?? (Array.isArray(p.center) ? p.center[0] : NaN));
    const lon = Number(loc.lon ?? (Array.isArray(p.center) ? p.center[1] : NaN));
    const place = {
      id: String(p.id ?? ''), name: String(p.name ?? ''), kind: p.kind || 'other', lat, lon,
      opening_hours: p.opening_hours || p.hours || '', contact: p.contact || p.phone || '',
      freshness: typeof p.freshness === 'string' ? { status: p.freshness } : (p.freshness || null),
      open_now: p.open_now, flags: p.flags,
    };
    place.distance_m = Number.isFinite(p.distance_m) ? p.distance_m
      : state.here && Number.isFinite(lat) ? distanceM(state.here, { lat, lon }) : NaN;
    return place;
  }

  async function refreshPlaces() {
    const d = state.directory;
    if (!state.here) { renderPlaces(); return; }
    const q = new URLSearchParams({ lat: state.here.lat.toFixed(6), lon: state.here.lon.toFixed(6) });
    try {
      const res = await api('GET', ROUTES.safePlaces + '?' + q);
      const raw = Array.isArray(res) ? res : (res && (res.places || res.safe_places)) || [];
      d.places = raw.map(normalizePlace).filter((p) => Number.isFinite(p.lat) && p.id)
        .sort((a, b) => a.distance_m - b.distance_m);
      // `directory: null`: the node has no (valid) directory of its city yet.
      d.available = !(res && !Array.isArray(res) && res.directory === null);
      d.error = null;
    } catch (e) {
      d.available = isMissingRoute(e) ? false : d.available;
      d.error = isMissingRoute(e) ? null : e;
      d.places = [];
    }
    try {
      const res = await api('GET', ROUTES.directory);
      const dir = res && 'directory' in res ? res.directory : res;
      d.city = (dir && dir.city) || '';
      d.mediators = (dir && dir.mediators) || [];
      if (d.available === null) d.available = !!dir;
    } catch (e) {
      d.mediators = [];
      if (isMissingRoute(e) && d.available !== true) d.available = false;
    }
    renderPlaces();
    renderMap();
    renderDestKinds();
  }

  function hoursLine(spec) {
    if (!spec) return el('span', { class: 'meta', text: t('help.hours_unknown') });
    const h = fmtHours(spec, new Date());
    return el('span', { class: 'meta hours' },
      h.open === null ? null : el('strong', { class: h.open ? 'ok-text open-now' : 'faint closed-now', text: t(h.open ? 'hours.open_now' : 'hours.closed_now') + ' · ' }),
      t('help.hours', { hours: h.text }));
  }

  function renderPlaces() {
    const d = state.directory;
    const stateLine = $('#places-state');
    const list = $('#places-list');
    list.replaceChildren();
    let msg = '';
    if (d.available === false) msg = t('help.no_directory');
    else if (!state.here) msg = t('help.need_location');
    else if (d.error) msg = errorText(d.error);
    else if (d.available === null) msg = t('help.loading');
    else if (!d.places.length) msg = t('help.no_places');
    stateLine.textContent = msg;
    show(stateLine, !!msg);
    for (const p of d.places.slice(0, 30)) {
      const f = p.freshness;
      const fText = !f ? '' : f.status === 'fresh' ? t('help.fresh', { date: fmtDate(f.until) })
        : f.status === 'stale' ? t('help.stale', { date: fmtDate(f.until) }) : t('help.expired');
      list.append(el('li', { class: 'card place-card' + (f && f.status === 'stale' ? ' stale' : ''), 'data-place': p.id },
        el('div', { class: 'place-head' },
          el('strong', { text: p.name }),
          el('span', { class: 'dist', text: fmtDist(p.distance_m) })),
        el('span', { class: 'meta', text: t('place.' + p.kind) }),
        hoursLine(p.opening_hours),
        fText ? el('span', { class: 'meta faint fresh-' + (f.status || ''), text: fText }) : null,
        el('div', { class: 'row' },
          p.contact && /^[+\d][\d ().-]{3,}$/.test(p.contact) ? el('a', { class: 'btn call small', href: 'tel:' + p.contact.replace(/[^+\d]/g, ''), text: t('help.call') + ' ' + p.contact }) : (p.contact ? el('span', { class: 'meta', text: p.contact }) : null),
          el('button', { type: 'button', class: 'btn small', onclick: () => goThere(p), text: t('help.go_there') }),
          el('button', { type: 'button', class: 'btn ghost small', onclick: () => openFlag(p), text: t('help.flag') }))));
    }

    const mState = $('#mediators-state');
    const mList = $('#mediators-list');
    mList.replaceChildren();
    const mMsg = d.available === false ? t('help.no_directory') : d.mediators.length ? '' : d.available ? t('help.no_mediators') : t('help.waiting_directory');
    mState.textContent = mMsg;
    show(mState, !!mMsg);
    for (const m of d.mediators) {
      mList.append(el('li', { class: 'card' },
        el('strong', { text: m.name }),
        el('span', { class: 'meta', text: [m.role, m.hours, m.area ? '' : t('help.area_whole')].filter(Boolean).join(' · ') }),
        m.phone ? el('a', { class: 'btn call small', href: 'tel:' + String(m.phone).replace(/[^+\d]/g, ''), text: t('help.call') + ' ' + m.phone }) : null));
    }
  }

  function goThere(place) {
    state.journeyDest = { lat: place.lat, lon: place.lon };
    showView('journey', true);
    const sel = $('#journey-dest-kind');
    sel.value = 'place:' + place.id;
    renderDestKinds();
  }

  function openFlag(place) {
    state.flagging = place;
    $('#flag-place').textContent = place.name;
    showError($('#flag-error'), null);
    $('#flag-dialog').showModal();
  }

  async function sendFlag(ev) {
    ev.preventDefault();
    const place = state.flagging;
    const reason = (new FormData($('#flag-form'))).get('reason');
    if (!place) return;
    try {
      const res = await api('POST', ROUTES.flag(place.id), { reason });
      $('#flag-dialog').close();
      const msg = res && res.status === 'queued' ? t('help.flag_queued') : t('help.flagged');
      announce(msg);
      const stateLine = $('#places-state');
      stateLine.textContent = msg;
      stateLine.hidden = false;
    } catch (e) {
      showError($('#flag-error'), isMissingRoute(e) ? t('help.no_directory') : e);
    }
  }

  // ---------------------------------------------------------------------
  // Views and navigation
  // ---------------------------------------------------------------------

  const VIEWS = ['map', 'report', 'journey', 'circle', 'help'];

  function showView(name, focus) {
    if (!VIEWS.includes(name)) name = 'map';
    state.view = name;
    for (const v of VIEWS) {
      const tab = $('#tab-' + v);
      const selected = v === name;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      show($('#view-' + v), selected);
    }
    if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
    if (name === 'report' && !state.category) renderCategories();
    if (name === 'journey') renderJourney();
    if (name === 'help') renderPlaces();
    if (name === 'circle') refreshCircle();
    if (focus) {
      const main = $('#main');
      main.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
  }

  function onTabKey(ev) {
    const i = VIEWS.indexOf(state.view);
    let next = null;
    if (ev.key === 'ArrowRight') next = VIEWS[(i + 1) % VIEWS.length];
    else if (ev.key === 'ArrowLeft') next = VIEWS[(i + VIEWS.length - 1) % VIEWS.length];
    else if (ev.key === 'Home') next = VIEWS[0];
    else if (ev.key === 'End') next = VIEWS[VIEWS.length - 1];
    if (!next) return;
    ev.preventDefault();
    showView(next);
    $('#tab-' + next).focus();
  }

  function renderAll() {
    renderWhere();
    renderConn();
    renderMap();
    renderReports();
    renderCategories();
    if (state.category) renderReportWhere();
    if (state.lastReport && !$('#report-done').hidden) renderReportDone();
    renderEmergency();
    renderPlaces();
    renderCircle();
    renderJourney();
    renderSosState();
    renderCodes();
    raiseNewAlerts();
    if (state.sosTimer) renderSosCountdown();
  }

  // Opening hours ----------------------------------------------------------

  const DAYS = ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'];

  /** The common part of OpenStreetMap's `opening_hours`: `24/7`, or rules
   *  `Mo-Fr 08:30-19:00,20:00-22:00; Sa 10:00-01:00; Su off` (a range may
   *  end after midnight). Returns [{days: Set(0..6), spans: [[from, to]]}]
   *  in minutes, or null for anything else (shown as given). */
  function parseHours(text) {
    const s = (text || '').trim();
    if (s === '24/7') return [{ days: new Set([0, 1, 2, 3, 4, 5, 6]), spans: [[0, 1440]] }];
    const rules = [];
    for (const part of s.split(';').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([A-Z][a-z](?:-[A-Z][a-z])?(?:,[A-Z][a-z](?:-[A-Z][a-z])?)*)\s+(off|\d\d:\d\d-\d\d:\d\d(?:,\d\d:\d\d-\d\d:\d\d)*)$/.exec(part);
      if (!m) return null;
      const days = new Set();
      for (const d of m[1].split(',')) {
        const [a, b] = d.split('-').map((x) => DAYS.indexOf(x));
        if (a < 0 || (b !== undefined && b < 0)) return null;
        for (let i = a; ; i = (i + 1) % 7) { days.add(i); if (b === undefined || i === b) break; }
      }
      const spans = m[2] === 'off' ? [] : m[2].split(',').map((r) => r.split('-').map((hm) => {
        const [h, mi] = hm.split(':').map(Number);
        return h * 60 + mi;
      }));
      rules.push({ days, spans });
    }
    return rules.length ? rules : null;
  }

  /** Whether `rules` say open at `date` (the phone's local time). */
  function openAt(rules, date) {
    const day = (date.getDay() + 6) % 7;
    const min = date.getHours() * 60 + date.getMinutes();
    const spansOf = (d) => {
      // The last rule naming a day wins, as in OpenStreetMap.
      let spans = [];
      for (const r of rules) if (r.days.has(d)) spans = r.spans;
      return spans;
    };
    for (const [a, b] of spansOf(day)) {
      if (b > a ? min >= a && min < b : min >= a) return true;
    }
    for (const [a, b] of spansOf((day + 6) % 7)) {
      if (b <= a && min < b) return true;
    }
    return false;
  }

  /** Opening hours in the person's language, and whether open now. */
  function fmtHours(text, now) {
    const rules = parseHours(text);
    if (!rules) return { text, open: null };
    const dayName = (i) => new Intl.DateTimeFormat(state.lang, { weekday: 'short' })
      .format(new Date(Date.UTC(2024, 0, 1 + i, 12)));
    const hm = (m) => (m === 1440 ? '24:00' : String(Math.floor(m / 60) % 24).padStart(2, '0') + ':' + String(m % 60).padStart(2, '0'));
    const parts = rules.map((r) => {
      const days = [...r.days].sort((a, b) => a - b);
      const daysText = days.length === 7 ? t('hours.every_day')
        : days.length > 2 && days[days.length - 1] - days[0] === days.length - 1
          ? dayName(days[0]) + '–' + dayName(days[days.length - 1])
          : days.map(dayName).join(', ');
      const spans = r.spans.length ? r.spans.map(([a, b]) => hm(a) + '–' + hm(b)).join(', ') : t('hours.closed');
      return daysText + ' ' + spans;
    });
    return { text: parts.join(' · '), open: openAt(rules, now) };
  }

  // ---------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------

  function wire() {
    for (const v of VIEWS) {
      const tab = $('#tab-' + v);
      tab.addEventListener('click', () => showView(v, true));
      tab.addEventListener('keydown', onTabKey);
    }
    window.addEventListener('hashchange', () => showView(location.hash.slice(1)));
    $('#lang').addEventListener('click', () => {
      state.lang = state.lang === 'fr' ? 'en' : 'fr';
      try { localStorage.setItem('ronde.lang', state.lang); } catch (_) { /* ignore */ }
      applyI18n();
    });
    $('#where-change').addEventListener('click', openWhereDialog);
    $('#where-gps').addEventListener('click', whereUseGps);
    $('#where-form').addEventListener('submit', whereSet);
    $('#where-cancel').addEventListener('click', () => $('#where-dialog').close());
    $('#radius').addEventListener('change', (e) => {
      state.radius = parseInt(e.target.value, 10) || 1000;
      state.lens = null;
      refreshReports();
    });
    setupMapGestures();
    $('#map-report').addEventListener('click', () => showView('report', true));
    $('#cell-filter-clear').addEventListener('click', () => { state.cellFilter = null; renderMap(); renderReports(); });
    $('#report-here').addEventListener('click', reportHere);
    $('#report-back').addEventListener('click', () => { resetReport(); $('#category-grid button').focus(); });
    $('#report-else-form').addEventListener('submit', reportElsewhere);
    $('#journey-form').addEventListener('submit', startJourney);
    $('#journey-dest-kind').addEventListener('change', renderDestKinds);
    $('#journey-map').addEventListener('click', journeyMapPick);
    $('#journey-map').addEventListener('keydown', journeyMapKey);
    $('#invite-form').addEventListener('submit', createInvite);
    $('#accept-form').addEventListener('submit', acceptInvite);
    $('#codes-form').addEventListener('submit', saveCodes);
    $('#sos-open').addEventListener('click', () => { if (!state.sosHeld) openSos(); state.sosHeld = false; });
    wireSosHold($('#sos-hold'));
    $('#sos-abort').addEventListener('click', abortSos);
    $('#sos-now').addEventListener('click', sendSos);
    $('#sos-close').addEventListener('click', () => $('#sos-dialog').close());
    // Escape during the countdown cancels the SOS, like the big button.
    $('#sos-dialog').addEventListener('cancel', (e) => {
      if (state.sosTimer) { e.preventDefault(); abortSos(); }
    });
    $('#flag-form').addEventListener('submit', sendFlag);
    $('#flag-cancel').addEventListener('click', () => $('#flag-dialog').close());
    const name = savedName();
    $('#invite-name').value = name;
    $('#accept-name').value = name;
  }

  function start() {
    state.lang = pickLanguage();
    restoreHere();
    wire();
    applyI18n();
    showView(location.hash.slice(1) || 'map');
    if (state.here) {
      // Restored from this session: tell the node again and read around it.
      const h = state.here;
      state.here = null;
      setHere(h);
    } else {
      refreshReports();
    }
    watchGps();
    refreshStatus();
    connectEvents();
    refreshCircle();
    refreshPlaces();
    setupBasemap();
    setInterval(refreshStatus, STATUS_EVERY_MS);
    setInterval(refreshReports, REPORTS_EVERY_MS);
    setInterval(() => { if (state.circle.available) refreshCircle(); }, CIRCLE_EVERY_MS);
    setInterval(() => {
      // Ages move on and reports expire even without news.
      renderReports();
      renderMap();
    }, TICK_MS);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) { refreshReports(); refreshStatus(); refreshCircle(); }
    });
    if ('serviceWorker' in navigator && window.isSecureContext) {
      navigator.serviceWorker.register('/app/sw.js', { scope: '/' }).catch(() => { /* the app works without */ });
    }
    document.documentElement.dataset.ready = 'true';
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

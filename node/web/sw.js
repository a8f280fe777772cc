// Ronde's service worker: keeps the app's shell for offline use, and nothing
// else. It never caches what the node's API answers (/v1/...): reports,
// positions, contacts and alerts are always read live from the node.
'use strict';

const VERSION = '__RONDE_SHELL_VERSION__';
const CACHE = 'ronde-shell-' + VERSION;
const SHELL = [
  '/',
  '/app/app.js',
  '/app/i18n.js',
  '/app/qrcode.js',
  '/app/app.css',
  '/app/manifest.webmanifest',
  '/app/icon.svg',
  '/app/icon-maskable.svg',
  '/app/basemap.js',
  '/app/vendor/maplibre-gl-csp.js',
  '/app/vendor/maplibre-gl-csp-worker.js',
  '/app/vendor/maplibre-gl.css',
  '/app/vendor/pmtiles.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((p) => new Request(p, { cache: 'no-cache' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((k) => k.startsWith('ronde-shell-') && k !== CACHE).map((k) => caches.delete(k)),
      ))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.pathname === '/' || url.pathname === '/app/' || SHELL.includes(url.pathname);
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  // The API and the login link: straight to the network, never stored.
  if (url.pathname.startsWith('/v1/') || url.pathname === '/login') return;
  if (req.mode === 'navigate' || isShell(url)) {
    const key = req.mode === 'navigate' ? '/' : url.pathname;
    // Network first (the node is on this device, so the network is fast
    // whenever the node runs); the cached shell when the node is down.
    event.respondWith(
      fetch(req).then((resp) => {
        if (resp.ok && isShell(url)) {
          const copy = resp.clone();
          caches.open(CACHE).then((c) => c.put(key, copy)).catch(() => {});
        }
        return resp;
      }).catch(() => caches.match(key).then((hit) => hit || Response.error())),
    );
  }
});

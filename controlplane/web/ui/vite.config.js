import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The UI is served by the control plane under /ui/ from ../dist (embedded with go:embed).
// Asset names carry a content hash, so the control plane can cache them for a year.
export default defineConfig({
  base: '/ui/',
  plugins: [svelte()],
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline module preload polyfill: the page must run under script-src 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev`: hot reload against a control plane started with `make run`.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});

// Package web is the control plane's web UI: the Svelte application built into dist/ (committed,
// so `go build` and `make run` need no node) and embedded in the binary, served under /ui/.
//
// The handler serves the built files with a strict Content-Security-Policy (scripts and styles
// only from our own origin, no inline script or style attribute, no framing), hashed assets
// (assets/…) cached for a year as immutable, and index.html never cached, so a new build reaches
// browsers at once. Any other path under /ui/ that is not a file gets index.html: the application
// routes itself (/ui/domains/7); nothing outside /ui/ falls back. Sources, the generated API
// client and how the build is checked: ui/README.md and docs/UI.md.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Prefix is where the UI is served.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every UI response. connect-src 'self' covers the API and
// its event stream; style-src without 'unsafe-inline' means no style="…" attribute may appear in
// the markup (Svelte's style: directives set properties through the CSSOM, which CSP allows).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// Files returns the built UI (the contents of dist/).
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded at build time; a missing directory does not compile
	}
	return sub
}

// Handler serves the UI mounted at Prefix.
func Handler() http.Handler { return handler{files: Files()} }

type handler struct{ files fs.FS }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel != "" && rel != "index.html" {
		if b, err := fs.ReadFile(h.files, rel); err == nil {
			if rel == "assets" || strings.HasPrefix(rel, "assets/") {
				// Vite names every asset by a hash of its content.
				hd.Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				hd.Set("Cache-Control", "no-cache")
			}
			http.ServeContent(w, r, rel, time.Time{}, bytes.NewReader(b))
			return
		}
		if rel == "assets" || strings.HasPrefix(rel, "assets/") {
			// A missing asset is a 404, not the application: a stale page must not load HTML as
			// script. Anything else is a route of the application (/ui/domains/www.x.com too).
			hd.Set("Cache-Control", "no-store")
			http.NotFound(w, r)
			return
		}
	}
	b, err := fs.ReadFile(h.files, "index.html")
	if err != nil {
		http.Error(w, "the web UI is not built (run make ui)", http.StatusNotFound)
		return
	}
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", "text/html; charset=utf-8")
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
}

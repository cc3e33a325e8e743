package health

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	var ready error = errors.New("not connected to the control plane")
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sajet_agent_connected", Help: "h"}, func() float64 { return 0 }))
	srv := httptest.NewServer(Handler(Checks{
		Live:     func() error { return nil },
		Ready:    func() error { return ready },
		Status:   func() any { return map[string]any{"status": "fail"} },
		Registry: reg,
	}))
	defer srv.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/livez", "ok", 200},
		{"/healthz", "ok", 200},
		{"/readyz", "fail: not connected to the control plane", 503},
		{"/status", `"status": "fail"`, 200},
		{"/metrics", "sajet_agent_connected 0", 200},
	} {
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	ready = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d once ready", code)
	}
	res, err := http.Post(srv.URL+"/status", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status = %d, want 405", res.StatusCode)
	}
}

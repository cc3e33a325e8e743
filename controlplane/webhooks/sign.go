// Package webhooks delivers domain events to customers' HTTP endpoints as Standard Webhooks
// (docs/AUTOMATION.md): each request carries webhook-id, webhook-timestamp and webhook-signature
// headers, the signature an HMAC-SHA256 of "id.timestamp.body" under the endpoint's secret, in a
// space-separated list so that a rotated secret and its predecessor can both sign for a while.
// Requests go only to public addresses, checked when an endpoint is saved and again at dial time
// (Guard), never through a proxy, never following redirects, with a bounded read of the answer.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix marks a signing secret: "whsec_" and base64 of 24–64 random bytes (the spec).
const SecretPrefix = "whsec_"

// NewSecret returns a fresh signing secret (32 random bytes).
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret returns the key bytes of a "whsec_…" secret.
func ParseSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New("a webhook secret starts with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("webhook secret: %d bytes, want 24 to 64", len(key))
	}
	return key, nil
}

// Sign returns one "v1,<base64>" signature of body sent as message id at ts.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SetHeaders puts the three Standard Webhooks headers on h, signing with every key (the current
// secret first, then any still in their rotation grace period).
func SetHeaders(h http.Header, keys [][]byte, id string, ts time.Time, body []byte) {
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		sigs = append(sigs, Sign(k, id, ts, body))
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", strings.Join(sigs, " "))
}

// Tolerance is how far a receiver accepts a timestamp from its own clock (the spec's libraries
// use 5 minutes): it bounds replays of a captured request.
const Tolerance = 5 * time.Minute

// Verify checks a received request as a receiver should: a known message id, a timestamp within
// Tolerance of now, and one of the signatures made with key, compared in constant time. Our tests
// use it as the receiver; customers have the spec's libraries.
func Verify(key []byte, h http.Header, body []byte, now time.Time) error {
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > Tolerance || ts.Sub(now) > Tolerance {
		return errors.New("webhook-timestamp outside the tolerance")
	}
	want := Sign(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(s), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("no matching signature")
}

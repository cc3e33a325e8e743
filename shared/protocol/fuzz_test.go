package protocol

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// watchReader hands out at most 7 bytes per Read, so ReadFrame sees partial
// reads, and records how much it was asked for.
type watchReader struct {
	data      []byte
	delivered int
	maxAsk    int
}

func (r *watchReader) Read(p []byte) (int, error) {
	r.maxAsk = max(r.maxAsk, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 7)], r.data)
	r.data = r.data[n:]
	r.delivered += n
	return n, nil
}

// FuzzReadFrame checks that ReadFrame never panics, never reads or sizes a
// buffer past limit+4 bytes, and that whatever it accepts re-encodes to an
// equivalent frame; for frames that are valid messages, the message round
// trips too.
func FuzzReadFrame(f *testing.F) {
	for _, m := range sampleMessages() {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), uint16(4096))
	}
	f.Add(oversizeHeader(), uint16(100))
	f.Add(frame(""), uint16(100))
	f.Add(frame(`{"type":"ack","body":{}}x`), uint16(100))
	f.Add(frame(`{"type":"hello","body":{"protocol_version":2,"x":1}}`), uint16(100))
	f.Add(frame(`{"type":"desired","body":{"version":1,"nonce":"n","rules":[{"hostname":"a","service":"b","origin_request":{}}]}}`), uint16(200))
	f.Add([]byte{0, 0, 0}, uint16(10))

	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		max := int(limit) + 1
		r := &watchReader{data: data}
		var env Envelope
		err := ReadFrame(r, max, &env)
		if r.delivered > max+4 {
			t.Fatalf("read %d bytes for a frame limited to %d", r.delivered, max)
		}
		if r.maxAsk > max+4 {
			t.Fatalf("asked for %d bytes at once with limit %d", r.maxAsk, max)
		}
		if err != nil {
			return
		}

		var buf bytes.Buffer
		if err := WriteFrame(&buf, env); err != nil {
			t.Fatalf("accepted envelope does not re-encode: %v", err)
		}
		var again Envelope
		if err := ReadFrame(&buf, 0, &again); err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if again.Type != env.Type {
			t.Fatalf("type changed: %q → %q", env.Type, again.Type)
		}
		if len(env.Body) > 0 {
			var b1, b2 any
			if err := json.Unmarshal(env.Body, &b1); err != nil {
				t.Fatalf("accepted body is not JSON: %v", err)
			}
			if err := json.Unmarshal(again.Body, &b2); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(b1, b2); diff != "" {
				t.Fatalf("body changed on re-encode:\n%s", diff)
			}
		}

		msg, err := DecodeMessage(env)
		if err != nil {
			return
		}
		buf.Reset()
		if err := WriteMessage(&buf, msg); err != nil {
			t.Fatalf("accepted %s does not re-encode: %v", env.Type, err)
		}
		msg2, err := ReadMessage(&buf, 0)
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", env.Type, err)
		}
		if diff := cmp.Diff(msg, msg2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s changed on round trip:\n%s", env.Type, diff)
		}
	})
}

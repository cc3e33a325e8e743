package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func frame(payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

func TestEveryMessageRoundTripsThroughAFrame(t *testing.T) {
	t.Parallel()
	for _, m := range sampleMessages() {
		t.Run(m.MessageType(), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := WriteMessage(&buf, m); err != nil {
				t.Fatalf("WriteMessage: %v", err)
			}
			got, err := ReadMessage(&buf, 0)
			if err != nil {
				t.Fatalf("ReadMessage: %v", err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("round trip mismatch (-sent +got):\n%s", diff)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes left after one frame", buf.Len())
			}
		})
	}
}

func TestRawStructRoundTripsThroughWriteFrameAndReadFrame(t *testing.T) {
	t.Parallel()
	want := Ack{Nonce: "x", Version: 1, OK: true}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, want); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(buf.Bytes()); int(got) != buf.Len()-4 {
		t.Fatalf("header says %d, payload is %d", got, buf.Len()-4)
	}
	var got Ack
	if err := ReadFrame(&buf, 0, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestReadFrameConsumesExactlyOneFrameAtATime(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	for i := range 3 {
		if err := WriteMessage(&buf, Ack{Nonce: "n", Version: int64(i), OK: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		m, err := ReadMessage(&buf, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if v := m.(Ack).Version; v != int64(i) {
			t.Errorf("frame %d: version %d", i, v)
		}
	}
	if _, err := ReadMessage(&buf, 0); err != io.EOF {
		t.Errorf("after last frame: got %v, want io.EOF", err)
	}
}

// blockingReader yields data, then blocks forever: a ReadFrame that tried to
// read the announced payload would hang instead of returning.
type blockingReader struct {
	data []byte
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		select {} // never returns
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func oversizeHeader() []byte { return binary.BigEndian.AppendUint32(nil, 1<<31) }

// Not parallel: it reads process-wide allocation statistics, and top-level
// tests without t.Parallel run before the parallel ones start.
func TestReadFrameRejectsOversizeLengthWithoutAllocatingIt(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		var env Envelope
		done <- ReadFrame(&blockingReader{data: oversizeHeader()}, 0, &env)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrame blocked reading past an oversize header")
	}
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) {
		t.Fatalf("got %v (%T), want *FrameTooLargeError", err, err)
	}
	if tooLarge.Size != 1<<31 || tooLarge.Max != MaxFrameSize {
		t.Errorf("got Size=%d Max=%d, want %d and %d", tooLarge.Size, tooLarge.Max, int64(1<<31), MaxFrameSize)
	}

	hdr := oversizeHeader()
	var r bytes.Reader
	var env Envelope
	read := func() {
		r.Reset(hdr)
		if err := ReadFrame(&r, 0, &env); err == nil {
			t.Fatal("oversize frame accepted")
		}
	}
	if allocs := testing.AllocsPerRun(100, read); allocs > 3 {
		t.Errorf("%.0f allocations per rejected frame, want <= 3 (header and error only)", allocs)
	}
	const runs = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		read()
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1024 {
		t.Errorf("%d bytes allocated per rejected 2 GiB frame, want <= 1 KiB", perRun)
	}
}

func TestReadFrameHonoursACallerLimit(t *testing.T) {
	t.Parallel()
	payload := `{"type":"ack","body":{}}`
	var env Envelope
	err := ReadFrame(bytes.NewReader(frame(payload)), len(payload)-1, &env)
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != int64(len(payload)) || tooLarge.Max != int64(len(payload)-1) {
		t.Fatalf("got %v, want *FrameTooLargeError{%d, %d}", err, len(payload), len(payload)-1)
	}
	if err := ReadFrame(bytes.NewReader(frame(payload)), len(payload), &env); err != nil {
		t.Fatalf("frame of exactly the limit rejected: %v", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input []byte
		want  error // matched with errors.Is
		text  string
	}{
		{name: "an empty stream is a clean EOF", input: nil, want: io.EOF},
		{name: "a zero length is an empty frame", input: frame(""), want: ErrEmptyFrame},
		{name: "a partial header is unexpected EOF", input: []byte{0, 0}, want: io.ErrUnexpectedEOF},
		{name: "a truncated payload is unexpected EOF", input: frame(`{"type":"ack","body":{}}`)[:10], want: io.ErrUnexpectedEOF},
		{name: "a header with no payload is unexpected EOF", input: frame(`{}`)[:4], want: io.ErrUnexpectedEOF},
		{name: "unknown envelope fields are rejected", input: frame(`{"type":"ack","body":{},"extra":1}`), text: `unknown field "extra"`},
		{name: "trailing garbage is rejected", input: frame(`{"type":"ack","body":{}}garbage`), want: ErrTrailingData},
		{name: "a second JSON value is rejected", input: frame(`{"type":"ack","body":{}}{}`), want: ErrTrailingData},
		{name: "a stray closing brace is rejected", input: frame(`{"type":"ack","body":{}}}`), want: ErrTrailingData},
		{name: "invalid JSON is rejected", input: frame(`{"type":`), text: "unexpected EOF"},
		{name: "a non-object is rejected", input: frame(`[1,2]`), text: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var env Envelope
			err := ReadFrame(bytes.NewReader(tt.input), 0, &env)
			if err == nil {
				t.Fatal("got nil error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("got %q, want it to contain %q", err, tt.text)
			}
		})
	}
}

func TestReadFrameAcceptsTrailingWhitespace(t *testing.T) {
	t.Parallel()
	var env Envelope
	if err := ReadFrame(bytes.NewReader(frame(`{"type":"ack","body":{}} `+"\n")), 0, &env); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownBodyFieldsAreRejected(t *testing.T) {
	t.Parallel()
	env := Envelope{Type: TypeAck, Body: json.RawMessage(`{"nonce":"n","version":1,"ok":true,"applied_version":1,"surprise":true}`)}
	if _, err := DecodeMessage(env); err == nil || !strings.Contains(err.Error(), `unknown field "surprise"`) {
		t.Fatalf("got %v, want unknown field error", err)
	}
	env.Body = json.RawMessage(`{"nonce":"n","version":1,"ok":true} x`)
	if _, err := DecodeMessage(env); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("got %v, want ErrTrailingData", err)
	}
}

type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func TestWriteFrameRejectsOversizeBeforeWriting(t *testing.T) {
	t.Parallel()
	w := &errWriter{}
	err := WriteFrame(w, strings.Repeat("x", MaxFrameSize))
	var tooLarge *FrameTooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != MaxFrameSize+2 || tooLarge.Max != MaxFrameSize {
		t.Fatalf("got %v, want *FrameTooLargeError{%d, %d}", err, MaxFrameSize+2, MaxFrameSize)
	}
	if w.n != 0 {
		t.Errorf("%d bytes written before rejecting", w.n)
	}
}

func TestWriteMessageRefusesInvalidMessages(t *testing.T) {
	t.Parallel()
	w := &errWriter{}
	if err := WriteMessage(w, Desired{Version: 1}); err == nil || !strings.Contains(err.Error(), "nonce: required") {
		t.Fatalf("got %v, want nonce required", err)
	}
	if w.n != 0 {
		t.Errorf("%d bytes written", w.n)
	}
}

// TestMaxFrameSizeFitsTenThousandRules sizes MaxFrameSize: the figure logged
// here is the one doc.go and MaxFrameSize's comment quote.
func TestMaxFrameSizeFitsTenThousandRules(t *testing.T) {
	t.Parallel()
	d := Desired{Version: 1 << 40, Nonce: NewNonce(), IssuedAt: testTime, Rules: realisticRules(10_000)}
	var buf bytes.Buffer
	if err := WriteMessage(&buf, d); err != nil {
		t.Fatalf("10,000 rules do not fit: %v", err)
	}
	size := buf.Len() - 4
	t.Logf("10,000 realistic rules: %d bytes (%.2f MiB), %.1f%% of MaxFrameSize", size, float64(size)/(1<<20), 100*float64(size)/MaxFrameSize)
	if size*2 > MaxFrameSize {
		t.Errorf("10,000 rules take %d bytes, less than 2x headroom under %d", size, MaxFrameSize)
	}
	got, err := ReadMessage(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.(Desired).Rules); n != 10_000 {
		t.Errorf("got %d rules back", n)
	}
}

// TestFrameLimitsFitTheLargestValidMessage checks the per-message limits the control plane reads
// with: the largest message of each kind that passes Validate, every string at its length limit
// and made of the character encoding/json escapes most ("<" becomes "\u003c", six bytes), fits.
func TestFrameLimitsFitTheLargestValidMessage(t *testing.T) {
	t.Parallel()
	worst := func(n int) string { return strings.Repeat("<", n) }
	hello := Hello{ProtocolVersion: ProtocolVersion, Agent: worst(MaxNameLen), Token: worst(MaxTokenLen),
		Tunnel: worst(MaxNameLen), Build: worst(MaxNameLen),
		Applied: AppliedState{Version: 1 << 62, SHA256: testSHA}}
	errMsg := Error{Code: worst(MaxStateLen), Message: worst(MaxErrorLen)}
	welcome := Welcome{ProtocolVersion: ProtocolVersion, SessionEpoch: 1 << 62, ServerTime: testTime}
	status := Status{SentAt: testTime, UptimeS: 1 << 62, Applied: AppliedState{Version: 1 << 62, SHA256: testSHA},
		AppliedAt: testTime, DriftCount: 1 << 62,
		LastApply: &ApplyResult{Version: 1 << 62, OK: false, Stage: StageRollback, Error: worst(MaxErrorLen), At: testTime},
		Unit: UnitState{ActiveState: worst(MaxStateLen), SubState: worst(MaxStateLen), NRestarts: 1 << 62,
			ReadyConnections: 1 << 30, LastRestart: testTime}}
	hosts := make([]string, MaxBaseHostnames)
	for i := range hosts {
		// Hostnames are never escaped (see MaxBaseFrameSize); the longest DNS name is 253 bytes.
		hosts[i] = fmt.Sprintf("%05d", i) + strings.Repeat("a", MaxHostnameLen-5)
	}
	base := Base{SHA256: testSHA, Hostnames: hosts}
	nack := Ack{Nonce: worst(MaxNonceLen), Version: 1 << 62, Stage: StageValidate, Error: worst(MaxErrorLen),
		SHA256: testSHA, DurationMS: 1 << 62, AppliedVersion: 1 << 62, Rejected: make([]Rejection, MaxRejections)}
	for i := range nack.Rejected {
		nack.Rejected[i] = Rejection{Hostname: worst(MaxHostnameLen), Reason: RejectCloudflared, Error: worst(MaxRejectionErrorLen)}
	}
	probe := ProbeResult{URL: worst(MaxURLLen), Error: worst(MaxErrorLen), DurationMS: 1 << 62,
		Hostname: worst(MaxHostnameLen), Failure: worst(MaxStateLen)}
	for _, tc := range []struct {
		msg   Message
		limit int
	}{
		{probe, MaxProbeResultFrameSize},
		{hello, MaxHelloFrameSize},
		{errMsg, MaxHandshakeReplySize},
		{welcome, MaxHandshakeReplySize},
		{status, MaxStatusFrameSize},
		{base, MaxBaseFrameSize},
		{nack, MaxAckFrameSize},
	} {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, tc.msg); err != nil {
			t.Fatalf("%s: %v", tc.msg.MessageType(), err)
		}
		size := buf.Len() - 4
		t.Logf("largest valid %s: %d bytes, limit %d", tc.msg.MessageType(), size, tc.limit)
		if size > tc.limit {
			t.Errorf("the largest valid %s takes %d bytes, over its limit of %d", tc.msg.MessageType(), size, tc.limit)
		}
		if _, err := ReadMessage(&buf, tc.limit); err != nil {
			t.Errorf("%s does not read back under its limit: %v", tc.msg.MessageType(), err)
		}
	}
}

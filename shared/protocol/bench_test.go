package protocol

import (
	"bytes"
	"testing"
)

// BenchmarkDesired10kRules measures one push of 10,000 rules: validate,
// encode and frame on the control plane, then read, decode and validate on
// the agent. It reports the frame size and the time per push.
func BenchmarkDesired10kRules(b *testing.B) {
	d := Desired{Version: 1 << 40, Nonce: NewNonce(), IssuedAt: testTime, Rules: realisticRules(10_000)}
	var buf bytes.Buffer
	if err := WriteMessage(&buf, d); err != nil {
		b.Fatal(err)
	}
	size := buf.Len()
	b.SetBytes(int64(size))
	b.ReportAllocs()

	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := WriteMessage(&buf, d); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		b.ReportMetric(float64(size), "frame_bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		frame := bytes.Clone(buf.Bytes())
		var r bytes.Reader
		for b.Loop() {
			r.Reset(frame)
			if _, err := ReadMessage(&r, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		b.ReportMetric(float64(size), "frame_bytes")
	})
	b.Run("roundtrip", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		var rt bytes.Buffer
		for b.Loop() {
			rt.Reset()
			if err := WriteMessage(&rt, d); err != nil {
				b.Fatal(err)
			}
			if _, err := ReadMessage(&rt, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		b.ReportMetric(float64(size), "frame_bytes")
	})
}

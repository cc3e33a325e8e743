package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize is the default hard limit on a frame's payload (the JSON after
// the 4-byte length). It is sized for the largest message we send, a desired
// set: 10,000 rules with long hostnames and a four-key originRequest encode to
// 2,926,616 bytes, 2.8 MiB (TestMaxFrameSizeFitsTenThousandRules measures it).
// 4 MiB would leave only 1.4x headroom, so the limit is 8 MiB (2.8x, about
// 28,000 such rules) while still bounding what a peer can make us buffer per
// stream to a size a small edge host can afford.
const MaxFrameSize = 8 << 20

// Per-message frame limits. MaxFrameSize is what the agent accepts from the
// control plane (a desired set); what the control plane accepts from a peer is
// much smaller, message by message, so a peer cannot make it buffer more than
// the largest valid message of the kind it expects. Each limit is the largest
// message that passes Validate, with every string at its length limit and
// escaped by encoding/json at its worst (6 bytes per byte, "\u003c"), rounded
// up; TestFrameLimitsFitTheLargestValidMessage checks them.
const (
	// MaxHelloFrameSize bounds a Hello, the only thing read from a peer that
	// has not authenticated: five names of 100 bytes, a 256-byte token and
	// two hashes, about 4.2 KiB at worst.
	MaxHelloFrameSize = 8 << 10
	// MaxHandshakeReplySize bounds the control plane's answer to a Hello: a
	// Welcome, or an Error whose message is at most MaxErrorLen bytes.
	MaxHandshakeReplySize = 32 << 10
	// MaxStatusFrameSize bounds a Status report (a few counters and states and
	// one error text of at most MaxErrorLen bytes: about 25 KiB at worst).
	MaxStatusFrameSize = 32 << 10
	// MaxBaseFrameSize bounds a Base report: MaxBaseHostnames hostnames of at
	// most MaxHostnameLen bytes, each quoted and comma-separated, plus the
	// envelope and hash (2.5 MiB). Hostnames are plain ASCII or UTF-8, which
	// encoding/json does not escape; a report of names full of characters it
	// must escape can exceed this and is refused.
	MaxBaseFrameSize = MaxBaseHostnames*(MaxHostnameLen+3) + 1<<10
	// MaxAckFrameSize bounds an Ack: its own error (MaxErrorLen) and up to MaxRejections
	// rejections, each a hostname, a reason and an error of at most MaxRejectionErrorLen bytes,
	// every byte escaped at worst (7.8 MiB; real NACKs take a few KiB). The control plane reads
	// one at a time per session, from an authenticated agent.
	MaxAckFrameSize = MaxRejections*((MaxHostnameLen+MaxRejectionErrorLen+MaxStateLen)*6+64) + MaxErrorLen*6 + 1<<10
	// MaxProbeResultFrameSize bounds a ProbeResult: a URL, a hostname, a failure code and an
	// error text at their limits, every byte escaped at worst (about 38 KiB). The control plane
	// reads one per probe stream it opened.
	MaxProbeResultFrameSize = (MaxURLLen+MaxHostnameLen+MaxStateLen+MaxErrorLen)*6 + 1<<10
)

// headerSize is the length prefix: a big-endian uint32.
const headerSize = 4

// FrameTooLargeError reports a frame whose payload exceeds the limit. The
// reader returns it before allocating anything for the payload; the writer
// returns it before writing any byte, so the stream stays usable.
type FrameTooLargeError struct {
	Size int64 // the payload length announced (read) or produced (write)
	Max  int64 // the limit in force
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("protocol: frame of %d bytes exceeds the limit of %d", e.Size, e.Max)
}

// ErrEmptyFrame is returned for a frame whose length prefix is 0: no valid
// message encodes to zero bytes, so it is a framing error, not a message.
var ErrEmptyFrame = errors.New("protocol: empty frame")

// ErrTrailingData is returned when a frame holds more than one JSON value.
var ErrTrailingData = errors.New("protocol: trailing data after JSON value in frame")

// WriteFrame marshals v to JSON and writes it as one frame: a 4-byte
// big-endian length followed by the JSON. A payload over MaxFrameSize is
// rejected with *FrameTooLargeError before anything is written. The header and
// payload go out in a single Write so a frame is never interleaved on a stream
// shared by accident.
func WriteFrame(w io.Writer, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("protocol: encoding frame: %w", err)
	}
	if len(payload) > MaxFrameSize {
		return &FrameTooLargeError{Size: int64(len(payload)), Max: MaxFrameSize}
	}
	buf := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[headerSize:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("protocol: writing frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame from r and decodes its JSON into v.
//
// Contract:
//   - max <= 0 means MaxFrameSize.
//   - A clean end of stream before the first header byte returns io.EOF
//     unwrapped, so a reader loop can tell a closed stream from a broken one;
//     a partial header or payload returns an error wrapping
//     io.ErrUnexpectedEOF.
//   - A length over max returns *FrameTooLargeError without reading further
//     and without allocating the announced size; a length of 0 returns
//     ErrEmptyFrame. In both cases the stream is desynchronised: close it.
//   - Exactly the announced bytes are consumed (io.ReadFull); nothing past the
//     frame is read, so r may be used for the next frame.
//   - Decoding is strict: unknown fields are errors, and anything but
//     whitespace after the JSON value returns ErrTrailingData.
func ReadFrame(r io.Reader, max int, v any) error {
	if max <= 0 {
		max = MaxFrameSize
	}
	var hdr [headerSize]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) && n == 0 {
			return io.EOF
		}
		return fmt.Errorf("protocol: reading frame header: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	// Compare in uint64 so a length near 1<<32 cannot overflow int on 32-bit
	// platforms.
	if uint64(size) > uint64(max) {
		return &FrameTooLargeError{Size: int64(size), Max: int64(max)}
	}
	if size == 0 {
		return ErrEmptyFrame
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("protocol: reading frame payload (%d bytes): %w", size, err)
	}
	if err := decodeStrict(payload, v); err != nil {
		return fmt.Errorf("protocol: decoding frame: %w", err)
	}
	return nil
}

// decodeStrict decodes exactly one JSON value from data into v, rejecting
// unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}

package protocol

import (
	"crypto/rand"
)

// Decision is what the agent does with a Desired, given the version it has
// applied.
type Decision int

const (
	// Apply: the Desired is newer than what is applied; run the apply
	// pipeline, then ACK or NACK.
	Apply Decision = iota + 1
	// AckDuplicate: the Desired has the applied version (a resend after
	// reconnect); ACK without applying and without restarting cloudflared.
	AckDuplicate
	// AckStale: the Desired is older than what is applied (reordered or
	// replayed by an old session); ACK without applying. Versions never go
	// backwards, so applying it would undo a newer config.
	AckStale
)

// String returns the decision name used in logs.
func (d Decision) String() string {
	switch d {
	case Apply:
		return "apply"
	case AckDuplicate:
		return "ack_duplicate"
	case AckStale:
		return "ack_stale"
	}
	return "unknown"
}

// Applies reports whether d runs the apply pipeline; false means acknowledge
// without applying.
func (d Decision) Applies() bool { return d == Apply }

// Classify decides how the agent handles d when version applied is in force
// (docs/ARCHITECTURE.md §4): newer → Apply; equal → AckDuplicate; older → AckStale. It
// ignores the nonce: nonces pair an Ack with its Desired, versions order
// configs. Coalescing (a newer Desired arriving mid-apply wins) is the
// caller's: it classifies against the applied version once the running apply
// finishes.
func Classify(applied int64, d Desired) Decision {
	switch {
	case d.Version > applied:
		return Apply
	case d.Version == applied:
		return AckDuplicate
	default:
		return AckStale
	}
}

// NewNonce returns 128 random bits as text (crypto/rand.Text). A nonce pairs
// one push with its ack; it only needs to be unguessable enough that a stale
// ack never matches a new push.
func NewNonce() string { return rand.Text() }

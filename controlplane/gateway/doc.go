// Package gateway is the control plane's side of the agent connection: it authenticates edge
// agents, learns which tunnels' desired ingress changed and pushes it to the agents connected to
// this replica.
//
// Change detection is level-triggered. Every domain change bumps its tunnel's config_version and
// sends the tunnel id on the sajet_tunnel channel at commit (package store). Each replica LISTENs
// on a dedicated connection; because NOTIFY is lost while a listener is disconnected, the
// listener also reports "everything may have changed" after every (re)connect and every
// ReconcileInterval, and the pusher then compares desired and acknowledged versions of every
// tunnel it serves. A lost notification therefore costs at most one interval.
//
// Authentication (protocol 3, see shared/protocol): the hello is read from the TLS connection
// before yamux starts, within Server.HelloTimeout, and only MaxHandshakes connections (at most
// MaxHandshakesPerAddress per address) may be in that phase. A token in the in-memory set of valid
// agent tokens is never refused by the bad-token limiter; a malformed one is refused without a
// database lookup; an unknown one is looked up only from an address the limiter has not blocked.
// The set is reloaded on every notification on sajet_agent (an agent enrolled, revoked or its
// token rotated), on every reconcile and every TokenReloadInterval, and a session whose token left
// it is ended with Error{unauthorized}: revoking an agent ends its session on every replica.
//
// After Welcome an agent's session is bounded too: MaxStreams streams of its own read at once and
// as many waiting (yamux resets the rest), one message per stream within ReportTimeout, frame
// limits per message kind, StatusBurst/StatusInterval for status reports, and warnings logged at
// most once per kind and 10 s per session.
package gateway

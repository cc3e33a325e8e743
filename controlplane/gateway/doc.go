// Package gateway is the control plane's side of the agent connection: it learns which tunnels'
// desired ingress changed and (next) pushes it to the agents connected to this replica.
//
// Change detection is level-triggered. Every domain change bumps its tunnel's config_version and
// sends the tunnel id on the sajet_tunnel channel at commit (package store). Each replica LISTENs
// on a dedicated connection; because NOTIFY is lost while a listener is disconnected, the
// listener also reports "everything may have changed" after every (re)connect and every
// ReconcileInterval, and the pusher then compares desired and acknowledged versions of every
// tunnel it serves. A lost notification therefore costs at most one interval.
package gateway

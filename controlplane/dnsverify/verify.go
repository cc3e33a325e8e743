package dnsverify

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/issuers"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Defaults for the zero Config fields.
const (
	DefaultQueryTimeout = 2 * time.Second
	DefaultCheckTimeout = 5 * time.Second
	DefaultMaxHops      = 8
	DefaultMaxInFlight  = 256
	DefaultResolvConf   = "/etc/resolv.conf"
)

// defaultCAAIssuers returns the CAA issuer domains of the certificate authorities Cloudflare uses
// for custom hostnames, from the one list of them (controlplane/cloudflare/issuers): a CAA set
// that allows none of them blocks the certificate of the customer's hostname.
func defaultCAAIssuers() []string { return issuers.CAADomains() }

// Config configures a Verifier. Zero values mean the defaults above.
type Config struct {
	// Resolvers are "host:port" (a bare IP gets port 53). Empty: the nameservers of ResolvConf.
	Resolvers []string
	// QueryTimeout bounds each attempt of each query; default 2s.
	QueryTimeout time.Duration
	// CheckTimeout bounds a whole Verify call, all resolvers included; default 5s.
	CheckTimeout time.Duration
	// MaxHops is how many CNAMEs a chain may have; default 8.
	MaxHops int
	// ResolvConf is the file read when Resolvers is empty; default /etc/resolv.conf.
	ResolvConf string
	// MaxInFlight bounds the queries one Verifier has outstanding at once, across all Verify
	// calls; default 256.
	MaxInFlight int
	// CAAIssuers are the issuer domains a customer's CAA records must allow (any one of them);
	// default letsencrypt.org, pki.goog, ssl.com (Cloudflare's CAs for custom hostnames).
	// DisableCAA skips the CAA lookups (one or two queries per resolver per check).
	CAAIssuers []string
	DisableCAA bool
}

// Verifier checks customers' DNS records against real resolvers. It is safe for concurrent use;
// one Verifier should serve the whole process so MaxInFlight bounds all of its traffic.
type Verifier struct {
	resolvers    []string
	queryTimeout time.Duration
	checkTimeout time.Duration
	maxHops      int
	caaIssuers   []string
	udp, tcp     *dns.Client
	slots        chan struct{}
}

// New returns a Verifier for cfg. It fails when a resolver address is malformed, when no resolver
// is configured and the resolv.conf file has none, or when a limit is negative.
func New(cfg Config) (*Verifier, error) {
	if cfg.QueryTimeout < 0 || cfg.CheckTimeout < 0 || cfg.MaxHops < 0 || cfg.MaxInFlight < 0 {
		return nil, errors.New("dnsverify: timeouts and limits must not be negative")
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.MaxHops == 0 {
		cfg.MaxHops = DefaultMaxHops
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	resolvers, err := resolverAddrs(cfg.Resolvers, cfg.ResolvConf)
	if err != nil {
		return nil, fmt.Errorf("dnsverify: %w", err)
	}
	v := &Verifier{
		resolvers:    resolvers,
		queryTimeout: cfg.QueryTimeout,
		checkTimeout: cfg.CheckTimeout,
		maxHops:      cfg.MaxHops,
		// Client.Timeout caps dial+write+read of one exchange; the context deadline can only
		// shorten it. Without it miekg/dns would apply its own 2s defaults.
		udp:   &dns.Client{Net: "udp", UDPSize: ednsBufferSize, Timeout: cfg.QueryTimeout},
		tcp:   &dns.Client{Net: "tcp", Timeout: cfg.QueryTimeout},
		slots: make(chan struct{}, cfg.MaxInFlight),
	}
	if !cfg.DisableCAA {
		issuers := cfg.CAAIssuers
		if len(issuers) == 0 {
			issuers = defaultCAAIssuers()
		}
		for _, i := range issuers {
			v.caaIssuers = append(v.caaIssuers, strings.ToLower(strings.TrimSpace(i)))
		}
	}
	return v, nil
}

// Resolvers returns the resolver addresses the Verifier queries, in order.
func (v *Verifier) Resolvers() []string { return append([]string(nil), v.resolvers...) }

// Request is one domain to check. Names may carry a trailing dot and any case.
type Request struct {
	Hostname     string // the customer's hostname, ASCII (punycode), e.g. "www.impulse-max.com"
	Expected     string // the platform name the CNAME must reach, e.g. "impulse-max.sajet.us"
	TunnelTarget string // optional "<uuid>.cfargotunnel.com", also accepted as a CNAME target
	TXTName      string // "_jeturing-verify.impulse-max.com"; empty: no TXT lookup
	TXTToken     string // the value the TXT record must hold
	RequireTXT   bool   // the plan requires ownership proof
	Apex         bool   // Hostname is the registrable domain: a CNAME is only possible by flattening
}

// Verification methods reported in Result.Method.
const (
	MethodCNAME       = "cname"        // the chain reaches Expected
	MethodCNAMETunnel = "cname_tunnel" // the chain reaches TunnelTarget without passing Expected
	MethodFlattened   = "flattened"    // apex: same addresses as Expected, plus the TXT token
)

// Result is the outcome of one Verify call. Message, Instructions and Conflicts are for humans
// (Spanish); Reason is for programs.
type Result struct {
	Verified      bool   `json:"verified"`
	Method        string `json:"method,omitempty"`         // MethodCNAME, MethodCNAMETunnel, MethodFlattened, or "" when not verified
	Reason        string `json:"reason"`                   // Reason* constant: why (not) verified
	CNAMEDetected string `json:"cname_detected,omitempty"` // the accepted target the chain reached, even if TXT is still missing
	TXTFound      bool   `json:"txt_found"`                // every resolver that answered the TXT query holds the token
	Expected      string `json:"expected"`
	// Found is what the hostname resolves to instead of Expected: a CNAME target, "A 1.2.3.4,
	// AAAA 2001:db8::1", a TXT value, "SERVFAIL", "timeout". Nil when nothing was found at all
	// (NXDOMAIN or no data), matching the frontend contract's `"found": null`.
	Found        *string          `json:"found"`
	Message      i18n.Text        `json:"message"`
	Instructions i18n.Text        `json:"instructions"`
	Conflicts    []i18n.Text      `json:"conflicts,omitempty"` // records that are in the way, one sentence each
	Resolvers    []ResolverResult `json:"resolvers"`
	CheckedAt    time.Time        `json:"checked_at"`
	// NegativeTTL is the longest any resolver may keep answering that the record the customer must
	// publish does not exist (seconds; RFC 2308): a check before it passes learns nothing new.
	NegativeTTL int `json:"negative_ttl,omitempty"`
}

// ResolverResult is one resolver's view, shown so users can see propagation in progress.
type ResolverResult struct {
	Resolver string   `json:"resolver"`
	Rcode    string   `json:"rcode"`           // of the hostname's A query ("NOERROR", "NXDOMAIN", ...); "" without an answer
	Chain    []string `json:"chain"`           // CNAME targets followed, in order
	A        []string `json:"a"`               // the addresses the hostname resolves to
	AAAA     []string `json:"aaaa"`            //
	TXT      []string `json:"txt"`             // values at TXTName, chunks joined
	Error    string   `json:"error,omitempty"` // "timeout" or a transport error; "TXT: timeout" when a secondary query failed
	Verified bool     `json:"verified"`
	Method   string   `json:"method,omitempty"`
	Reason   string   `json:"reason"`
	Found    string   `json:"found,omitempty"` // like Result.Found; "" for nil
	TXTFound bool     `json:"txt_found"`
	// NegativeTTL: the record the customer must publish is missing and this resolver may keep
	// saying so for this many seconds (the SOA in its negative answer).
	NegativeTTL int `json:"negative_ttl,omitempty"`
}

// Verify checks req against every resolver concurrently and explains the outcome. It never
// returns an error: resolver failures are part of the answer (per resolver, and in Message and
// Found when no resolver could answer). It returns within CheckTimeout, or earlier if ctx ends.
//
// Decision rule: verified when at least one resolver answered and every resolver that answered
// verifies. A resolver that did not answer (timeout, transport error) is listed but does not
// block: one unreachable resolver out of three must not hold a correct domain hostage, and the
// ones that answered are the evidence. A resolver that answered and disagrees does block, since
// that is what propagation in progress looks like and the customer's visitors may see that view.
func (v *Verifier) Verify(ctx context.Context, req Request) Result {
	checkedAt := time.Now().UTC()
	req = normalizeRequest(req)
	if req.Hostname == "" || req.Expected == "" {
		return invalidRequest(req, checkedAt)
	}

	ctx, cancel := context.WithTimeout(ctx, v.checkTimeout)
	defer cancel()

	outs := make([]outcome, len(v.resolvers))
	var wg sync.WaitGroup
	for i, r := range v.resolvers {
		wg.Go(func() { outs[i] = decide(req, v.observe(ctx, r, req)) })
	}
	wg.Wait()
	return explain(req, outs, v.maxHops, checkedAt)
}

// observation is the raw data one resolver gave for one request. Each field is written by one
// goroutine of observe.
type observation struct {
	resolver string

	first    *dns.Msg // answer to "Hostname A"
	chain    chainWalk
	chainErr *queryError

	aaaa          []netip.Addr // addresses at the end of the chain
	aaaaBeside    []dns.RR     // AAAA the hostname holds next to its CNAME
	aaaaErr       *queryError
	txt           []string
	txtNegTTL     time.Duration // the TXT answer was negative and may be cached this long
	txtQueried    bool
	txtErr        *queryError
	expA, expAAAA []netip.Addr // Expected's addresses (apex only)
	expErr        *queryError
	caa           caaFinding
}

// observe runs the queries of one request against one resolver. They are independent, so they
// run concurrently and a check costs one round trip (plus chain hops the resolver did not chase)
// instead of their sum.
func (v *Verifier) observe(ctx context.Context, resolver string, req Request) *observation {
	ob := &observation{resolver: resolver}
	var wg sync.WaitGroup
	wg.Go(func() {
		ob.first, ob.chain, ob.chainErr = v.resolveChain(ctx, resolver, req)
	})
	wg.Go(func() {
		addrs, resp, err := v.lookupAddrs(ctx, resolver, req.Hostname, dns.TypeAAAA)
		if err != nil {
			ob.aaaaErr = err
			return
		}
		ob.aaaa = addrs
		if _, hasCNAME := cnameOf(resp, req.Hostname); hasCNAME {
			ob.aaaaBeside = recordsAt(resp, req.Hostname, dns.TypeAAAA)
			ob.aaaa = addrsOf(resp, dns.TypeAAAA, req.Hostname)
		}
	})
	if req.TXTName != "" {
		ob.txtQueried = true
		wg.Go(func() {
			resp, err := v.query(ctx, resolver, req.TXTName, dns.TypeTXT)
			if err != nil {
				ob.txtErr = asQueryError(err)
				return
			}
			ob.txt = txtValues(resp)
			ob.txtNegTTL = negativeTTL(resp, dns.TypeTXT)
		})
	}
	var errA, errAAAA *queryError
	if req.Apex {
		wg.Go(func() { ob.expA, _, errA = v.lookupAddrs(ctx, resolver, req.Expected, dns.TypeA) })
		wg.Go(func() { ob.expAAAA, _, errAAAA = v.lookupAddrs(ctx, resolver, req.Expected, dns.TypeAAAA) })
	}
	if len(v.caaIssuers) > 0 {
		wg.Go(func() { ob.caa = v.checkCAA(ctx, resolver, req.Hostname) })
	}
	wg.Wait()
	if errA != nil {
		ob.expErr = errA
	} else if errAAAA != nil {
		ob.expErr = errAAAA
	}
	return ob
}

// outcome is one resolver's verdict with the facts behind it.
type outcome struct {
	rr        ResolverResult
	answered  bool    // the resolver gave enough answers to decide
	found     *string // see Result.Found
	target    string  // accepted CNAME target reached, even when TXT is missing
	txtFound  bool
	txtAsked  bool // a TXT answer arrived (possibly empty)
	errText   string
	timeout   bool
	conflicts []i18n.Text
}

// decide turns one resolver's observation into a verdict. The states, in the order checked:
//
//	no answer to the hostname query        → not answered (timeout / transport error)
//	rcode other than NOERROR/NXDOMAIN      → failed (SERVFAIL, REFUSED…)
//	chain reaches Expected / TunnelTarget  → verified, unless RequireTXT and the token is missing
//	chain loops / too long / elsewhere     → failed
//	no CNAME, apex, addresses = Expected's → verified (flattened) only with the TXT token
//	no CNAME, addresses                    → failed, addresses named
//	nothing                                → failed, found = nil
//
// A secondary query that got no answer makes the resolver "not answered" only when the verdict
// depends on it; otherwise the failure is decided by what did arrive.
func decide(req Request, ob *observation) outcome {
	o := decideRecords(req, ob)
	// CAA findings go last: they matter only once the records above are right.
	o.conflicts = append(o.conflicts, ob.caa.conflicts...)
	return o
}

func decideRecords(req Request, ob *observation) outcome {
	o := outcome{rr: ResolverResult{Resolver: ob.resolver}}
	rr := &o.rr
	noAnswer := func(prefix string, err *queryError) outcome {
		o.answered = false
		o.errText = err.short()
		o.timeout = err.Timeout()
		rr.Error = prefix + o.errText
		rr.Reason = ReasonTimeout
		if !o.timeout {
			rr.Reason = ReasonResolverError
		}
		rr.Found = o.errText
		return o
	}
	if ob.chainErr != nil {
		return noAnswer("", ob.chainErr)
	}
	o.answered = true
	w := ob.chain
	rr.Rcode = rcodeString(ob.first.Rcode)
	rr.Chain = w.hops
	rr.A = addrStrings(w.addrs)
	rr.AAAA = addrStrings(ob.aaaa)
	rr.TXT = ob.txt

	// TXT state, needed by several branches.
	txtKnown := ob.txtQueried && ob.txtErr == nil
	if txtKnown {
		o.txtAsked = true
		for _, t := range ob.txt {
			if tokenMatches(t, req.TXTToken) {
				o.txtFound = true
			}
		}
	}
	rr.TXTFound = o.txtFound
	if txtKnown && !o.txtFound && len(ob.txt) > 0 && req.TXTToken != "" {
		o.conflicts = append(o.conflicts, conflictTXTOther(req.TXTName, ob.txt))
	}
	// requireTXT decides a verdict that needs the token: verified, failed, or not answered.
	requireTXT := func(method string) outcome {
		switch {
		case ob.txtErr != nil:
			return noAnswer("TXT: ", ob.txtErr)
		case o.txtFound:
			rr.Verified, rr.Method, rr.Reason = true, method, ReasonVerified
		case len(ob.txt) > 0:
			rr.Reason = ReasonTXTMismatch
			rr.Found = "TXT " + quoteAll(ob.txt)
		default:
			rr.Reason = ReasonTXTMissing
			rr.NegativeTTL = int(ob.txtNegTTL / time.Second)
		}
		return o
	}

	if len(w.besideCNAME) > 0 || len(ob.aaaaBeside) > 0 {
		o.conflicts = append(o.conflicts, conflictBesideCNAME(req.Hostname, append(w.besideCNAME, ob.aaaaBeside...)))
	}

	switch {
	case w.matched != noMatch:
		o.target = w.target
		method := MethodCNAME
		if w.matched == matchTunnel {
			method = MethodCNAMETunnel
		}
		if req.RequireTXT {
			return finish(requireTXT(method))
		}
		rr.Verified, rr.Method, rr.Reason = true, method, ReasonVerified
		return finish(o)

	case len(w.hops) == 0 && ob.first.Rcode != dns.RcodeSuccess && ob.first.Rcode != dns.RcodeNameError:
		rr.Reason = ReasonServFail
		if ob.first.Rcode != dns.RcodeServerFailure {
			rr.Reason = ReasonRcode
		}
		rr.Found = rr.Rcode
		return finish(o)

	case w.err != nil:
		// The chain leaves the hostname but a later hop went unanswered: the end is unknown.
		return noAnswer("", w.err)

	case w.loop:
		rr.Reason, rr.Found = ReasonChainLoop, w.hops[0]
		return finish(o)

	case w.tooLong:
		rr.Reason, rr.Found = ReasonChainTooLong, w.hops[0]
		return finish(o)

	case len(w.hops) > 0:
		rr.Reason, rr.Found = ReasonWrongTarget, w.hops[0]
		if w.finalRcode == dns.RcodeNameError {
			o.conflicts = append(o.conflicts, conflictTargetMissing(w.final))
		}
		return finish(o)
	}

	// No CNAME at the hostname.
	addrs := append(append([]netip.Addr(nil), w.addrs...), ob.aaaa...)
	if len(addrs) == 0 {
		rr.Reason = ReasonNoCNAME
		rr.NegativeTTL = int(negativeTTL(ob.first, dns.TypeA) / time.Second)
		return finish(o)
	}
	found := formatAddrs(w.addrs, ob.aaaa)
	if !req.Apex {
		rr.Reason, rr.Found = ReasonAddressesInstead, found
		o.conflicts = append(o.conflicts, conflictAddressesInstead(req.Hostname, w.addrs, ob.aaaa))
		return finish(o)
	}
	// Apex: flattening is accepted only when the address sets are identical.
	if ob.aaaaErr != nil {
		return noAnswer("AAAA: ", ob.aaaaErr)
	}
	if ob.expErr != nil {
		return noAnswer(req.Expected+": ", ob.expErr)
	}
	if len(ob.expA)+len(ob.expAAAA) > 0 && equalAddrs(w.addrs, ob.expA) && equalAddrs(ob.aaaa, ob.expAAAA) {
		o.target = req.Expected
		return finish(requireTXT(MethodFlattened))
	}
	rr.Reason, rr.Found = ReasonFlattenedMismatch, found
	o.conflicts = append(o.conflicts, conflictsStale(req.Hostname, req.Expected, w.addrs, ob.aaaa, ob.expA, ob.expAAAA)...)
	return finish(o)
}

// finish copies the per-resolver Found into the pointer form the Result uses.
func finish(out outcome) outcome {
	if out.rr.Found != "" {
		f := out.rr.Found
		out.found = &f
	}
	return out
}

func normalizeRequest(req Request) Request {
	req.Hostname = normName(req.Hostname)
	req.Expected = normName(req.Expected)
	req.TunnelTarget = normName(req.TunnelTarget)
	req.TXTName = normName(req.TXTName)
	req.TXTToken = strings.TrimSpace(req.TXTToken)
	return req
}

func equalAddrs(a, b []netip.Addr) bool {
	a, b = sortAddrs(append([]netip.Addr(nil), a...)), sortAddrs(append([]netip.Addr(nil), b...))
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func addrStrings(a []netip.Addr) []string {
	if len(a) == 0 {
		return nil
	}
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = x.String()
	}
	return out
}

func rcodeString(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// Package cloudflare is the control plane's provider for the platform zone (sajet.us) on
// Cloudflare's official Go SDK (cloudflare-go v7): the proxied CNAME
// `<sub>.<zone> → <tunnel-uuid>.cfargotunnel.com` of each domain, and in SaaS mode the Cloudflare
// for SaaS custom hostname of its external domain. Callers (the provisioning jobs) decide when;
// this package decides how, so that every call may be repeated safely.
//
// # What is ours
//
// Every DNS record we create carries the comment Comment(domainID), exactly
// "managed-by:sajet domain:<id>". ParseComment accepts only that exact form. A record is ours
// if and only if its comment parses; the database row only remembers the record id as a
// shortcut. Anything else under a name we want (a record an operator made by hand, another
// tool's record, one of ours whose marker someone edited) is foreign, and foreign records are
// never changed or deleted: the zone is shared with people and other tools, and overwriting their
// record would silently take their hostname away. The caller gets *ForeignRecordError ("a
// record for impulse-max.sajet.us already exists and is not managed by Sajet"), which is not
// retryable and is shown to a person, who removes the record or marks it ours.
//
// Custom hostnames live in the SaaS zone, which belongs to the platform, so all of them are
// ours, unless Config.CustomHostnameMetadata is on: then we tag each with custom_metadata
// {"managed_by":"sajet","domain_id":"<id>"} and treat untagged ones as foreign. It is off by
// default because Cloudflare enables custom metadata per zone on request (403, code 1413).
//
// # Idempotency: optimistic create, then adopt
//
// EnsureCNAME creates first and looks only when Cloudflare says the name is taken (codes
// 81053, 81054, 81057, 81058), because the common case (a new domain) then costs one call
// instead of two, and Cloudflare's own conflict rules (a CNAME cannot share its name with any
// record) make a blind create safe: it can never produce a second record under the name. On
// "taken" it lists the exact name (all types, so that a foreign A record is recognised) and
// adopts an identical record of ours, overwrites in place (PUT) a record of ours that differs
// (other tunnel, not proxied, marked for another domain id after a re-registration), or returns
// *ForeignRecordError.
//
// When the previous attempt may have written (a timeout, a dropped connection, a 5xx on the
// create), the caller passes retryAfterUncertain=true and the listing comes first: one call
// when the record is there, two when it is not. The reconciler passes true too, since it
// usually repairs records that exist. EnsureCustomHostname follows the same shape with 409/1406
// and a ?hostname.exact= lookup.
//
// Call costs: EnsureCNAME 1 (new), 2 (adopt after "taken"), 3 (update after "taken"), 1 or 2
// (retryAfterUncertain); DeleteRecord 2 (read to check it is ours, then delete; 1 if already
// gone); ListOurRecords max(1, ⌈N/PageSize⌉) for N matching records, PageSize 5000 by default;
// custom hostnames 1 per create, read or delete, 2 to adopt a duplicate. Provider.Calls counts
// requests for budgeting against Cloudflare's 1200 requests / 5 minutes.
//
// # Why the SDK does not retry
//
// The SDK retries connection errors, 408, 409, 429 and 5xx twice by default. We turn that off
// (option.WithMaxRetries(0)) because a retried POST after a timeout is exactly how duplicates and
// 8105x surprises happen, because a 409 from Cloudflare (duplicate custom hostname) is an
// answer, not a transient failure, and because the job queue above us already retries with
// backoff, honours Retry-After without spending an attempt, survives process restarts, and
// knows to pass retryAfterUncertain. One layer of retries, in one place.
//
// # Only the SDK packages we use
//
// The root package github.com/cloudflare/cloudflare-go/v7 is never imported: it links every
// service of the SDK (about 130 packages: Zero Trust, Workers, …), which took most of a cold
// build and of the binary. We import dns, custom_hostnames and option (and pagination for a
// result type); the root package's F only sets a param.Field's Value and Present, which we do
// directly, and its Error is re-exported by each service package (dns.Error). TestSDKImports
// fails if the control plane's binary gains the root package, a zero_trust or workers package,
// or any SDK package not on its list.
//
// # Call budget
//
// Calls wait for Config.CallsPerWindow per RateWindow (a golang.org/x/time/rate token bucket:
// burst limit/10, refill (limit − burst)/window, so no window ever sees more than the limit);
// a negative CallsPerWindow is no limit.
//
// # Errors
//
// Every error from a Cloudflare call is one of:
//
//   - *APIError: Cloudflare answered with status ≥ 400 (decoded with errors.As into the SDK's
//     *cloudflare.Error, imported as its alias dns.Error; an HTML error page from the edge
//     still yields its status). Retryable: 408, 429 and 5xx. Uncertain: 5xx on a write.
//     RetryAfter comes from the Retry-After header (seconds or HTTP date). 401, 403 and every
//     other 4xx are permanent.
//   - *TransportError: no usable answer (refused, reset, the per-call Timeout, an undecodable
//     body). Always retryable; uncertain on a write.
//   - *ForeignRecordError: permanent, see above.
//
// Classify(err) returns (retryable, uncertain, retryAfter) for any of them, through wrapping.
//
// # Performance note
//
// DNS listings are decoded with encoding/json instead of the SDK's generated decoder, which
// spends about 1 ms of CPU per record on the record-type union; requests, authentication and
// error mapping still go through the SDK.
package cloudflare

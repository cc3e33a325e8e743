// Package cftest is a fake Cloudflare v4 API for tests: an httptest server on loopback that
// speaks the real JSON envelope
//
//	{"success":…, "errors":[{"code":…,"message":…}], "messages":[], "result":…, "result_info":{page, per_page, count, total_count, total_pages}}
//
// for one zone's DNS records and Cloudflare for SaaS custom hostnames, with fault injection
// (5xx bursts, 429 with retry-after, latency, writes applied but answered with an error or a
// dropped connection) and a record of every call. Point the SDK at it with
// option.WithBaseURL(srv.URL()) and option.WithMaxRetries(0).
//
// # Fidelity
//
// Behaviour the provider's correctness depends on follows Cloudflare (docs/CLOUDFLARE.md §2):
// names are stored full and lower case; a CNAME cannot share its name with another record; the
// list filters the SDK sends (type, name.exact and the legacy name, comment.startswith and the
// other comment.* filters, case-insensitively); pages past the end are empty (the SDK's
// auto-pager stops only on an empty page); result_info is complete.
//
// Error codes, and where they come from:
//
//	Real (documented or quoted in public bug reports):
//	  400 81053 An A, AAAA, or CNAME record with that host already exists.  (docs/CLOUDFLARE.md §2)
//	  400 81054 A CNAME record with that host already exists.               (docs/CLOUDFLARE.md §2)
//	  400 81058 An identical record already exists.                         (docs/CLOUDFLARE.md §2)
//	  404 81044 Record does not exist.                                      (zanjie1999/cloudflare-api-v4-ddns#5; status assumed)
//	  400 7003  Could not route to …, perhaps your object identifier is invalid?  + 7000 No route for that URI
//	            (malformed zone id; cloudflare/cloudflare-go#118)
//	  409 1406  Duplicate custom hostname found.         (cloudflare-docs, SaaS status codes)
//	  400 1400  Unable to decode the JSON request body…   (same page)
//	  400 1407/1408/1411, 1432/1433/1440 hostname and ssl validation (same page)
//	  403 1413  custom metadata not enabled for the zone  (same page)
//	  404 1436  The custom hostname was not found.       (same page)
//	  429 971   Please wait and consider throttling your request speed  (widely reported by
//	            API clients; not in Cloudflare's docs)
//	Code real, status chosen here:
//	  401 10000 Authentication error (missing or wrong token). Cloudflare sends 10000 with 403
//	            for a token without permission; for a missing/invalid token it may answer 400
//	            with 6003/6111 instead.
//	  403 10000 Authentication error for a well-formed zone id that is not ours (a token
//	            cannot see zones outside its scope).
//	Invented (plausible; nothing depends on the exact number):
//	  400 9207 Request body is invalid. (DNS, bad JSON); 400 9000/9004/9020/9021 DNS name,
//	  content, type and TTL validation; 405 7001 method not available; 500 1500 for
//	  FailAfterApply (1500 is real for custom hostnames).
package cftest

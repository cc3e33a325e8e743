// Package deps pins the project's dependencies in go.mod while the packages that use them are
// being written; it is removed once each is imported for real.
package deps

import (
	_ "github.com/danielgtaylor/huma/v2"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/miekg/dns"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/riverqueue/river"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/net/publicsuffix"
	_ "gopkg.in/yaml.v3"
)

package cloudflare

import "testing"

// lastPage must not stop early when the server used a smaller page than we asked for, and must
// not ask for a page past the end when the server says how many there are.
func TestLastPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		info resultInfo
		page int
		n    int
		want bool
	}{
		{name: "an empty page ends the listing", info: resultInfo{}, page: 3, n: 0, want: true},
		{name: "total_pages reached ends it", info: resultInfo{PerPage: 100, TotalPages: 2}, page: 2, n: 100, want: true},
		{name: "total_pages not reached goes on", info: resultInfo{PerPage: 100, TotalPages: 3}, page: 2, n: 100, want: false},
		{name: "without total_pages a short page ends it", info: resultInfo{PerPage: 100}, page: 1, n: 40, want: true},
		{name: "without total_pages a full page goes on", info: resultInfo{PerPage: 100}, page: 1, n: 100, want: false},
		{name: "with nothing to go by a non-empty page goes on", info: resultInfo{}, page: 1, n: 7, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := lastPage(tc.info, tc.page, tc.n); got != tc.want {
				t.Errorf("lastPage(%+v, %d, %d) = %v, want %v", tc.info, tc.page, tc.n, got, tc.want)
			}
		})
	}
}

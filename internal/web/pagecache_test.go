package web

// The page cache is bounded by bytes: floods of made-up names and more
// projects than fit cannot grow it, and what it evicts is rendered again,
// the same as before.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
)

func TestClockCacheStaysWithinBudget(t *testing.T) {
	const budget = 64 << 10
	c := newClockCache[struct{}](budget)
	const n = 100000
	for i := range n {
		c.put(fmt.Sprintf("made-up-%06d", i), struct{}{}, 0)
		if c.bytes > budget {
			t.Fatalf("after %d names: %d bytes, over the %d budget", i+1, c.bytes, budget)
		}
	}
	bytes, entries := c.usage()
	if per := int64(entryOverhead + len("made-up-000000")); int64(entries) != budget/per {
		t.Errorf("%d entries of %d bytes in a %d budget, want %d", entries, per, budget, budget/per)
	}
	if got := c.evictions.Load(); got != uint64(n-entries) {
		t.Errorf("evictions: %d, want %d (every name that no longer fits)", got, n-entries)
	}
	if len(c.m) != entries || len(c.ring) != entries {
		t.Errorf("map %d and ring %d entries, want %d in both", len(c.m), len(c.ring), entries)
	}
	t.Logf("%d names: %d entries, %d bytes kept", n, entries, bytes)
}

// TestClockCacheSecondChance: entries read since the hand last passed are
// kept over those that were not.
func TestClockCacheSecondChance(t *testing.T) {
	const per = entryOverhead + 3 + 100
	c := newClockCache[int](10 * per)
	for i := range 11 { // the 11th evicts one, and the hand's pass clears every flag
		c.put(fmt.Sprintf("k%02d", i), i, 100)
	}
	if _, ok := c.get("k00"); ok {
		t.Fatal("k00 should have been evicted to make room for k10")
	}
	read := []string{"k01", "k03", "k05", "k07", "k09"}
	for _, k := range read {
		c.get(k)
	}
	for i := range 5 {
		c.put(fmt.Sprintf("n%02d", i), i, 100)
	}
	for _, k := range read {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s was read and evicted while unread entries remained", k)
		}
	}
	for _, k := range []string{"k02", "k04", "k06", "k08", "k10"} {
		if _, ok := c.get(k); ok {
			t.Errorf("%s was not read and survived", k)
		}
	}
}

// TestPageCacheFloodOfUnknownNames: 100,000 requests for names that are not
// projects leave the cache within its budget, the 404s within their share.
func TestPageCacheFloodOfUnknownNames(t *testing.T) {
	const budget = 1 << 20
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{pageCacheSize: budget})
	f.mustUpload(t, wheel(t, meta{Name: "demo", Version: "1.0"}))
	f.getOK(t, "/simple/demo/")
	const n = 100000
	for i := range n {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, httptest.NewRequest("GET", fmt.Sprintf("/simple/made-up-%06d/", i), nil))
		if w.Code != http.StatusNotFound {
			t.Fatalf("made-up name %d: status %d, want 404", i, w.Code)
		}
	}
	st := f.srv.PageCacheStats()
	if st.MissingBytes > budget/missingShare || st.Bytes+st.MissingBytes > budget {
		t.Errorf("after %d made-up names: %d bytes of 404s (share %d), %d in all (budget %d)", n, st.MissingBytes, budget/missingShare, st.Bytes+st.MissingBytes, budget)
	}
	if max := budget / missingShare / entryOverhead; st.MissingEntries > max {
		t.Errorf("%d names remembered as missing, want at most %d", st.MissingEntries, max)
	}
	if st.MissingEvictions < uint64(n-st.MissingEntries) {
		t.Errorf("%d evictions of missing names, want at least %d", st.MissingEvictions, n-st.MissingEntries)
	}
	// The flood evicted only its own kind: the real page is still cached.
	before := f.srv.PageCacheStats().Renders
	f.getOK(t, "/simple/demo/")
	if got := f.srv.PageCacheStats().Renders - before; got != 0 {
		t.Errorf("demo's page was rendered again after the flood (%d renders); want it kept", got)
	}
	t.Logf("after %d made-up names: %d missing entries, %d bytes; pages %d bytes", n, st.MissingEntries, st.MissingBytes, st.Bytes)
}

// TestPageCacheEvictsAndRerenders: with more pages than fit, the cache
// evicts, stays within budget, and serves evicted pages rendered again,
// byte for byte as before.
func TestPageCacheEvictsAndRerenders(t *testing.T) {
	const budget = 8 << 10
	f := newFixtureWith(t, dbtest.NewSQLite(t), fixtureConfig{pageCacheSize: budget})
	f.mustUpload(t, wheel(t, meta{Name: "aaa-demo", Version: "1.0", RequiresPython: ">=3.8"}))
	seedProjects(t, f.db, 60, "Pkg")
	ps, err := f.projects.ListProjects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]response{}
	for _, p := range ps {
		first[p.NormalizedName] = f.getOK(t, "/simple/"+p.NormalizedName+"/")
	}
	st := f.srv.PageCacheStats()
	if st.Evictions == 0 || st.Entries >= len(ps) {
		t.Fatalf("%d pages in a %d-byte budget: %d evictions, %d kept; want evictions", len(ps), budget, st.Evictions, st.Entries)
	}
	if st.Bytes > budget-budget/missingShare {
		t.Errorf("pages hold %d bytes, over their %d budget", st.Bytes, budget-budget/missingShare)
	}
	for _, p := range ps {
		for _, accept := range []string{"", mediaJSON} {
			r := f.getOK(t, "/simple/"+p.NormalizedName+"/", "Accept", accept)
			if accept == "" && (!bytes.Equal(r.body, first[p.NormalizedName].body) || r.header.Get("ETag") != first[p.NormalizedName].header.Get("ETag")) {
				t.Errorf("%s after eviction: a different page", p.NormalizedName)
			}
		}
	}
	after := f.srv.PageCacheStats()
	if got, want := after.Renders-st.Renders, uint64(len(ps)-st.Entries); got < want {
		t.Errorf("second pass: %d renders, want at least %d (the pages that had been evicted)", got, want)
	}
	if after.Hits == st.Hits {
		t.Error("second pass: no hits; the pages still cached should have been served from memory")
	}
}

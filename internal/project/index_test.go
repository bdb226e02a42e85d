package project

import (
	"reflect"
	"testing"
)

func TestSortReleases(t *testing.T) {
	var rs []Release
	for i, v := range []string{"1.0", "1.10", "1.9", "1.0rc1", "2.0.dev1", "1.0.post1", "0.9"} {
		rs = append(rs, Release{ID: int64(i + 1), Version: v})
	}
	sortReleases(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.Version)
	}
	want := []string{"2.0.dev1", "1.10", "1.9", "1.0.post1", "1.0", "1.0rc1", "0.9"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (newest first, PEP 440)", got, want)
	}
}

func TestDetailLatest(t *testing.T) {
	rel := func(v string, pre, yanked bool) Release {
		return Release{Version: v, CanonicalVersion: v, IsPrerelease: pre, Yanked: yanked}
	}
	tests := []struct {
		name     string
		releases []Release // newest first
		want     string    // "" for none
	}{
		{"newest final", []Release{rel("2.0", false, false), rel("1.0", false, false)}, "2.0"},
		{"skips pre-releases", []Release{rel("2.0rc1", true, false), rel("1.0", false, false)}, "1.0"},
		{"skips yanked", []Release{rel("2.0", false, true), rel("1.0", false, false)}, "1.0"},
		{"pre-release when no final", []Release{rel("2.0rc1", true, false), rel("1.0", false, true)}, "2.0rc1"},
		{"all yanked: newest", []Release{rel("2.0", false, true), rel("1.0", false, true)}, "2.0"},
		{"no releases", nil, ""},
	}
	for _, tt := range tests {
		d := &Detail{Releases: tt.releases}
		got := ""
		if r := d.Latest(); r != nil {
			got = r.Version
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDetailReleaseAndFiles(t *testing.T) {
	d := &Detail{
		Releases: []Release{{ID: 2, Version: "1.10", CanonicalVersion: "1.10"}, {ID: 1, Version: "1.0", CanonicalVersion: "1"}},
		Files:    []File{{ReleaseID: 1, Filename: "a-1.0.tar.gz"}, {ReleaseID: 2, Filename: "a-1.10.tar.gz"}, {ReleaseID: 1, Filename: "a-1.0-py3-none-any.whl"}},
	}
	for _, tt := range []struct{ ask, want string }{{"1.0", "1.0"}, {"1.0.0", "1.0"}, {"1", "1.0"}, {"1.10", "1.10"}, {"1.1", ""}, {"bogus", ""}} {
		r, err := d.Release(tt.ask)
		got := ""
		if err == nil {
			got = r.Version
		}
		if got != tt.want {
			t.Errorf("Release(%q): got %q (err %v), want %q", tt.ask, got, err, tt.want)
		}
	}
	var names []string
	for _, f := range d.FilesOf(1) {
		names = append(names, f.Filename)
	}
	if want := []string{"a-1.0.tar.gz", "a-1.0-py3-none-any.whl"}; !reflect.DeepEqual(names, want) {
		t.Errorf("FilesOf(1): got %v, want %v", names, want)
	}
}

package config

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	build := ServeFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return build()
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"DataDir", c.DataDir, "./gatehouse-data"},
		{"Listen", c.Listen, "127.0.0.1:8080"},
		{"BaseURL", c.BaseURL, "http://localhost:8080"},
		{"DatabaseURL", c.DatabaseURL, "sqlite:gatehouse-data/gatehouse.db"},
		{"FilesDir", c.FilesDir, "gatehouse-data/files"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.PageCacheSize != 64<<20 {
		t.Errorf("PageCacheSize: got %d, want 64 MiB", c.PageCacheSize)
	}
	if c.MaxFileSize != 100<<20 || c.MaxProjectSize != 10<<30 {
		t.Errorf("limits: got %d/%d, want 100 MiB/10 GiB", c.MaxFileSize, c.MaxProjectSize)
	}
	if c.ReleaseAgeDays != 14 {
		t.Errorf("ReleaseAgeDays: got %d, want PyPI's 14", c.ReleaseAgeDays)
	}
	if want := float64(runtime.NumCPU()) / 4; c.HashCPUs != want || c.HashWait != time.Second {
		t.Errorf("hashing: got %g CPUs and a %v wait, want %g (a quarter of %d) and 1s", c.HashCPUs, c.HashWait, want, runtime.NumCPU())
	}
	if c.ReadTimeout != 30*time.Second || c.IdleTimeout != 2*time.Minute || c.UploadMinRate != 8<<10 || c.UploadRateWindow != time.Minute {
		t.Errorf("timeouts: got read %v, idle %v, upload min rate %d B/s over %v; want 30s, 2m, 8 KiB/s over 1m",
			c.ReadTimeout, c.IdleTimeout, c.UploadMinRate, c.UploadRateWindow)
	}
}

func TestFlagsBeatEnvBeatDefaults(t *testing.T) {
	env := map[string]string{"GATEHOUSE_LISTEN": "0.0.0.0:9000", "GATEHOUSE_MAX_FILE_SIZE": "5MiB"}
	c, err := load(t, []string{"--max-file-size", "7MiB"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" {
		t.Errorf("Listen: got %q, want the env value", c.Listen)
	}
	if c.MaxFileSize != 7<<20 {
		t.Errorf("MaxFileSize: got %d, want the flag value %d", c.MaxFileSize, 7<<20)
	}
}

func TestInvalid(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "nonsense"},
		{"--base-url", "ftp://x"},
		{"--max-file-size", "lots"},
		{"--log-format", "xml"},
		{"--cache-poll", "0s"},
		{"--read-timeout", "0s"},
		{"--idle-timeout", "-1s"},
		{"--upload-rate-window", "0s"},
		{"--upload-min-rate", "0"},
		{"--upload-min-rate", "fast"},
		{"--page-cache-size", "100KiB"},
		{"--page-cache-size", "lots"},
		{"--release-age-days", "0"},
		{"--release-age-days", "-3"},
		{"--release-age-days", "two weeks"},
		{"--release-age-days", "36501"},
		{"--hash-cpus", "-1"},
		{"--hash-cpus", "0.05"},
		{"--hash-cpus", "lots"},
		{"--hash-cpus", "NaN"},
		{"--hash-wait", "0s"},
		{"--hash-wait", "soon"},
	} {
		if _, err := load(t, args, nil); err == nil {
			t.Errorf("%v: got no error, want one", args)
		}
	}
}

// TestHashCPUs: a quarter of the CPUs by default; a given budget is taken
// as it is, fractions too.
func TestHashCPUs(t *testing.T) {
	for cpus, want := range map[int]float64{1: 0.25, 2: 0.5, 3: 0.75, 16: 4} {
		if got := DefaultHashCPUs(cpus); got != want {
			t.Errorf("DefaultHashCPUs(%d) = %g, want %g", cpus, got, want)
		}
	}
	c, err := load(t, []string{"--hash-cpus", "0.25", "--hash-wait", "250ms"}, map[string]string{"GATEHOUSE_HASH_CPUS": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HashCPUs != 0.25 || c.HashWait != 250*time.Millisecond {
		t.Errorf("got %g CPUs, %v wait; want the flags' 0.25 and 250ms", c.HashCPUs, c.HashWait)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"100MiB": 100 << 20, "1GiB": 1 << 30, "500KB": 500000, "42": 42, "3 MiB": 3 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestSecretGeneratedOnceAndValidated(t *testing.T) {
	dir := t.TempDir()
	c := &Config{SecretKeyFile: filepath.Join(dir, "secret.key")}
	fill := func(b []byte) error {
		for i := range b {
			b[i] = byte(i)
		}
		return nil
	}
	k1, err := c.Secret(fill)
	if err != nil || len(k1) != 32 {
		t.Fatalf("first Secret: %d bytes, %v", len(k1), err)
	}
	k2, err := c.Secret(func([]byte) error { t.Fatal("generated twice"); return nil })
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second Secret differs or fails: %v", err)
	}
	if fi, _ := os.Stat(c.SecretKeyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: got %v, want 0600", fi.Mode().Perm())
	}
	short := &Config{SecretKey: "abcd"}
	if _, err := short.Secret(fill); err == nil {
		t.Error("a 2-byte secret was accepted")
	}
}

// TestDocumented checks that docs/configuration.md names every flag and
// environment variable, so the documentation cannot fall behind.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings() {
		if !strings.Contains(string(doc), "`"+s.Env+"`") || !strings.Contains(string(doc), "`--"+s.Flag+"`") {
			t.Errorf("docs/configuration.md does not document --%s / %s", s.Flag, s.Env)
		}
	}
}

func TestReleaseAgeDaysFromEnvAndFlag(t *testing.T) {
	env := map[string]string{"GATEHOUSE_RELEASE_AGE_DAYS": "30"}
	c, err := load(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReleaseAgeDays != 30 {
		t.Errorf("from the environment: got %d, want 30", c.ReleaseAgeDays)
	}
	if c, err = load(t, []string{"--release-age-days", "7"}, env); err != nil {
		t.Fatal(err)
	}
	if c.ReleaseAgeDays != 7 {
		t.Errorf("flag over the environment: got %d, want 7", c.ReleaseAgeDays)
	}
}

// TestDurationsTakeDays: --upstream-min-age 3d, as the docs write it, and
// every other duration setting too.
func TestDurationsTakeDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"3d": 72 * time.Hour, "1.5d": 36 * time.Hour, "0d": 0, "72h": 72 * time.Hour, " 2d ": 48 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	c, err := load(t, []string{"--upstream-min-age", "3d"}, nil)
	if err != nil || c.UpstreamMinAge != 72*time.Hour {
		t.Errorf("--upstream-min-age 3d: %v, %v; want 72h", c.UpstreamMinAge, err)
	}
	for _, bad := range []string{"d", "3 days", "xd", "1e9d", "NaNd"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

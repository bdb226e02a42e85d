package config

import (
	"strings"
	"testing"
	"time"
)

func TestStorageDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.IsS3() || c.Storage.Redirect != "off" || c.Storage.PathStyle != "auto" || c.Storage.RedirectTTL != 5*time.Minute {
		t.Errorf("storage defaults = %+v, want the files directory, no redirect, path style auto, 5m", c.Storage)
	}
}

// A deployment configured for AWS's own tools needs no GATEHOUSE_STORAGE_*
// variable but the URL; Gatehouse's own settings win over them.
func TestStorageAWSEnvironment(t *testing.T) {
	env := map[string]string{
		"GATEHOUSE_STORAGE_URL": "s3://pypi/files",
		"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-from-env", "AWS_SESSION_TOKEN": "session",
		"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2",
		"AWS_ENDPOINT_URL": "http://generic:9000", "AWS_ENDPOINT_URL_S3": "http://s3-only:9000",
	}
	c, err := load(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	want := Storage{URL: "s3://pypi/files", Endpoint: "http://s3-only:9000", Region: "eu-west-1", PathStyle: "auto",
		AccessKey: "AKIAEXAMPLE", SecretKey: "secret-from-env", SessionToken: "session", Redirect: "off", RedirectTTL: 5 * time.Minute}
	if c.Storage != want {
		t.Errorf("from AWS_* variables:\n got %+v\nwant %+v", c.Storage, want)
	}

	env["GATEHOUSE_STORAGE_ACCESS_KEY"], env["GATEHOUSE_STORAGE_SECRET_KEY"] = "own", "own-secret"
	c, err = load(t, []string{"--storage-region", "auto-region", "--storage-endpoint", "https://s3.example.com"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Storage; s.AccessKey != "own" || s.SecretKey != "own-secret" || s.SessionToken != "" || s.Region != "auto-region" || s.Endpoint != "https://s3.example.com" {
		t.Errorf("Gatehouse's settings over AWS_*: got %+v", s)
	}
}

func TestStorageRefusesBadSettings(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--storage-url", "/srv/files"}, "want s3://bucket/prefix"},
		{[]string{"--storage-url", "s3:///prefix"}, "names no bucket"},
		{[]string{"--storage-url", "s3://b", "--storage-endpoint", "ftp://host"}, "want http(s)://host[:port]"},
		{[]string{"--storage-url", "s3://b", "--storage-path-style", "yes"}, "want on, off or auto"},
		{[]string{"--storage-url", "s3://b", "--storage-redirect", "true"}, "want on or off"},
		{[]string{"--storage-redirect", "on"}, "needs files in S3"},
		{[]string{"--storage-url", "s3://b", "--storage-redirect-ttl", "1s"}, "from 10s to 168h"},
		{[]string{"--storage-url", "s3://b", "--storage-access-key", "only-the-id"}, "give both"},
	} {
		_, err := load(t, c.args, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

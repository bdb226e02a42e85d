package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Storage says where package files are kept: in a directory (FilesDir),
// or in an S3-compatible bucket when URL is s3://bucket/prefix.
type Storage struct {
	URL         string        // "" (the files directory) or s3://bucket/prefix
	Endpoint    string        // S3 server URL; "" is AWS
	Region      string        // "" asks the server
	PathStyle   string        // on, off or auto
	AccessKey   string        // "" with SecretKey "": shared credentials file, then instance role
	SecretKey   string        // never logged
	Redirect    string        // on: downloads redirect to presigned URLs
	RedirectTTL time.Duration // validity of a presigned URL

	SessionToken string // $AWS_SESSION_TOKEN, for temporary credentials
}

// IsS3 reports whether files are kept in an S3 bucket.
func (s *Storage) IsS3() bool { return strings.HasPrefix(s.URL, "s3://") }

// awsDefaults fills what the settings leave empty from the environment
// variables AWS's own tools read, so that a deployment configured for them
// needs nothing more.
func (s *Storage) awsDefaults(getenv func(string) string) {
	first := func(v *string, names ...string) {
		for _, n := range names {
			if *v != "" {
				return
			}
			*v = getenv(n)
		}
	}
	first(&s.Endpoint, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	first(&s.Region, "AWS_REGION", "AWS_DEFAULT_REGION")
	if s.AccessKey == "" && s.SecretKey == "" {
		s.AccessKey, s.SecretKey, s.SessionToken = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")
	}
}

// check validates the storage settings.
func (s *Storage) check() error {
	if s.URL != "" && !s.IsS3() {
		return fmt.Errorf("--storage-url %q: want s3://bucket/prefix, or leave it empty to keep files in --files-dir", s.URL)
	}
	if s.IsS3() {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(s.URL, "s3://"), "/")
		if bucket == "" {
			return fmt.Errorf("--storage-url %q names no bucket: want s3://bucket/prefix", s.URL)
		}
	}
	if s.Endpoint != "" && strings.Contains(s.Endpoint, "://") {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--storage-endpoint %q: want http(s)://host[:port], e.g. https://s3.eu-west-1.amazonaws.com", s.Endpoint)
		}
	}
	switch s.PathStyle {
	case "on", "off", "auto":
	default:
		return fmt.Errorf("--storage-path-style %q: want on, off or auto", s.PathStyle)
	}
	switch s.Redirect {
	case "on", "off":
	default:
		return fmt.Errorf("--storage-redirect %q: want on or off", s.Redirect)
	}
	if s.Redirect == "on" && !s.IsS3() {
		return fmt.Errorf("--storage-redirect on needs files in S3 (--storage-url s3://…): files in a directory are always served by Gatehouse")
	}
	if s.RedirectTTL < 10*time.Second || s.RedirectTTL > 7*24*time.Hour {
		return fmt.Errorf("--storage-redirect-ttl %v: want from 10s to 168h (S3's longest), e.g. 5m", s.RedirectTTL)
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		return fmt.Errorf("give both --storage-access-key and --storage-secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or neither")
	}
	return nil
}

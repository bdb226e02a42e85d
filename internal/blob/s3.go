package blob

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3 is the [Store] on an S3-compatible object store (AWS S3, MinIO,
// versitygw, Ceph, R2, …). A key is the object named prefix + key in one
// bucket.
//
// S3 itself gives what the filesystem store builds by hand: a PUT (or a
// completed multipart upload, or a server-side copy) is atomic, so a reader
// sees the old object or the whole new one, and it is durable once the
// server has answered. Uploads stream: bytes go to the object store in
// parts as they arrive (see s3Upload), so no full copy of a file is ever
// kept on local disk.
//
// Temporary objects (a staged upload larger than one part, see Stage) are
// named prefix + ".tmp-<random>"; no key can name them and List skips them.
// A crash can leave one behind, or an unfinished multipart upload; Sweep
// removes both once they are old enough to belong to no upload in flight.
type S3 struct {
	client   *minio.Client
	core     minio.Core
	bucket   string
	prefix   string // "" or ends in "/"
	partSize int64
}

var _ Store = (*S3)(nil)

// S3Options configures [NewS3].
type S3Options struct {
	// Bucket and Prefix say where the objects go: a key k is the object
	// Prefix + "/" + k in Bucket (just k for an empty Prefix).
	Bucket, Prefix string

	// Endpoint is the server's URL, e.g. https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:9000; a bare host:port means https.
	Endpoint string

	// Region is the bucket's region ("" lets the client ask the server).
	Region string

	// PathStyle addresses the bucket as https://host/bucket/key rather than
	// https://bucket.host/key: "on", "off" or "auto" (path style for any
	// server but AWS's and a few others' that need virtual hosts).
	PathStyle string

	// AccessKey, SecretKey and SessionToken are the credentials. When both
	// keys are empty, the shared credentials file (~/.aws/credentials,
	// $AWS_PROFILE) and then an instance role (EC2, ECS) are tried.
	AccessKey, SecretKey, SessionToken string

	// PartSize is the size of the parts a large blob is sent in, and the
	// most a blob in progress holds in memory. At least 5 MiB (S3's
	// smallest part); 0 means 8 MiB.
	PartSize int64

	// Transport, when set, carries every request (tests).
	Transport http.RoundTripper
}

// DefaultS3PartSize is the part size when S3Options.PartSize is 0: an
// upload in flight holds at most this much in memory.
const DefaultS3PartSize = 8 << 20

// minS3PartSize is the smallest part S3 accepts (but for the last).
const minS3PartSize = 5 << 20

// ParseS3URL splits "s3://bucket/prefix" into bucket and prefix (which may
// be empty). It reports false for anything else.
func ParseS3URL(s string) (bucket, prefix string, ok bool) {
	rest, found := strings.CutPrefix(s, "s3://")
	if !found {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, strings.Trim(prefix, "/"), bucket != ""
}

// NewS3 connects to the bucket and checks that it exists and the
// credentials may read it.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if err := s3utils.CheckValidBucketName(o.Bucket); err != nil {
		return nil, fmt.Errorf("blob: bucket %q: %w", o.Bucket, err)
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("blob: prefix %q is not a usable object name prefix: %w", o.Prefix, err)
		}
		prefix += "/"
	}
	partSize := o.PartSize
	switch {
	case partSize == 0:
		partSize = DefaultS3PartSize
	case partSize < minS3PartSize:
		return nil, fmt.Errorf("blob: S3 part size %d is below S3's smallest part (5 MiB)", partSize)
	}
	host, secure, err := parseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	switch o.PathStyle {
	case "on":
		lookup = minio.BucketLookupPath
	case "off":
		lookup = minio.BucketLookupDNS
	case "", "auto":
	default:
		return nil, fmt.Errorf("blob: path style %q: want on, off or auto", o.PathStyle)
	}
	var creds *credentials.Credentials
	if o.AccessKey != "" || o.SecretKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	c, err := minio.New(host, &minio.Options{
		Creds: creds, Secure: secure, Region: o.Region, BucketLookup: lookup, Transport: o.Transport,
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 client: %w", err)
	}
	s := &S3{client: c, core: minio.Core{Client: c}, bucket: o.Bucket, prefix: prefix, partSize: partSize}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("blob: reach bucket %q at %s: %w", o.Bucket, c.EndpointURL().Redacted(), err)
	}
	if !ok {
		return nil, fmt.Errorf("blob: bucket %q does not exist at %s", o.Bucket, c.EndpointURL().Redacted())
	}
	return s, nil
}

// parseEndpoint turns an endpoint URL into minio's host and TLS switch.
func parseEndpoint(e string) (host string, secure bool, err error) {
	if e == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(e, "://") {
		return strings.TrimRight(e, "/"), true, nil
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("blob: S3 endpoint %q: want http(s)://host[:port], e.g. https://s3.eu-west-1.amazonaws.com", e)
	}
	return u.Host, u.Scheme == "https", nil
}

// Close releases nothing: the client holds only idle connections.
func (s *S3) Close() error { return nil }

// String names the store as people configure it.
func (s *S3) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *S3) object(key string) string { return s.prefix + key }

func (s *S3) newTempName() string { return s.prefix + TempPrefix + rand.Text() }

// Put implements [Store.Put]: one PUT for a blob smaller than a part, else
// a multipart upload straight to the key, completed only once r is
// exhausted (and aborted if r fails), so readers never see part of it.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	up := s.newUpload(ctx, s.object(key))
	if err := up.readFrom(r); err != nil {
		up.abort()
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	if err := up.finish(ctx, s.object(key)); err != nil {
		return fmt.Errorf("blob: put %q: %w", key, err)
	}
	return nil
}

// Open implements [Store.Open]. The returned File reads with ranged GETs
// (see s3File); it asks the server only for what is read.
func (s *S3) Open(ctx context.Context, key string) (File, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open %q: %w", key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		return nil, s.wrapErr("open", key, err)
	}
	return &s3File{s: s, ctx: ctx, object: s.object(key), key: key, size: info.Size, etag: info.ETag}, nil
}

// Stat implements [Store.Stat].
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.object(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrapErr("stat", key, err)
	}
	return Info{Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete implements [Store.Delete]. S3 answers a missing key with success.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.object(key), minio.RemoveObjectOptions{}); err != nil && !isS3NotFound(err) {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	return nil
}

// List implements [Store.List]. S3 lists keys in byte-wise (UTF-8 binary)
// order, which is the order List promises; temporary objects and objects no
// key can name are skipped.
func (s *S3) List(ctx context.Context, prefix string, fn func(key string, info Info) error) error {
	if err := ValidPrefix(prefix); err != nil {
		return err
	}
	// Cancelling stops the client's listing goroutine when fn stops early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.object(prefix), Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("blob: list: %w", obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || ValidKey(key) != nil {
			continue
		}
		if err := fn(key, Info{Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Presign returns a URL that lets anyone holding it GET the blob under key
// for ttl, with the given Content-Type and Content-Disposition in the
// answer. Range requests work on it as on any S3 GET.
func (s *S3) Presign(ctx context.Context, key string, ttl time.Duration, contentType, disposition string) (*url.URL, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	params := url.Values{}
	if contentType != "" {
		params.Set("response-content-type", contentType)
	}
	if disposition != "" {
		params.Set("response-content-disposition", disposition)
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, s.object(key), ttl, params)
	if err != nil {
		return nil, fmt.Errorf("blob: presign %q: %w", key, err)
	}
	return u, nil
}

// Sweep removes what uploads that died left in the bucket: unfinished
// multipart uploads and temporary objects under the prefix whose last
// write is more than olderThan ago. It returns how many it removed.
//
// Several instances share a bucket and S3 has no lock that dies with a
// process, so age is the only test: olderThan must exceed the longest an
// upload in flight goes without writing a part (a part's size at
// --upload-min-rate: 8 MiB at 8 KiB/s is 17 minutes), or the sweep would
// abort a live upload. An hour is safe.
func (s *S3) Sweep(ctx context.Context, olderThan time.Duration, now time.Time) (int, error) {
	cutoff := now.Add(-olderThan)
	n := 0
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if up.Err != nil {
			return n, fmt.Errorf("blob: sweep: list multipart uploads: %w", up.Err)
		}
		if !strings.HasPrefix(up.Key, s.prefix) {
			continue
		}
		last, err := s.lastWrite(ctx, up)
		if err != nil {
			return n, fmt.Errorf("blob: sweep: %w", err)
		}
		if !last.Before(cutoff) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, up.Key, up.UploadID); err != nil && !isS3NotFound(err) {
			return n, fmt.Errorf("blob: sweep: abort the multipart upload of %q: %w", up.Key, err)
		}
		n++
	}
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + TempPrefix}) {
		if obj.Err != nil {
			return n, fmt.Errorf("blob: sweep: list: %w", obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/") || !obj.LastModified.Before(cutoff) {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil && !isS3NotFound(err) {
			return n, fmt.Errorf("blob: sweep: remove %q: %w", obj.Key, err)
		}
		n++
	}
	return n, nil
}

// lastWrite is when a multipart upload last received a part (or began).
func (s *S3) lastWrite(ctx context.Context, up minio.ObjectMultipartInfo) (time.Time, error) {
	last := up.Initiated
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.bucket, up.Key, up.UploadID, marker, 1000)
		if isS3NotFound(err) {
			return last, nil // completed or aborted meanwhile
		}
		if err != nil {
			return last, fmt.Errorf("list the parts of %q: %w", up.Key, err)
		}
		for _, p := range res.ObjectParts {
			if p.LastModified.After(last) {
				last = p.LastModified
			}
		}
		if !res.IsTruncated {
			return last, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// wrapErr turns a client error for key into a Store error, mapping "no
// such key" to ErrNotFound.
func (s *S3) wrapErr(op, key string, err error) error {
	if isS3NotFound(err) {
		return notFound(op, key)
	}
	return fmt.Errorf("blob: %s %q: %w", op, key, err)
}

func isS3NotFound(err error) bool {
	if err == nil {
		return false
	}
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == "NoSuchKey" || r.Code == "NoSuchUpload"
}

// errS3Changed: the object changed while it was being read in pieces.
var errS3Changed = errors.New("the object changed while it was read")

package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// Password length rules (NIST SP 800-63B): at least 8 characters, at most
// 4096, no composition rules and no truncation.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 4096
)

// CheckPasswordLength applies the length rules.
func CheckPasswordLength(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLen {
		return derrors.New(derrors.Invalid, "Password too short: use at least %d characters.", MinPasswordLen)
	}
	if n > MaxPasswordLen {
		return derrors.New(derrors.Invalid, "Password too long: use at most %d characters.", MaxPasswordLen)
	}
	return nil
}

// argon2id parameters: OWASP's recommendation (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// Hasher hashes passwords with argon2id, at most `limit` at a time: each hash
// takes 19 MiB, so unbounded concurrency (200 simultaneous logins) would
// exhaust memory.
type Hasher struct {
	sem chan struct{}
}

// NewHasher returns a Hasher allowing limit concurrent hashes.
func NewHasher(limit int) *Hasher {
	if limit < 1 {
		limit = 1
	}
	return &Hasher{sem: make(chan struct{}, limit)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Hash returns the PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash, the same
// format argon2-cffi and passlib write, so hashes move between systems.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer func() { <-h.sem }()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether pw matches a PHC argon2id hash.
func (h *Hasher) Verify(ctx context.Context, pw, phc string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, fmt.Errorf("unsupported password hash format")
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, err
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, err
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, err
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer func() { <-h.sem }()
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

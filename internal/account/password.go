package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse-index/gatehouse/internal/workpool"
)

// argon2id parameters: OWASP's recommendation (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// bcryptMaxBytes is all bcrypt reads of a password; it ignores the rest.
const bcryptMaxBytes = 72

// errUnsupportedHash marks a stored hash this package cannot verify.
var errUnsupportedHash = errors.New("unsupported password hash format")

// Hasher hashes passwords with argon2id on a workpool.Pool: each hash
// takes one core for tens of milliseconds and 19 MiB, so the pool's bound
// keeps a burst of logins from exhausting memory or taking the CPU the
// Simple API and file downloads need. When the pool stays full for its
// wait, hashing fails with an error matching workpool.ErrBusy, and nothing
// was hashed.
type Hasher struct {
	pool *workpool.Pool
}

// NewHasher returns a Hasher running on pool.
func NewHasher(pool *workpool.Pool) *Hasher { return &Hasher{pool: pool} }

// RetryAfter is when a caller refused with workpool.ErrBusy should try again.
func (h *Hasher) RetryAfter() time.Duration { return h.pool.RetryAfter() }

// normalize applies NFKC, as NIST SP 800-63B §5.1.1.2 asks, so the same
// password typed on systems that compose accents differently (NFC on most,
// NFD on macOS) is the same password.
func normalize(pw string) string { return norm.NFKC.String(pw) }

// Hash returns the PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash of the
// normalized password, the format argon2-cffi and passlib write, so hashes
// move between systems.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	var key []byte
	if err := h.pool.Do(ctx, func() {
		key = argon2.IDKey([]byte(normalize(pw)), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	}); err != nil {
		return "", err
	}
	return phc(salt, key), nil
}

// phc formats an argon2id hash with the current parameters.
func phc(salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// dummyHash is an argon2id hash with the current parameters that no
// password matches: its salt and "hash" are random bytes. Verifying a
// password against it costs exactly what verifying against a real one
// costs, which is what a login for an unknown user (or an account with no
// password) needs, and making it costs nothing.
func dummyHash() string {
	b := make([]byte, argonSaltLen+argonKeyLen)
	rand.Read(b) // never fails: since Go 1.24 it crashes the program instead
	return phc(b[:argonSaltLen], b[argonSaltLen:])
}

// Verify reports whether pw matches a stored hash: argon2id or argon2i (PHC
// strings) or bcrypt ($2a$, $2b$, $2y$), the formats Warehouse and most
// Python tools write.
func (h *Hasher) Verify(ctx context.Context, pw, stored string) (bool, error) {
	ok, _, err := h.verify(ctx, pw, stored)
	return ok, err
}

// verify also reports whether a matching hash should be replaced by a fresh
// one: any other algorithm or parameters, or a hash of the un-normalized
// password (imported from a system that did not normalize).
//
// Both tries run in one job on the pool, so a verification waits for a
// worker once and is refused (workpool.ErrBusy) before any work or not at
// all. A stored hash this package cannot read is refused without waiting.
func (h *Hasher) verify(ctx context.Context, pw, stored string) (ok, rehash bool, err error) {
	check, err := checker(stored)
	if err != nil {
		return false, false, err
	}
	var checkErr error
	if err := h.pool.Do(ctx, func() {
		n := normalize(pw)
		if ok, checkErr = check(n); checkErr != nil || ok {
			rehash = ok && needsRehash(stored)
			return
		}
		if n != pw {
			ok, checkErr = check(pw)
			rehash = ok
		}
	}); err != nil {
		return false, false, err
	}
	return ok, rehash, checkErr
}

// checker returns the function that compares a password with stored, or
// errUnsupportedHash.
func checker(stored string) (func(pw string) (bool, error), error) {
	switch {
	case strings.HasPrefix(stored, "$argon2id$"), strings.HasPrefix(stored, "$argon2i$"):
		a, err := parseArgon2(stored)
		if err != nil {
			return nil, err
		}
		return a.matches, nil
	case strings.HasPrefix(stored, "$2a$"), strings.HasPrefix(stored, "$2b$"), strings.HasPrefix(stored, "$2y$"):
		return func(pw string) (bool, error) {
			// bcrypt silently ignores bytes past 72, so a longer password
			// would "match" on its prefix alone: refuse it instead of
			// truncating.
			if len(pw) > bcryptMaxBytes {
				return false, nil
			}
			err := bcrypt.CompareHashAndPassword([]byte(stored), []byte(pw))
			if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
				return false, nil
			}
			return err == nil, err
		}, nil
	default:
		return nil, errUnsupportedHash
	}
}

// argonParams is a parsed PHC argon2 string.
type argonParams struct {
	variant    string
	version    int
	m, t       uint32
	p          uint8
	salt, hash []byte
}

func parseArgon2(phc string) (*argonParams, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 {
		return nil, errUnsupportedHash
	}
	a := &argonParams{variant: parts[1]}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &a.version); err != nil {
		return nil, errUnsupportedHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &a.m, &a.t, &a.p); err != nil {
		return nil, errUnsupportedHash
	}
	enc := base64.RawStdEncoding
	var err error
	if a.salt, err = enc.DecodeString(parts[4]); err != nil {
		return nil, errUnsupportedHash
	}
	if a.hash, err = enc.DecodeString(parts[5]); err != nil {
		return nil, errUnsupportedHash
	}
	// argon2 panics on zero time or parallelism; a huge m would exhaust
	// memory. Such a row is corrupt, not a password to try.
	if a.version != argon2.Version || a.t < 1 || a.p < 1 || a.m < 8*uint32(a.p) || a.m > 1<<20 || len(a.hash) < 16 {
		return nil, errUnsupportedHash
	}
	return a, nil
}

// matches reports whether pw hashes to a's hash.
func (a *argonParams) matches(pw string) (bool, error) {
	var got []byte
	if a.variant == "argon2id" {
		got = argon2.IDKey([]byte(pw), a.salt, a.t, a.m, a.p, uint32(len(a.hash)))
	} else {
		got = argon2.Key([]byte(pw), a.salt, a.t, a.m, a.p, uint32(len(a.hash)))
	}
	return subtle.ConstantTimeCompare(got, a.hash) == 1, nil
}

// needsRehash reports whether a hash is anything but argon2id with the
// current parameters, so a successful login upgrades it.
func needsRehash(stored string) bool {
	a, err := parseArgon2(stored)
	if err != nil {
		return true
	}
	return a.variant != "argon2id" || a.m != argonMemory || a.t != argonTime || a.p != argonThreads ||
		len(a.salt) != argonSaltLen || len(a.hash) != argonKeyLen
}

package account

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBreachRangeURL is Have I Been Pwned's Pwned Passwords range API.
const DefaultBreachRangeURL = "https://api.pwnedpasswords.com/range/"

// breachTimeout bounds a check: a slow breach service must not hold up
// registration for long, and it fails open anyway.
const breachTimeout = 2 * time.Second

// BreachChecker asks a Pwned Passwords range API whether a password appears
// in a known breach, by k-anonymity: only the first 5 hex characters of the
// password's SHA-1 leave the server; the response lists every known suffix
// of that prefix and the comparison happens here.
type BreachChecker struct {
	rangeURL string
	client   *http.Client
}

// NewBreachChecker returns a checker for rangeURL (the prefix is appended,
// e.g. DefaultBreachRangeURL). client may be nil.
func NewBreachChecker(rangeURL string, client *http.Client) *BreachChecker {
	if client == nil {
		client = &http.Client{Timeout: breachTimeout}
	}
	return &BreachChecker{rangeURL: rangeURL, client: client}
}

// Check reports whether pw appears in a breach (any count ≥ 1). On any
// failure it returns false and an error that names neither the password nor
// its hash; callers fail open.
func (b *BreachChecker) Check(ctx context.Context, pw string) (bool, error) {
	sum := sha1.Sum([]byte(pw))
	digest := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := digest[:5], digest[5:]

	ctx, cancel := context.WithTimeout(ctx, breachTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.rangeURL+prefix, nil)
	if err != nil {
		return false, fmt.Errorf("breach check: %w", err)
	}
	// Padding makes every response about the same size, so the prefix cannot
	// be guessed from the response length on the wire.
	req.Header.Set("Add-Padding", "true")
	req.Header.Set("User-Agent", "Gatehouse")
	resp, err := b.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("breach check: request failed: %w", stripURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("breach check: status %s", resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	for sc.Scan() {
		got, count, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || !strings.EqualFold(got, suffix) {
			continue
		}
		// Padding entries carry a count of 0.
		n, err := strconv.Atoi(strings.TrimSpace(count))
		return err == nil && n > 0, nil
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("breach check: reading response: %w", err)
	}
	return false, nil
}

// stripURL drops the request URL from a client error: it holds the hash
// prefix, which is not secret, but logs are no place for any part of it.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

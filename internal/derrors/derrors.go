// Package derrors defines the small, closed set of error kinds that domain
// packages return and that the web layer maps to HTTP statuses.
//
// Domain code wraps one of the sentinels with a message a person can act on:
//
//	return derrors.New(derrors.Invalid, "The name %q is invalid.", name)
//
// and web/errors.go turns the kind into a status code while the message is
// shown to the user (for uploads, in the HTTP status line that twine prints).
// A tripped rate limit also says when to come back:
//
//	return derrors.Limited(wait, "Too many attempts. Try again later.")
//
// Errors that wrap no kind are internal errors: logged in full, shown as a
// generic 500.
package derrors

import (
	"errors"
	"fmt"
	"time"
)

// The kinds. Each is a sentinel so callers can test with errors.Is.
var (
	// NotFound: the thing asked for does not exist (404).
	NotFound = errors.New("not found")
	// Invalid: the request is malformed or breaks a rule (400).
	Invalid = errors.New("invalid")
	// Conflict: the request clashes with existing state (409).
	Conflict = errors.New("conflict")
	// Unauthenticated: no valid credentials were presented (401/403).
	Unauthenticated = errors.New("unauthenticated")
	// Forbidden: the caller is known but not allowed (403).
	Forbidden = errors.New("forbidden")
	// TooLarge: a size limit was exceeded (413 or 400 for uploads).
	TooLarge = errors.New("too large")
	// Unsupported: the request body is of a type the route does not take (415).
	Unsupported = errors.New("unsupported media type")
	// TooSlow: the client sent its request too slowly and was cut off (408).
	TooSlow = errors.New("too slow")
	// RateLimited: too many attempts; try again later (429).
	RateLimited = errors.New("rate limited")
	// Gone: the action existed once and is no longer supported (410).
	Gone = errors.New("gone")
	// Unavailable: the service cannot do this now, e.g. read-only mode or
	// the database unreachable (503/403).
	Unavailable = errors.New("unavailable")
	// NoSpace: the server's disk is full; nothing was stored (507).
	NoSpace = errors.New("insufficient storage")
)

// Error is a user-facing message attached to a kind.
type Error struct {
	Kind error
	Msg  string
	// RetryAfter is set on a RateLimited error made by Limited: how long
	// until the next attempt would be allowed (the Retry-After header).
	RetryAfter time.Duration
	// Field names the form field the message is about, when there is one
	// (see InField), so that a page can show it next to that field.
	Field string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// New returns an error of the given kind whose message is shown to users as is.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Limited returns a RateLimited error whose message is shown to users as
// is and which asks them to wait retryAfter before trying again.
func Limited(retryAfter time.Duration, format string, args ...any) error {
	return &Error{Kind: RateLimited, Msg: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// InField returns an error of the given kind about one form field: pages
// show the message next to the field named field.
func InField(kind error, field, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Field: field}
}

// FieldOf returns the form field err is about, "" when it names none.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Message returns the user-facing message of err if it carries a kind, and
// ok=false for internal errors whose text must not be shown.
func Message(err error) (msg string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg, true
	}
	return "", false
}

// RetryAfter returns how long a rate-limited err asks the client to wait,
// and ok=false when err says nothing about it.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Wrap adds context to *errp, if non-nil, keeping its kind. Use it deferred:
//
//	defer derrors.Wrap(&err, "project.Create(%q)", name)
func Wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}

package derrors

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestLimitedCarriesKindMessageAndWait(t *testing.T) {
	var err error = Limited(90*time.Second, "Too many attempts from %s.", "192.0.2.1")
	Wrap(&err, "account.Login(%q)", "alice")

	if !errors.Is(err, RateLimited) {
		t.Errorf("kind: %v is not RateLimited", err)
	}
	if msg, ok := Message(err); !ok || msg != "Too many attempts from 192.0.2.1." {
		t.Errorf("Message = %q, %v", msg, ok)
	}
	if wait, ok := RetryAfter(err); !ok || wait != 90*time.Second {
		t.Errorf("RetryAfter = %v, %v, want 1m30s", wait, ok)
	}
}

func TestRetryAfterOnlyForLimited(t *testing.T) {
	for _, err := range []error{
		New(RateLimited, "Try again later."), // a kind without a wait
		New(Invalid, "The name is invalid."),
		errors.New("disk full"),
		nil,
	} {
		if wait, ok := RetryAfter(err); ok {
			t.Errorf("RetryAfter(%v) = %v, true; want false", err, wait)
		}
	}
}

// messenger has a Message method but no kind: its text is internal and must
// not reach users.
type messenger struct{}

func (messenger) Error() string   { return "internal detail" }
func (messenger) Message() string { return "internal detail" }

func TestMessageOnlyFromKinds(t *testing.T) {
	if msg, ok := Message(fmt.Errorf("wrapped: %w", messenger{})); ok {
		t.Errorf("Message of an error without a kind = %q, true; want false", msg)
	}
}

func TestInFieldCarriesTheField(t *testing.T) {
	var err error = InField(Invalid, "confirm_project_name", "Type %q to confirm.", "demo")
	Wrap(&err, "project.Delete")
	if !errors.Is(err, Invalid) {
		t.Errorf("kind: %v is not Invalid", err)
	}
	if got := FieldOf(err); got != "confirm_project_name" {
		t.Errorf("FieldOf = %q, want confirm_project_name", got)
	}
	if msg, _ := Message(err); msg != `Type "demo" to confirm.` {
		t.Errorf("Message = %q", msg)
	}
	for _, other := range []error{New(Invalid, "x"), errors.New("internal"), nil} {
		if got := FieldOf(other); got != "" {
			t.Errorf("FieldOf(%v) = %q, want none", other, got)
		}
	}
}

func TestInFieldNamesItsField(t *testing.T) {
	err := fmt.Errorf("token.Create: %w", InField(Conflict, "description", "API token name %q already in use", "laptop"))
	if !errors.Is(err, Conflict) {
		t.Errorf("errors.Is(%v, Conflict) = false", err)
	}
	if got := FieldOf(err); got != "description" {
		t.Errorf("FieldOf = %q, want description", got)
	}
	if msg, _ := Message(err); msg != `API token name "laptop" already in use` {
		t.Errorf("Message = %q", msg)
	}
	if got := FieldOf(New(Invalid, "whole form")); got != "" {
		t.Errorf("FieldOf(New(…)) = %q, want \"\"", got)
	}
	if got := FieldOf(errors.New("internal")); got != "" {
		t.Errorf("FieldOf(internal) = %q, want \"\"", got)
	}
}

package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Caveat tags, as assigned by Warehouse (warehouse/macaroons/caveats). The
// numbers are part of the wire format: a token minted by PyPI's code or
// attenuated with pypitoken uses the same ones.
const (
	tagExpiration  = 0 // [0, expires_at, not_before], unix seconds
	tagProjectName = 1 // [1, ["normalized-name", ...]]
	tagProjectID   = 2 // [2, ["<project id>", ...]]
	tagRequestUser = 3 // [3, "<user id>"]
	tagPublisher   = 4 // [4, "<trusted publisher id>"] (Warehouse's OIDCPublisher)

	// tagReadOnly is ours: [100] makes a token one that reads (installs)
	// and never uploads (--read-access authenticated). Warehouse knows no
	// such tag and would refuse the token, which is right: it is not
	// PyPI's.
	tagReadOnly = 100

	// tagLegacyUser is ours, never serialized: Warehouse's old
	// {"version":1,"permissions":"user"} caveat, which it adapts to
	// "RequestUser with the id of the user the token belongs to" and which
	// therefore holds whenever a user is identified.
	tagLegacyUser = -1
)

// Failure reasons. They are Warehouse's texts, so that the messages twine
// prints ("Invalid API Token: …") read the same as on PyPI.
const (
	reasonExpired        = "token is expired"
	reasonNoProject      = "project-scoped token used outside of a project context"
	reasonWrongUser      = "current user does not match user restriction in token"
	reasonWrongPublisher = "current identity does not match the trusted publisher restriction in token"
	reasonNotPublished   = "project is not one of the trusted publisher's projects: '%s'"
	reasonNotArray       = "caveat must be an array"
	reasonEmptyArray     = "caveat array cannot be empty"
	reasonNotEnough      = "Not enough values"
	reasonInvalidFields  = "invalid values for fields"
	reasonInvalidJSON    = "caveat is not valid JSON"
	reasonSignatures     = "signatures do not match"
	reasonProjectPattern = "project-scoped token is not valid for project: '%s'"
)

// caveat is one parsed first-party caveat. Only the fields of its tag are set.
type caveat struct {
	tag                  int
	expiresAt, notBefore int64    // tagExpiration
	values               []string // tagProjectName (names), tagProjectID (ids)
	userID               string   // tagRequestUser
	publisherID          string   // tagPublisher
}

// caveatError is a caveat that could not be parsed. Its text is the failure
// reason shown to the client.
type caveatError string

func (e caveatError) Error() string { return string(e) }

// parseCaveat parses a first-party caveat the way Warehouse's
// caveats.deserialize does: a compact JSON array [tag, fields…], or one of
// the legacy JSON objects, which are adapted to an array first.
//
// It is stricter than Warehouse in two ways, both failing closed: integers
// must be JSON integers that fit in 64 bits, and an array with more values
// than its tag has fields is refused (Warehouse ignores the extra values, so
// a client who meant them to narrow the token would silently get less than
// it asked for).
func parseCaveat(data []byte) (caveat, error) {
	if !utf8.Valid(data) {
		return caveat{}, caveatError(reasonInvalidJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep integers exact; 1.0 and 1e0 are not StrictInts
	var v any
	if err := dec.Decode(&v); err != nil {
		return caveat{}, caveatError(reasonInvalidJSON)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return caveat{}, caveatError(reasonInvalidJSON) // trailing data
	}
	if obj, ok := v.(map[string]any); ok {
		var legacyUser bool
		v, legacyUser = adaptLegacy(obj)
		if legacyUser {
			return caveat{tag: tagLegacyUser}, nil
		}
		if v == nil {
			return caveat{}, caveatError(reasonNotArray)
		}
	}
	arr, ok := v.([]any)
	if !ok {
		return caveat{}, caveatError(reasonNotArray)
	}
	if len(arr) == 0 {
		return caveat{}, caveatError(reasonEmptyArray)
	}
	tag, ok := jsonInt(arr[0])
	if !ok {
		return caveat{}, unknownTag(arr[0])
	}
	fields := arr[1:]
	var n int
	switch tag {
	case tagExpiration:
		n = 2
	case tagProjectName, tagProjectID, tagRequestUser, tagPublisher:
		n = 1
	case tagReadOnly:
		n = 0
	default:
		return caveat{}, unknownTag(arr[0])
	}
	if len(fields) < n {
		return caveat{}, caveatError(reasonNotEnough)
	}
	if len(fields) > n {
		return caveat{}, caveatError(reasonInvalidFields)
	}
	c := caveat{tag: int(tag)}
	switch tag {
	case tagExpiration:
		exp, ok1 := jsonInt(fields[0])
		nbf, ok2 := jsonInt(fields[1])
		if !ok1 || !ok2 {
			return caveat{}, caveatError(reasonInvalidFields)
		}
		c.expiresAt, c.notBefore = exp, nbf
	case tagProjectName, tagProjectID:
		list, ok := fields[0].([]any)
		if !ok {
			return caveat{}, caveatError(reasonInvalidFields)
		}
		c.values = make([]string, 0, len(list))
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return caveat{}, caveatError(reasonInvalidFields)
			}
			c.values = append(c.values, s)
		}
	case tagRequestUser:
		s, ok := fields[0].(string)
		if !ok {
			return caveat{}, caveatError(reasonInvalidFields)
		}
		c.userID = s
	case tagPublisher:
		s, ok := fields[0].(string)
		if !ok {
			return caveat{}, caveatError(reasonInvalidFields)
		}
		c.publisherID = s
	}
	return c, nil
}

// adaptLegacy turns Warehouse's pre-2022 object caveats into the array form,
// following warehouse/macaroons/caveats/_legacy.py, or returns nil if the
// object is none of them. Tokens made before that change, and clients that
// still write these forms, keep working. legacyUser reports the
// {"version":1,"permissions":"user"} form, which has no array equivalent
// (Warehouse fills in the current user's id).
func adaptLegacy(obj map[string]any) (v any, legacyUser bool) {
	if version, ok := jsonInt(obj["version"]); ok && version == 1 {
		switch p := obj["permissions"].(type) {
		case string:
			if p == "user" {
				return nil, true
			}
		case map[string]any:
			if projects, ok := p["projects"]; ok {
				return []any{json.Number(strconv.Itoa(tagProjectName)), projects}, false
			}
		}
		return nil, false
	}
	exp, hasExp := obj["exp"]
	nbf, hasNbf := obj["nbf"]
	if hasExp && hasNbf {
		return []any{json.Number(strconv.Itoa(tagExpiration)), exp, nbf}, false
	}
	if ids, ok := obj["project_ids"]; ok {
		return []any{json.Number(strconv.Itoa(tagProjectID)), ids}, false
	}
	return nil, false
}

// jsonInt returns v as an int64 if it is a JSON integer literal.
func jsonInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// unknownTag is the failure for a tag no caveat type has. Our internal
// tagLegacyUser is unknown on the wire too.
func unknownTag(tag any) error {
	switch t := tag.(type) {
	case string:
		return caveatError("caveat has unknown tag: " + t)
	case json.Number:
		return caveatError("caveat has unknown tag: " + string(t))
	}
	b, _ := json.Marshal(tag)
	return caveatError("caveat has unknown tag: " + string(b))
}

// isProjectScoped reports whether the caveat limits the token to projects.
// A publisher's token is limited to the publisher's projects.
func (c caveat) isProjectScoped() bool {
	return c.tag == tagProjectName || c.tag == tagProjectID || c.tag == tagPublisher
}

// checkRequest checks the caveats that need no project: expiry, user and
// publisher. It returns "" when the caveat holds (or is checked per project
// instead). userID is the user the token belongs to and publisherID the
// trusted publisher it was minted for (0 when it is not such a token), which
// is always the identity of a request that presents it.
func (c caveat) checkRequest(userID, publisherID int64, now time.Time) string {
	switch c.tag {
	case tagExpiration:
		t := now.Unix()
		if t < c.notBefore || t >= c.expiresAt {
			return reasonExpired
		}
	case tagRequestUser:
		if userID == 0 || c.userID != strconv.FormatInt(userID, 10) {
			return reasonWrongUser
		}
	case tagLegacyUser:
		// "The user the token belongs to": a publisher's token has none.
		if userID == 0 {
			return reasonWrongUser
		}
	case tagPublisher:
		if publisherID == 0 || c.publisherID != strconv.FormatInt(publisherID, 10) {
			return reasonWrongPublisher
		}
	}
	return ""
}

// checkProject checks a project caveat against the project a request acts
// on; other caveats hold. Both name and id caveats report the same reason,
// as in Warehouse.
func (c caveat) checkProject(normalizedName string, projectID int64) string {
	var want string
	switch c.tag {
	case tagProjectName:
		want = normalizedName
	case tagProjectID:
		want = strconv.FormatInt(projectID, 10)
	default:
		return ""
	}
	for _, v := range c.values {
		if v == want {
			return ""
		}
	}
	return fmt.Sprintf(reasonProjectPattern, normalizedName)
}

// Serialized caveats, as Warehouse writes them: json.dumps(…, sort_keys=True,
// separators=(",", ":")). encoding/json writes arrays with no spaces, and
// HTML escaping is turned off so that the bytes are Python's (the values are
// ASCII names and digits, where both agree anyway).

func expirationCaveat(expiresAt, notBefore int64) string {
	return marshalCaveat([]any{tagExpiration, expiresAt, notBefore})
}

func projectNameCaveat(names []string) string {
	return marshalCaveat([]any{tagProjectName, names})
}

func projectIDCaveat(ids []string) string {
	return marshalCaveat([]any{tagProjectID, ids})
}

func publisherCaveat(publisherID int64) string {
	return marshalCaveat([]any{tagPublisher, strconv.FormatInt(publisherID, 10)})
}

func readOnlyCaveat() string { return marshalCaveat([]any{tagReadOnly}) }

func requestUserCaveat(userID int64) string {
	return marshalCaveat([]any{tagRequestUser, strconv.FormatInt(userID, 10)})
}

func marshalCaveat(v []any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only ints and strings are passed in, which always encode.
		panic("token: cannot encode caveat: " + err.Error())
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

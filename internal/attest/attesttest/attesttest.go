// Package attesttest makes real PEP 740 attestations for tests, signed by
// sigstore-go's virtual Sigstore (a Fulcio-like CA and a Rekor-like log).
package attesttest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// GitHubIssuer is the issuer Fulcio names for GitHub Actions tokens.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Sigstore is one virtual Sigstore deployment.
type Sigstore struct{ vs *ca.VirtualSigstore }

// New starts a virtual Sigstore with fresh keys.
func New() (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, err
	}
	return &Sigstore{vs: vs}, nil
}

// Trusted is the deployment as trusted material, without its
// certificate transparency log: the virtual CA's certificates carry no
// SCTs, so this is a private deployment run without CT, whose
// attestations are verified without SCTs (internal/attest asks for one
// only when the root lists CT logs).
func (s *Sigstore) Trusted() root.TrustedMaterial { return withoutCT{s.vs} }

// TrustedWithCT is the deployment with its CT log listed: every
// attestation it signs then lacks the SCT such a root demands.
func (s *Sigstore) TrustedWithCT() root.TrustedMaterial { return s.vs }

type withoutCT struct{ root.TrustedMaterial }

func (withoutCT) CTLogs() map[string]*root.TransparencyLog { return nil }

// WriteTrustedRoot writes the deployment's trusted_root.json into dir,
// for --sigstore-trusted-root, and returns its path.
func (s *Sigstore) WriteTrustedRoot(dir string) (string, error) {
	// The virtual logs' IDs are their hex key ids as bytes; a trusted
	// root file names a log by the raw id, from which the reader derives
	// the hex one again.
	rawIDs := func(logs map[string]*root.TransparencyLog) (map[string]*root.TransparencyLog, error) {
		out := make(map[string]*root.TransparencyLog, len(logs))
		for k, l := range logs {
			id, err := hex.DecodeString(k)
			if err != nil {
				return nil, err
			}
			c := *l
			c.ID = id
			out[k] = &c
		}
		return out, nil
	}
	rekor, err := rawIDs(s.vs.RekorLogs())
	if err != nil {
		return "", err
	}
	// No CT log: see Trusted.
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, s.vs.FulcioCertificateAuthorities(), nil, s.vs.TimestampingAuthorities(), rekor)
	if err != nil {
		return "", err
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "trusted_root.json")
	return p, os.WriteFile(p, b, 0o600)
}

// Statement is what is signed; Subject* name the file.
type Statement struct {
	SubjectName   string
	SubjectSHA256 string
	PredicateType string
}

// GitHubIdentity is the SAN Fulcio gives a GitHub workflow run.
func GitHubIdentity(repository, workflow string) string {
	return fmt.Sprintf("https://github.com/%s/.github/workflows/%s@refs/heads/main", repository, workflow)
}

// Sign makes one attestation (the JSON object of the upload field) signed
// by identity/issuer, logged at integratedTime. The virtual CA's
// certificate is valid from now for ten minutes: an integratedTime
// outside that window is an expired certificate with no valid timestamp.
func (s *Sigstore) Sign(st Statement, identity, issuer string, integratedTime time.Time) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": st.SubjectName, "digest": map[string]string{"sha256": st.SubjectSHA256}}},
		"predicateType": st.PredicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		return nil, err
	}
	te, err := s.vs.AttestAtTime(identity, issuer, body, integratedTime, true)
	if err != nil {
		return nil, err
	}
	vc, err := te.VerificationContent()
	if err != nil {
		return nil, err
	}
	cert := vc.(*bundle.Certificate).Certificate()
	sc, err := te.SignatureContent()
	if err != nil {
		return nil, err
	}
	env := sc.(*bundle.Envelope).Envelope
	entries, err := te.TlogEntries()
	if err != nil {
		return nil, err
	}
	tleJSON, err := s.entryJSON(entries[0], cert)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"version": 1,
		"verification_material": map[string]any{
			"certificate":          base64.StdEncoding.EncodeToString(cert.Raw),
			"transparency_entries": []json.RawMessage{tleJSON},
		},
		"envelope": map[string]any{"statement": env.Payload, "signature": env.Signatures[0].Sig},
	})
}

// entryJSON completes the log entry as Rekor returns it: the kind and
// the signed entry timestamp, which the virtual log keeps to itself, so
// it signs the same payload again.
func (s *Sigstore) entryJSON(e *tlog.Entry, _ *x509.Certificate) ([]byte, error) {
	tle := e.TransparencyLogEntry()
	logID, err := s.vs.RekorLogID()
	if err != nil {
		return nil, err
	}
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          logID,
	})
	if err != nil {
		return nil, err
	}
	if _, err := hex.DecodeString(logID); err != nil {
		return nil, err
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	if tle.LogId == nil {
		tle.LogId = &protocommon.LogId{}
	}
	return protojson.Marshal(tle)
}

// Array is the upload field for atts.
func Array(atts ...json.RawMessage) string {
	b, _ := json.Marshal(atts)
	return string(b)
}

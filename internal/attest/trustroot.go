package attest

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// publicGoodRoot is the Sigstore public-good trusted root, shipped so an
// air-gapped instance verifies GitHub-made attestations. It is the
// trusted_root.json target of Sigstore's TUF repository as vendored by
// github.com/sigstore/sigstore v1.10.8 (pkg/tuf/repository/targets);
// docs/trusted-publishing.md says how to refresh it.
//
//go:embed public_good_trusted_root.json
var publicGoodRoot []byte

// LoadTrustedRoot reads path, or the embedded public-good root when path
// is empty.
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	if path == "" {
		return root.NewTrustedRootFromJSON(publicGoodRoot)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the Sigstore trusted root: %w", err)
	}
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Sigstore trusted root (trusted_root.json): %w", path, err)
	}
	return tr, nil
}

package tlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// algEd25519 is the note signature type of Ed25519 keys.
const algEd25519 = 1

// ParseSignerKey parses a note private key ("PRIVATE+KEY+name+hash+key", as
// written by GenerateKey) and returns its signer and the matching verifier
// key text.
func ParseSignerKey(skey string) (note.Signer, string, error) {
	s, err := note.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, "", fmt.Errorf("tlog: parse signer key: %w", err)
	}
	// NewSigner accepted the key, so it has the expected five fields.
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algEd25519 {
		return nil, "", fmt.Errorf("tlog: parse signer key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", fmt.Errorf("tlog: derive verifier key: %w", err)
	}
	return s, vkey, nil
}

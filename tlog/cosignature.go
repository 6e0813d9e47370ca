package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// C2SP tlog-cosignature, Ed25519 flavour: a cosignature is a note signature
// line on a checkpoint whose signature is an 8-byte big-endian timestamp
// followed by an Ed25519 signature over
//
//	cosignature/v1
//	time <timestamp>
//	<the checkpoint body>
//
// and whose key ID is SHA-256(name || "\n" || 0x04 || public key)[:4].

// algCosignatureV1 is the signature type of Ed25519 cosigner keys.
const algCosignatureV1 = 4

// cosignatureSize is the length of a cosignature: timestamp and signature.
const cosignatureSize = 8 + ed25519.SignatureSize

// ErrMalformedKey is returned for key text that is not a well-formed note or
// cosigner key.
var ErrMalformedKey = errors.New("tlog: malformed key")

// Cosigner makes C2SP cosignature/v1 cosignatures. It is a note.Signer:
// note.Sign with it appends a cosignature line to a checkpoint.
type Cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

// NewCosigner returns a cosigner named name signing with key. now gives the
// timestamp of each cosignature (time.Now when nil).
func NewCosigner(name string, key ed25519.PrivateKey, now func() time.Time) (*Cosigner, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: cosigner name %q must be non-empty, without spaces or '+'", ErrMalformedKey, name)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrMalformedKey, len(key))
	}
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Cosigner{name: name, hash: cosignerKeyHash(name, pub), key: key, now: now}, nil
}

// Name returns the cosigner's name.
func (c *Cosigner) Name() string { return c.name }

// KeyHash returns the cosigner's key ID.
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// Sign returns a timestamped cosignature of the note text msg.
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	t := c.now().Unix()
	if t <= 0 {
		return nil, fmt.Errorf("tlog: cosign: clock before 1970")
	}
	sig := make([]byte, 8, cosignatureSize)
	binary.BigEndian.PutUint64(sig, uint64(t))
	return append(sig, ed25519.Sign(c.key, cosignedMessage(uint64(t), msg))...), nil
}

// VerifierKey returns the cosigner's verifier key text,
// "name+hash+base64(0x04 || public key)".
func (c *Cosigner) VerifierKey() string {
	return cosignerVerifierKey(c.name, c.key.Public().(ed25519.PublicKey))
}

// Verifier returns the verifier of the cosigner's cosignatures.
func (c *Cosigner) Verifier() *CosignatureVerifier {
	return &CosignatureVerifier{name: c.name, hash: c.hash, pub: c.key.Public().(ed25519.PublicKey)}
}

// CosignatureVerifier verifies C2SP cosignature/v1 cosignatures of one
// cosigner. It is a note.Verifier.
type CosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier parses a cosigner verifier key,
// "name+hash+base64(0x04 || 32-byte Ed25519 public key)".
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, hash, key, err := splitKey(vkey)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 cosigner key (type 0x04)", ErrMalformedKey, name)
	}
	pub := ed25519.PublicKey(key[1:])
	if cosignerKeyHash(name, pub) != hash {
		return nil, fmt.Errorf("%w: key ID of %q does not match its key", ErrMalformedKey, name)
	}
	return &CosignatureVerifier{name: name, hash: hash, pub: pub}, nil
}

// Name returns the cosigner's name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash returns the cosigner's key ID.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify reports whether sig is a cosignature of the note text msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > math.MaxInt64 {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(t, msg), sig[8:])
}

// String returns the verifier key text.
func (v *CosignatureVerifier) String() string { return cosignerVerifierKey(v.name, v.pub) }

// CosignatureTime returns the timestamp of a cosignature line's signature
// (the base64 text after the name), without verifying it.
func CosignatureTime(sig note.Signature) (time.Time, error) {
	raw, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(raw) != 4+cosignatureSize {
		return time.Time{}, fmt.Errorf("tlog: cosignature by %q is not a cosignature/v1 signature", sig.Name)
	}
	t := binary.BigEndian.Uint64(raw[4:])
	if t > math.MaxInt64 {
		return time.Time{}, fmt.Errorf("tlog: cosignature by %q has a timestamp beyond 2^63-1", sig.Name)
	}
	return time.Unix(int64(t), 0).UTC(), nil
}

// GenerateCosignerKey returns a new cosigner private key text,
// "PRIVATE+KEY+name+hash+base64(0x04 || seed)", and its verifier key text.
func GenerateCosignerKey(name string, rand io.Reader) (skey, vkey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", "", fmt.Errorf("tlog: generate cosigner key: %w", err)
	}
	if !validKeyName(name) {
		return "", "", fmt.Errorf("%w: cosigner name %q must be non-empty, without spaces or '+'", ErrMalformedKey, name)
	}
	raw := append([]byte{algCosignatureV1}, priv.Seed()...)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, cosignerKeyHash(name, pub), base64.StdEncoding.EncodeToString(raw))
	return skey, cosignerVerifierKey(name, pub), nil
}

// ParseCosignerKey parses a cosigner private key text written by
// GenerateCosignerKey. now is as for NewCosigner.
func ParseCosignerKey(skey string, now func() time.Time) (*Cosigner, error) {
	s := strings.TrimSpace(skey)
	rest, ok := strings.CutPrefix(s, "PRIVATE+KEY+")
	if !ok {
		return nil, fmt.Errorf("%w: a cosigner private key starts with PRIVATE+KEY+", ErrMalformedKey)
	}
	name, hash, key, err := splitKey(rest)
	if err != nil {
		return nil, err
	}
	if len(key) != 1+ed25519.SeedSize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: %q is not an Ed25519 cosigner private key (type 0x04)", ErrMalformedKey, name)
	}
	priv := ed25519.NewKeyFromSeed(key[1:])
	if cosignerKeyHash(name, priv.Public().(ed25519.PublicKey)) != hash {
		return nil, fmt.Errorf("%w: key ID of %q does not match its key", ErrMalformedKey, name)
	}
	return NewCosigner(name, priv, now)
}

// splitKey splits "name+hash+base64" into its parts, checking each.
func splitKey(k string) (name string, hash uint32, key []byte, err error) {
	parts := strings.SplitN(k, "+", 3)
	if len(parts) != 3 {
		return "", 0, nil, fmt.Errorf("%w: want name+hash+key", ErrMalformedKey)
	}
	name = parts[0]
	if !validKeyName(name) {
		return "", 0, nil, fmt.Errorf("%w: key name %q must be non-empty, without spaces or '+'", ErrMalformedKey, name)
	}
	h, err := hex.DecodeString(parts[1])
	if err != nil || len(h) != 4 || hex.EncodeToString(h) != parts[1] {
		return "", 0, nil, fmt.Errorf("%w: key ID of %q must be 8 lower-case hex digits", ErrMalformedKey, name)
	}
	key, err = base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: key of %q is not base64", ErrMalformedKey, name)
	}
	return name, binary.BigEndian.Uint32(h), key, nil
}

func cosignerKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosignerVerifierKey(name string, pub ed25519.PublicKey) string {
	raw := append([]byte{algCosignatureV1}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, cosignerKeyHash(name, pub), base64.StdEncoding.EncodeToString(raw))
}

func cosignedMessage(t uint64, text []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t), text...)
}

// validKeyName follows the signed-note rule for key names: non-empty, valid
// UTF-8, no Unicode spaces and no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

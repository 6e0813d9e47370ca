package tlog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrMalformedCheckpoint is returned for checkpoint text that does not follow
// C2SP tlog-checkpoint exactly.
var ErrMalformedCheckpoint = errors.New("tlog: malformed checkpoint")

// ErrCheckpointSignature is returned when a checkpoint is not signed by the
// expected key.
var ErrCheckpointSignature = errors.New("tlog: checkpoint signature not verified")

// Checkpoint is the body of a C2SP tlog-checkpoint: the log origin, the tree
// size and the root hash. tlogd writes no extension lines.
type Checkpoint struct {
	// Origin identifies the log; it is also the name of the note key.
	Origin string
	// Size is the number of leaves in the tree.
	Size uint64
	// Root is the RFC 6962 root hash of the first Size leaves.
	Root Hash
}

// Marshal returns the checkpoint body: three lines, each ending in a newline.
func (c Checkpoint) Marshal() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, encodeHash(c.Root))
}

// ParseCheckpoint parses a checkpoint body strictly: a non-empty origin, a
// decimal size without sign or leading zeros, a canonical standard base64
// root of exactly 32 bytes, and no extension lines.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	s := string(text)
	if !strings.HasSuffix(s, "\n") {
		return c, fmt.Errorf("%w: body must end with a newline", ErrMalformedCheckpoint)
	}
	lines := strings.Split(s[:len(s)-1], "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("%w: want 3 lines, got %d", ErrMalformedCheckpoint, len(lines))
	}
	if len(lines) > 3 {
		return c, fmt.Errorf("%w: unexpected extension lines", ErrMalformedCheckpoint)
	}
	origin, size, root := lines[0], lines[1], lines[2]
	if err := checkOrigin(origin); err != nil {
		return c, err
	}
	n, err := parseSize(size)
	if err != nil {
		return c, err
	}
	h, err := base64.StdEncoding.Strict().DecodeString(root)
	if err != nil || len(h) != HashSize || encodeHash(Hash(h)) != root {
		return c, fmt.Errorf("%w: root must be 32 bytes in canonical base64", ErrMalformedCheckpoint)
	}
	c.Origin, c.Size = origin, n
	copy(c.Root[:], h)
	return c, nil
}

func checkOrigin(origin string) error {
	if origin == "" {
		return fmt.Errorf("%w: empty origin", ErrMalformedCheckpoint)
	}
	for _, r := range origin {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control character in origin", ErrMalformedCheckpoint)
		}
	}
	return nil
}

func parseSize(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, fmt.Errorf("%w: size %q is not a canonical decimal", ErrMalformedCheckpoint, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: size %q is not a canonical decimal", ErrMalformedCheckpoint, s)
	}
	return n, nil
}

// SignCheckpoint returns c as a signed note. The signer's name must be the
// checkpoint origin.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("tlog: signer name %q is not the origin %q", s.Name(), c.Origin)
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, s)
	if err != nil {
		return nil, fmt.Errorf("tlog: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint against the log's verifier and
// parses its body strictly. The origin must equal the verifier's name.
// Signatures by other keys (cosignatures) are allowed and returned in the
// note's UnverifiedSigs.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, *note.Note, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("%w: %w", ErrCheckpointSignature, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, nil, fmt.Errorf("%w: origin %q is not the key name %q", ErrMalformedCheckpoint, c.Origin, v.Name())
	}
	return c, n, nil
}

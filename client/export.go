package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

// ExportFormat names the export file format: JSON lines, an ExportHeader
// first, then one ExportRecord per entry in index order.
const ExportFormat = "tlogd-export/v1"

// ExportHeader is the first line of an export. It holds the signed
// checkpoint the export is checked against and the inclusion proofs of its
// first and last entries in that tree, which with the entries themselves
// prove the whole range (tlog.VerifyRange).
type ExportHeader struct {
	Format string `json:"format"`
	// Origin is the log's origin.
	Origin string `json:"origin"`
	// VerifierKey is the key the exporter pinned; informational only:
	// whoever checks the export must use a key they trust.
	VerifierKey string `json:"verifier_key"`
	// Checkpoint is the signed checkpoint, as the log served it.
	Checkpoint string `json:"checkpoint"`
	// From and To delimit the entries [From, To).
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Payloads is true when every record carries its salt and payload.
	Payloads bool `json:"payloads"`
	// FirstProof and LastProof are the inclusion proofs of entries From and
	// To-1 in the checkpoint's tree.
	FirstProof [][]byte `json:"first_proof"`
	LastProof  [][]byte `json:"last_proof"`
}

// ExportRecord is one entry of an export.
type ExportRecord struct {
	Index   uint64 `json:"index"`
	Entry   []byte `json:"entry"`
	Salt    []byte `json:"salt,omitempty"`
	Payload []byte `json:"payload,omitempty"`
	// ErasedBy, in an export with payloads, is the index of the erasure
	// record of an erased payload.
	ErasedBy *uint64 `json:"erased_by,omitempty"`
}

// Export writes the entries [from, to) of the tree of cp (to 0 means
// cp.Size) to w as an export file, every entry verified on the way (see
// Entries). progress, if not nil, is called with the number of entries
// written so far. With payloads, the read needs the read_payloads
// capability and is recorded in the log.
func (c *Client) Export(ctx context.Context, w io.Writer, cp Checkpoint, from, to uint64, withPayloads bool, progress func(done uint64)) error {
	if to == 0 {
		to = cp.Size
	}
	if from >= to || to > cp.Size {
		return fmt.Errorf("client: export range [%d, %d) is not inside the tree of size %d", from, to, cp.Size)
	}
	first, err := c.InclusionProof(ctx, from, cp.Size)
	if err != nil {
		return err
	}
	last, err := c.InclusionProof(ctx, to-1, cp.Size)
	if err != nil {
		return err
	}
	h := ExportHeader{Format: ExportFormat, Origin: cp.Origin, VerifierKey: c.vkey, Checkpoint: string(cp.Note),
		From: from, To: to, Payloads: withPayloads, FirstProof: hashSlices(first), LastProof: hashSlices(last)}
	bw := bufio.NewWriterSize(w, 1<<20)
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw.Write(hb)
	bw.WriteByte('\n')
	var line []byte
	for e, err := range c.Entries(ctx, cp, from, to, withPayloads) {
		if err != nil {
			return err
		}
		line = appendRecord(line[:0], e)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("client: write export: %w", err)
		}
		if progress != nil && (e.Index+1-from)%1000 == 0 {
			progress(e.Index + 1 - from)
		}
	}
	if progress != nil {
		progress(to - from)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("client: write export: %w", err)
	}
	return nil
}

// appendRecord appends e as an ExportRecord JSON line; the same bytes
// encoding/json writes, without its reflection.
func appendRecord(b []byte, e Entry) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, e.Index, 10)
	field := func(name string, v []byte) {
		if len(v) == 0 {
			return
		}
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":"`...)
		b = base64.StdEncoding.AppendEncode(b, v)
		b = append(b, '"')
	}
	field("entry", e.Entry)
	field("salt", e.Salt)
	field("payload", e.Payload)
	if e.Erased {
		b = append(b, `,"erased_by":`...)
		b = strconv.AppendUint(b, e.ErasedBy, 10)
	}
	return append(b, "}\n"...)
}

func hashSlices(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// ExportSummary describes a verified export.
type ExportSummary struct {
	Header     ExportHeader
	Checkpoint tlog.Checkpoint
	// First and Last are the log times of the first and last entries.
	First, Last time.Time
	// Erased is how many records' payloads were erased before the export.
	Erased int
}

// VerifyExport checks an export offline against the log's verifier key:
// the checkpoint's signature, that the records are exactly the entries
// [From, To) of its tree (tlog.VerifyRange with the header's two proofs),
// and, when the export has payloads, every payload against its entry's
// commitment. progress, if not nil, is called with the number of records
// read so far. Any failure wraps ErrVerification, except a read error.
func VerifyExport(r io.Reader, verifierKey string, progress func(done uint64)) (ExportSummary, error) {
	var sum ExportSummary
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return sum, fmt.Errorf("client: verifier key: %w", err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
	bad := func(what string, err error) (ExportSummary, error) { return sum, verifyErr("export "+what, err) }
	if !sc.Scan() {
		if sc.Err() != nil {
			return sum, fmt.Errorf("client: read export: %w", sc.Err())
		}
		return bad("header", errors.New("the file is empty"))
	}
	h := &sum.Header
	if err := strictJSON(sc.Bytes(), h); err != nil {
		return bad("header", err)
	}
	if h.Format != ExportFormat {
		return bad("header", fmt.Errorf("format %q, want %q", h.Format, ExportFormat))
	}
	cp, _, err := tlog.OpenCheckpoint([]byte(h.Checkpoint), v)
	if err != nil {
		return bad("checkpoint", err)
	}
	sum.Checkpoint = cp
	if h.Origin != cp.Origin {
		return bad("header", fmt.Errorf("origin %q is not the signed checkpoint's %q", h.Origin, cp.Origin))
	}
	if h.From >= h.To || h.To > cp.Size {
		return bad("header", fmt.Errorf("range [%d, %d) is not inside the tree of size %d", h.From, h.To, cp.Size))
	}
	first, err := hashes(h.FirstProof)
	if err != nil {
		return bad("first_proof", err)
	}
	last, err := hashes(h.LastProof)
	if err != nil {
		return bad("last_proof", err)
	}
	leaves := make([]tlog.Hash, 0, min(h.To-h.From, 1<<24))
	var rec ExportRecord
	for sc.Scan() {
		i := h.From + uint64(len(leaves))
		what := fmt.Sprintf("record %d", i)
		if i == h.To {
			return bad("records", fmt.Errorf("more records than the header's range [%d, %d)", h.From, h.To))
		}
		rec = ExportRecord{}
		if err := strictJSON(sc.Bytes(), &rec); err != nil {
			return bad(what, err)
		}
		if rec.Index != i {
			return bad(what, fmt.Errorf("the line holds index %d", rec.Index))
		}
		e, err := tlog.ParseEntry(rec.Entry)
		if err != nil {
			return bad(what, err)
		}
		if h.Payloads && rec.ErasedBy != nil {
			if rec.Salt != nil || rec.Payload != nil {
				return bad(what, errors.New("an erased record with a salt or payload"))
			}
			sum.Erased++
		} else if h.Payloads {
			if err := tlog.VerifyRecord(rec.Entry, rec.Salt, rec.Payload); err != nil {
				return bad(what+" commitment", err)
			}
		} else if rec.Salt != nil || rec.Payload != nil || rec.ErasedBy != nil {
			return bad(what, errors.New("a salt, payload or erasure in an export without payloads"))
		}
		t := time.UnixMilli(int64(e.Time))
		if i == h.From {
			sum.First = t
		}
		sum.Last = t
		leaves = append(leaves, tlog.LeafHash(rec.Entry))
		if progress != nil && len(leaves)%10000 == 0 {
			progress(uint64(len(leaves)))
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("client: read export at record %d: %w", h.From+uint64(len(leaves)), err)
	}
	if n := h.From + uint64(len(leaves)); n != h.To {
		return bad("records", fmt.Errorf("the records stop at %d, the header's range is [%d, %d)", n, h.From, h.To))
	}
	if progress != nil {
		progress(uint64(len(leaves)))
	}
	if err := tlog.VerifyRange(h.From, leaves, cp.Size, first, last, cp.Root); err != nil {
		return bad(fmt.Sprintf("records %d to %d", h.From, h.To-1), err)
	}
	return sum, nil
}

// strictJSON decodes one JSON object, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// Config configures a Client.
type Config struct {
	// Origin is the log's origin; checkpoints for any other log are refused.
	Origin string
	// VerifierKey is the log's note verifier key (vkey text), pinned: every
	// checkpoint must carry a valid signature by it.
	VerifierKey string
	// StatePath, if set, is a file where the latest trusted checkpoint is
	// kept across runs (written atomically: temp file, fsync, rename).
	StatePath string
	// Policy, if set, is a C2SP tlog-policy listing this log and its
	// witnesses: the latest checkpoint the client trusts (Update, and
	// CheckpointAt with size 0) is then the log's newest cosigned one, whose
	// cosignatures must meet the policy's quorum; Append waits for such a
	// checkpoint covering its records, and Prove proves against one, so its
	// bundle carries the cosignatures.
	Policy *tlog.Policy
}

// Checkpoint is a checkpoint whose signature has been verified.
type Checkpoint struct {
	tlog.Checkpoint
	// Note is the signed note, as the log served it.
	Note []byte
}

// Result is a verified Append result.
type Result struct {
	// Index is the record's leaf index (the first occurrence's for a
	// duplicate).
	Index uint64
	// Entry is the entry the leaf commits to; Time its log time.
	Entry []byte
	Time  time.Time
	// LeafHash is SHA-256(0x00 || Entry).
	LeafHash tlog.Hash
	// Salt opens the entry's commitment to the payload.
	Salt []byte
	// Duplicate is true when the payload was already in the log.
	Duplicate bool
	// Conflict is true for an audit event whose event id was recorded
	// before with other content: Index and Entry are the first event's,
	// Salt is empty, and no commitment could be checked.
	Conflict bool
	// Proof is the inclusion proof against the checkpoint Append returned.
	Proof []tlog.Hash
}

// Entry is a verified entry of the log.
type Entry struct {
	// Index is the leaf index.
	Index uint64
	// Entry is the entry bytes; Time its log time.
	Entry []byte
	Time  time.Time
	// LeafHash is SHA-256(0x00 || Entry).
	LeafHash tlog.Hash
	// Salt and Payload are set when payloads were asked for (and allowed);
	// the commitment has been checked.
	Salt, Payload []byte
	// Erased is set, when payloads were asked for, if the log erased them
	// (a lawful erasure); ErasedBy is the index of the erasure record. The
	// entry itself is still verified.
	Erased   bool
	ErasedBy uint64
}

// Client talks to a tlogd log and verifies everything it receives. It keeps
// the latest checkpoint it has verified (the trusted checkpoint) and checks
// every newer one for consistency with it. Safe for concurrent use.
type Client struct {
	api       tlogv1.LogServiceClient
	audit     tlogv1.AuditServiceClient
	verifier  note.Verifier
	vkey      string
	origin    string
	statePath string
	policy    *tlog.Policy

	mu      sync.Mutex
	trusted *Checkpoint
	perCall uint64 // entries per GetEntries call; 0 until asked
}

// New returns a client for the log reached through conn. With a StatePath
// holding a checkpoint from an earlier run, that checkpoint is verified and
// trusted.
func New(conn grpc.ClientConnInterface, cfg Config) (*Client, error) {
	v, err := note.NewVerifier(cfg.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("client: verifier key: %w", err)
	}
	if cfg.Origin == "" {
		cfg.Origin = v.Name()
	}
	if v.Name() != cfg.Origin {
		return nil, fmt.Errorf("client: the verifier key is for %q, not for the origin %q", v.Name(), cfg.Origin)
	}
	if cfg.Policy != nil {
		if pv, ok := cfg.Policy.Log(cfg.Origin); !ok || pv.KeyHash() != v.KeyHash() {
			return nil, fmt.Errorf("client: the witness policy does not list the log %s with this verifier key", cfg.Origin)
		}
	}
	c := &Client{api: tlogv1.NewLogServiceClient(conn), audit: tlogv1.NewAuditServiceClient(conn), verifier: v, vkey: cfg.VerifierKey, origin: cfg.Origin, statePath: cfg.StatePath, policy: cfg.Policy}
	if cfg.StatePath != "" {
		b, err := os.ReadFile(cfg.StatePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("client: read state: %w", err)
		default:
			cp, err := c.OpenCheckpoint(b)
			if err != nil {
				// A local file, not the log: not a verification failure.
				return nil, fmt.Errorf("client: state file %s: %v", cfg.StatePath, err)
			}
			c.trusted = &cp
		}
	}
	return c, nil
}

// OpenCheckpoint verifies a signed checkpoint against the pinned key and
// origin, parsing it strictly.
func (c *Client) OpenCheckpoint(signed []byte) (Checkpoint, error) {
	cp, _, err := tlog.OpenCheckpoint(signed, c.verifier)
	if err != nil {
		return Checkpoint{}, verifyErr("checkpoint", err)
	}
	if cp.Origin != c.origin {
		return Checkpoint{}, verifyErr("checkpoint", fmt.Errorf("origin %q, want %q", cp.Origin, c.origin))
	}
	return Checkpoint{Checkpoint: cp, Note: append([]byte(nil), signed...)}, nil
}

// Trusted returns the latest checkpoint the client has verified, if any.
func (c *Client) Trusted() (Checkpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trusted == nil {
		return Checkpoint{}, false
	}
	return *c.trusted, true
}

// Update fetches the latest checkpoint, verifies it and its consistency
// with the trusted one, and trusts it.
func (c *Client) Update(ctx context.Context) (Checkpoint, error) {
	cp, err := c.CheckpointAt(ctx, 0)
	if err != nil {
		return Checkpoint{}, err
	}
	if err := c.accept(ctx, nil, cp, nil); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// CheckpointAt fetches the checkpoint the log signed at exactly size (the
// latest with size 0), verifies its signature and its consistency with the
// trusted checkpoint, and returns it without trusting it: see Trust. A
// latest checkpoint smaller than the one trusted when the call was sent is
// a rollback: an *InconsistencyError.
//
// With a witness policy, the latest checkpoint is the log's newest cosigned
// one, and its cosignatures must meet the policy's quorum.
func (c *Client) CheckpointAt(ctx context.Context, size uint64) (Checkpoint, error) {
	base, hadBase := c.Trusted()
	resp, err := c.api.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{TreeSize: size})
	if err != nil {
		return Checkpoint{}, fmt.Errorf("client: get checkpoint: %w", err)
	}
	signed := resp.GetCheckpoint()
	if c.policy != nil && size == 0 {
		if signed = resp.GetCosignedCheckpoint(); signed == "" {
			return Checkpoint{}, errors.New("client: the log has no checkpoint cosigned by the witness policy's quorum yet (is tlogd running with -witness-policy, and its witnesses up?)")
		}
	}
	cp, err := c.OpenCheckpoint([]byte(signed))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.policy != nil && size == 0 {
		if err := c.checkQuorum(cp); err != nil {
			return Checkpoint{}, err
		}
	}
	if size != 0 && cp.Size != size {
		return Checkpoint{}, verifyErr(fmt.Sprintf("checkpoint at size %d", size), fmt.Errorf("the log sent size %d", cp.Size))
	}
	if !hadBase {
		return cp, nil
	}
	if size == 0 && cp.Size < base.Size {
		return Checkpoint{}, rollback(base, cp)
	}
	if err := c.VerifyConsistency(ctx, base, cp); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// checkQuorum checks that cp's note carries cosignatures meeting the
// witness policy's quorum.
func (c *Client) checkQuorum(cp Checkpoint) error {
	if _, _, _, err := c.policy.Open(cp.Note); err != nil {
		return verifyErr(fmt.Sprintf("cosignatures of the checkpoint of size %d", cp.Size), err)
	}
	return nil
}

func rollback(old, cp Checkpoint) error {
	return &InconsistencyError{Old: old, New: cp, Err: fmt.Errorf("the log presented tree size %d after %d (rolled back)", cp.Size, old.Size)}
}

// Trust makes cp, a verified checkpoint, the trusted one (and saves it to
// the state file) if it is newer, after checking that it is consistent with
// the one trusted now (in whichever order they come). Callers that check
// more before trusting (tlogctl monitor recomputes the root from every
// entry) fetch with CheckpointAt and then Trust.
func (c *Client) Trust(ctx context.Context, cp Checkpoint) error {
	return c.accept(ctx, nil, cp, nil)
}

// accept reconciles cp, a verified checkpoint the log returned for a call
// sent while base was trusted (nil if none, or not known), with the
// checkpoint trusted now, and trusts cp if it is newer. known, if not nil,
// is the consistency proof from base to cp that came with the answer.
//
// Calls run concurrently, so an answer may be older than the checkpoint
// trusted now without any rollback: then cp is checked to be a prefix of
// it. If the log refuses the proofs this needs (a caller with the append
// capability only), cp has still been checked against base, and the
// trusted checkpoint stays as it is.
func (c *Client) accept(ctx context.Context, base *Checkpoint, cp Checkpoint, known []tlog.Hash) error {
	if base != nil {
		switch {
		case cp.Size < base.Size:
			return rollback(*base, cp)
		case known != nil:
			if err := c.checkProof(ctx, *base, cp, known); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.trusted
	if old != nil && !(base != nil && known != nil && old.Size == base.Size) {
		err := c.VerifyConsistency(ctx, *old, cp)
		if status.Code(err) == codes.PermissionDenied && base != nil {
			return nil // checked against base; see above
		}
		if err != nil {
			return err
		}
	}
	if old != nil && cp.Size <= old.Size {
		return nil
	}
	if c.statePath != "" {
		if err := WriteFileAtomic(c.statePath, cp.Note); err != nil {
			return fmt.Errorf("client: save trusted checkpoint: %w", err)
		}
	}
	c.trusted = &cp
	return nil
}

// checkConsistent verifies that cp is consistent with old, which is not
// larger: the same tree, or a tree extending it, proven by the log.
func (c *Client) checkConsistent(ctx context.Context, old, cp Checkpoint) error {
	if cp.Size == old.Size {
		if cp.Root != old.Root {
			return &InconsistencyError{Old: old, New: cp, Err: errors.New("same tree size, different roots")}
		}
		return nil
	}
	p, err := c.ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		return err
	}
	return c.checkProof(ctx, old, cp, p)
}

// checkProof verifies the consistency proof p from old to cp (old.Size <
// cp.Size, or equal with p empty). On failure it asks the log for the
// proof that makes the evidence stand on its own (see InconsistencyError).
func (c *Client) checkProof(ctx context.Context, old, cp Checkpoint, p []tlog.Hash) error {
	if old.Size == cp.Size {
		return c.checkConsistent(ctx, old, cp)
	}
	err := tlog.VerifyConsistency(old.Size, cp.Size, p, old.Root, cp.Root)
	if err == nil {
		return nil
	}
	ie := &InconsistencyError{Old: old, New: cp, Proof: p, Err: err}
	if old.Size == 0 {
		return ie
	}
	// The inclusion proof of leaf old.Size in cp's tree shows the root cp's
	// tree has at old.Size, authenticated by cp's signed root.
	leaf, prefix, err := c.prefixProof(ctx, old.Size, cp)
	if err != nil {
		return ie // the consistency proof alone will have to do
	}
	root, err := tlog.PrefixRoot(old.Size, cp.Size, leaf, prefix, cp.Root)
	switch {
	case err != nil:
		return ie
	case root == old.Root:
		return verifyErr(fmt.Sprintf("consistency proof %d → %d", old.Size, cp.Size),
			fmt.Errorf("%w (yet the tree of size %d does contain the tree of size %d: the log served a wrong proof, not two histories)", ie.Err, cp.Size, old.Size))
	}
	ie.PrefixLeaf, ie.PrefixProof = &leaf, prefix
	return ie
}

// prefixProof fetches the leaf hash of leaf index and its inclusion proof
// in cp's tree.
func (c *Client) prefixProof(ctx context.Context, index uint64, cp Checkpoint) (tlog.Hash, []tlog.Hash, error) {
	resp, err := c.api.GetEntries(ctx, &tlogv1.GetEntriesRequest{Start: index, Count: 1})
	if err != nil {
		return tlog.Hash{}, nil, err
	}
	if len(resp.GetEntries()) == 0 {
		return tlog.Hash{}, nil, errors.New("no entry")
	}
	p, err := c.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return tlog.Hash{}, nil, err
	}
	return tlog.LeafHash(resp.GetEntries()[0].GetEntry()), p, nil
}

// ConsistencyProof fetches the consistency proof between two sizes, checks
// its form (32-byte hashes), but does not verify it.
func (c *Client) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([]tlog.Hash, error) {
	resp, err := c.api.GetConsistencyProof(ctx, &tlogv1.GetConsistencyProofRequest{FirstTreeSize: size1, SecondTreeSize: size2})
	if err != nil {
		return nil, fmt.Errorf("client: get consistency proof %d → %d: %w", size1, size2, err)
	}
	p, err := hashes(resp.GetHashes())
	if err != nil {
		return nil, verifyErr(fmt.Sprintf("consistency proof %d → %d", size1, size2), err)
	}
	return p, nil
}

// VerifyConsistency checks, through the log, that the tree of new extends
// the tree of old; both must be verified checkpoints. A failure is an
// *InconsistencyError carrying the evidence.
func (c *Client) VerifyConsistency(ctx context.Context, old, new Checkpoint) error {
	if old.Size > new.Size {
		old, new = new, old
	}
	return c.checkConsistent(ctx, old, new)
}

// Append appends payloads and returns only once every result is verified:
// the checkpoint's signature, its consistency with the trusted checkpoint,
// each record's commitment to its payload under the returned salt, its leaf
// hash, and its inclusion proof. A server that lies gets an error wrapping
// ErrVerification, never a result.
func (c *Client) Append(ctx context.Context, payloads ...[]byte) ([]Result, Checkpoint, error) {
	req := &tlogv1.AppendRequest{IncludeProofs: true, Records: make([]*tlogv1.Record, len(payloads)), WaitForWitnesses: c.policy != nil}
	for i, p := range payloads {
		req.Records[i] = &tlogv1.Record{Payload: p}
	}
	// Ask for the consistency proof from the trusted checkpoint in the same
	// call: appenders need no read capability to stay safe.
	var base *Checkpoint
	if tr, ok := c.Trusted(); ok {
		base, req.ConsistencyFrom = &tr, tr.Size
	}
	resp, err := c.api.Append(ctx, req)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("client: append: %w", err)
	}
	if c.policy != nil {
		cp, err := c.OpenCheckpoint([]byte(resp.GetCheckpoint()))
		if err != nil {
			return nil, Checkpoint{}, err
		}
		if err := c.checkQuorum(cp); err != nil {
			return nil, Checkpoint{}, err
		}
	}
	return c.verifyAppended(ctx, base, resp.GetCheckpoint(), resp.GetResults(), payloads, resp.GetConsistencyProof())
}

// verifyAppended checks what Append or RecordEvents returned for payloads,
// sent while base was trusted, and trusts the checkpoint.
func (c *Client) verifyAppended(ctx context.Context, base *Checkpoint, signed string, results []*tlogv1.AppendResult, payloads [][]byte, consistency [][]byte) ([]Result, Checkpoint, error) {
	cp, err := c.OpenCheckpoint([]byte(signed))
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if len(results) != len(payloads) {
		return nil, Checkpoint{}, verifyErr("append response", fmt.Errorf("%d results for %d records", len(results), len(payloads)))
	}
	out := make([]Result, len(payloads))
	for i, r := range results {
		what := fmt.Sprintf("record %d (leaf %d)", i, r.GetIndex())
		conflict := payloads[i] == nil && r.GetDuplicate()
		if !conflict {
			if err := tlog.VerifyRecord(r.GetEntry(), r.GetSalt(), payloads[i]); err != nil {
				return nil, Checkpoint{}, verifyErr(what+" commitment", err)
			}
		}
		leaf := tlog.LeafHash(r.GetEntry())
		if !bytes.Equal(leaf[:], r.GetLeafHash()) {
			return nil, Checkpoint{}, verifyErr(what+" leaf hash", errors.New("not SHA-256(0x00 || entry)"))
		}
		p, err := hashes(r.GetInclusionProof())
		if err != nil {
			return nil, Checkpoint{}, verifyErr(what+" inclusion proof", err)
		}
		if err := tlog.VerifyInclusion(r.GetIndex(), cp.Size, leaf, p, cp.Root); err != nil {
			return nil, Checkpoint{}, verifyErr(what+" inclusion proof", err)
		}
		e, _ := tlog.ParseEntry(r.GetEntry())
		out[i] = Result{Index: r.GetIndex(), Entry: r.GetEntry(), Time: time.UnixMilli(int64(e.Time)), LeafHash: leaf,
			Salt: r.GetSalt(), Duplicate: r.GetDuplicate(), Conflict: conflict, Proof: p}
	}
	var known []tlog.Hash
	if base != nil {
		if known, err = hashes(consistency); err != nil {
			return nil, Checkpoint{}, verifyErr("append consistency proof", err)
		}
	}
	if err := c.accept(ctx, base, cp, known); err != nil {
		return nil, Checkpoint{}, err
	}
	return out, cp, nil
}

// Prove fetches and verifies the inclusion proof of leaf index at the
// log's latest checkpoint (which it verifies and trusts), given the leaf's
// entry. It returns the proof as a C2SP tlog-proof, with the entry and salt
// in its extra data when salt is given. With a witness policy the proof is
// against the newest cosigned checkpoint, cosignatures included.
func (c *Client) Prove(ctx context.Context, index uint64, entry, salt []byte) (tlog.Proof, Checkpoint, error) {
	var cosigned *Checkpoint
	req := &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: index}}
	if c.policy != nil {
		cp, err := c.Update(ctx)
		if err != nil {
			return tlog.Proof{}, Checkpoint{}, err
		}
		if index >= cp.Size {
			return tlog.Proof{}, Checkpoint{}, fmt.Errorf("client: leaf %d is not yet in the newest cosigned checkpoint (size %d); retry once the witnesses cosign a newer one", index, cp.Size)
		}
		cosigned, req.TreeSize = &cp, cp.Size
	}
	resp, err := c.api.GetInclusionProof(ctx, req)
	if err != nil {
		return tlog.Proof{}, Checkpoint{}, fmt.Errorf("client: get inclusion proof of %d: %w", index, err)
	}
	cp, err := c.OpenCheckpoint([]byte(resp.GetCheckpoint()))
	if err != nil {
		return tlog.Proof{}, Checkpoint{}, err
	}
	if cosigned != nil {
		if cp.Checkpoint != cosigned.Checkpoint {
			return tlog.Proof{}, Checkpoint{}, verifyErr(fmt.Sprintf("inclusion proof of leaf %d", index),
				fmt.Errorf("answer at size %d root %s, asked at the cosigned size %d root %s", cp.Size, cp.Root, cosigned.Size, cosigned.Root))
		}
		cp = *cosigned
	}
	what := fmt.Sprintf("inclusion proof of leaf %d", index)
	if resp.GetIndex() != index || resp.GetTreeSize() != cp.Size {
		return tlog.Proof{}, Checkpoint{}, verifyErr(what, fmt.Errorf("answer is for leaf %d at size %d, checkpoint size %d", resp.GetIndex(), resp.GetTreeSize(), cp.Size))
	}
	p, err := hashes(resp.GetHashes())
	if err != nil {
		return tlog.Proof{}, Checkpoint{}, verifyErr(what, err)
	}
	if err := tlog.VerifyInclusion(index, cp.Size, tlog.LeafHash(entry), p, cp.Root); err != nil {
		return tlog.Proof{}, Checkpoint{}, verifyErr(what, err)
	}
	if err := c.accept(ctx, nil, cp, nil); err != nil {
		return tlog.Proof{}, Checkpoint{}, err
	}
	proof := tlog.Proof{Index: index, Hashes: p, Checkpoint: cp.Note}
	if salt != nil {
		proof.Extra = tlog.RecordExtra(entry, salt)
	}
	return proof, cp, nil
}

// ProvePayload finds the record holding payload (FindRecord, which needs
// the read_payloads capability and is recorded in the log), checks the
// entry's commitment to payload, and proves its inclusion as Prove does,
// with the entry and salt in the proof's extra data. It returns the leaf
// index, which is also proof.Index.
func (c *Client) ProvePayload(ctx context.Context, payload []byte) (tlog.Proof, Checkpoint, error) {
	h := sha256.Sum256(payload)
	resp, err := c.api.FindRecord(ctx, &tlogv1.FindRecordRequest{PayloadHash: h[:]})
	if err != nil {
		return tlog.Proof{}, Checkpoint{}, fmt.Errorf("client: find record: %w", err)
	}
	e := resp.GetEntry()
	if err := tlog.VerifyRecord(e.GetEntry(), e.GetSalt(), payload); err != nil {
		return tlog.Proof{}, Checkpoint{}, verifyErr(fmt.Sprintf("record %d commitment", e.GetIndex()), err)
	}
	return c.Prove(ctx, e.GetIndex(), e.GetEntry(), e.GetSalt())
}

// VerifyInclusion checks, at the log's latest checkpoint, that entry is the
// leaf at index.
func (c *Client) VerifyInclusion(ctx context.Context, index uint64, entry []byte) (Checkpoint, error) {
	_, cp, err := c.Prove(ctx, index, entry, nil)
	return cp, err
}

// Entries yields the entries [start, end) of the tree of the checkpoint cp
// (verified, and consistent with the trusted one), each batch verified as a
// whole against cp with two inclusion proofs (tlog.VerifyRange), and each
// payload checked against its entry's commitment. With end 0 it reads to
// cp.Size. The sequence stops at the first error.
func (c *Client) Entries(ctx context.Context, cp Checkpoint, start, end uint64, withPayloads bool) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if end == 0 {
			end = cp.Size
		}
		if start >= end || end > cp.Size {
			yield(Entry{}, fmt.Errorf("client: range [%d, %d) is not inside the tree of size %d", start, end, cp.Size))
			return
		}
		perCall, err := c.entriesPerCall(ctx)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		for next := start; next < end; {
			resp, err := c.api.GetEntries(ctx, &tlogv1.GetEntriesRequest{Start: next, Count: uint32(min(end-next, perCall)), IncludePayloads: withPayloads})
			if err != nil {
				yield(Entry{}, fmt.Errorf("client: get entries from %d: %w", next, err))
				return
			}
			batch, err := c.verifyBatch(ctx, cp, next, resp.GetEntries(), withPayloads)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range batch {
				if e.Index >= end {
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			next += uint64(len(batch))
		}
	}
}

// LogInfo returns the log's identity and limits (GetLogInfo), after
// checking that the log names the pinned origin. The verifier key it
// reports is informational: the pinned one is what verifies.
func (c *Client) LogInfo(ctx context.Context) (*tlogv1.GetLogInfoResponse, error) {
	info, err := c.api.GetLogInfo(ctx, &tlogv1.GetLogInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("client: get log info: %w", err)
	}
	if info.GetOrigin() != c.origin {
		return nil, fmt.Errorf("client: the server runs the log %q, not %q", info.GetOrigin(), c.origin)
	}
	return info, nil
}

// entriesPerCall returns the log's limit on entries per GetEntries call,
// asking the log once.
func (c *Client) entriesPerCall(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	n := c.perCall
	c.mu.Unlock()
	if n != 0 {
		return n, nil
	}
	info, err := c.LogInfo(ctx)
	if err != nil {
		return 0, err
	}
	n = max(uint64(info.GetMaxEntriesPerCall()), 1)
	c.mu.Lock()
	c.perCall = n
	c.mu.Unlock()
	return n, nil
}

// verifyBatch checks consecutive entries from start against cp.
func (c *Client) verifyBatch(ctx context.Context, cp Checkpoint, start uint64, es []*tlogv1.Entry, withPayloads bool) ([]Entry, error) {
	if len(es) == 0 {
		return nil, verifyErr(fmt.Sprintf("entries from %d", start), errors.New("the log returned none"))
	}
	es = es[:min(uint64(len(es)), cp.Size-start)]
	out := make([]Entry, len(es))
	leaves := make([]tlog.Hash, len(es))
	for i, e := range es {
		what := fmt.Sprintf("entry %d", start+uint64(i))
		if e.GetIndex() != start+uint64(i) {
			return nil, verifyErr(what, fmt.Errorf("the log sent index %d", e.GetIndex()))
		}
		parsed, err := tlog.ParseEntry(e.GetEntry())
		if err != nil {
			return nil, verifyErr(what, err)
		}
		if withPayloads && !e.GetErased() {
			if err := tlog.VerifyRecord(e.GetEntry(), e.GetSalt(), e.GetPayload()); err != nil {
				return nil, verifyErr(what+" commitment", err)
			}
		}
		leaves[i] = tlog.LeafHash(e.GetEntry())
		out[i] = Entry{Index: e.GetIndex(), Entry: e.GetEntry(), Time: time.UnixMilli(int64(parsed.Time)), LeafHash: leaves[i],
			Salt: e.GetSalt(), Payload: e.GetPayload(), Erased: e.GetErased(), ErasedBy: e.GetErasedBy()}
	}
	last := start + uint64(len(es)) - 1
	first, err := c.InclusionProof(ctx, start, cp.Size)
	if err != nil {
		return nil, err
	}
	lastP := first
	if last != start {
		if lastP, err = c.InclusionProof(ctx, last, cp.Size); err != nil {
			return nil, err
		}
	}
	if err := tlog.VerifyRange(start, leaves, cp.Size, first, lastP, cp.Root); err != nil {
		return nil, verifyErr(fmt.Sprintf("entries %d to %d", start, last), err)
	}
	return out, nil
}

// InclusionProof fetches the inclusion proof of leaf index in the tree of
// the given size, checks its form (32-byte hashes), but does not verify it.
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) ([]tlog.Hash, error) {
	resp, err := c.api.GetInclusionProof(ctx, &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: index}, TreeSize: size})
	if err != nil {
		return nil, fmt.Errorf("client: get inclusion proof of %d at %d: %w", index, size, err)
	}
	p, err := hashes(resp.GetHashes())
	if err != nil {
		return nil, verifyErr(fmt.Sprintf("inclusion proof of %d at %d", index, size), err)
	}
	return p, nil
}

func hashes(b [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(b))
	for i, h := range b {
		var err error
		if out[i], err = tlog.ParseHash(h); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteFileAtomic writes data to path through a temporary file that is
// fsynced and renamed over path, then fsyncs the directory: a crash leaves
// either the old file or the new one. The client keeps its state file so.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

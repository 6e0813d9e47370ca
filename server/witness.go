package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// WitnessConfig makes tlogd a C2SP tlog-witness: it cosigns the checkpoints
// of other logs that are consistent with the latest one it cosigned for
// them, and keeps that latest one in its store.
type WitnessConfig struct {
	// Cosigner signs the cosignatures (C2SP cosignature/v1).
	Cosigner *tlog.Cosigner
	// Logs lists the logs to witness: the log lines of a tlog-policy. A
	// log line's URL, if any, is the log's tlog-tiles prefix, which gossip
	// reads to prove a split view between checkpoints of different sizes.
	Logs *tlog.Policy
	// Peers are the monitoring prefixes of other witnesses of the same
	// logs (for a tlogd witness, http://host:port/witness), whose latest
	// cosigned checkpoints are compared with this witness's every
	// GossipInterval (default 10 s).
	Peers          []string
	GossipInterval time.Duration
	// Client makes the gossip requests; default a client with a 10 s
	// timeout.
	Client *http.Client
}

// maxAddCheckpointBytes bounds an add-checkpoint body: 63 proof lines, a
// checkpoint and its signatures fit many times over.
const maxAddCheckpointBytes = 64 << 10

// addCheckpoint serves POST /add-checkpoint with the status codes of C2SP
// tlog-witness: 400 malformed, 403 no valid signature by the log, 404
// unknown log, 409 old size not the latest cosigned (with that size), 422
// not consistent, 200 with the cosignature line.
func (s *Server) addCheckpoint(w http.ResponseWriter, r *http.Request) {
	store, _, err := s.attached()
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	reject := func(code int, format string, args ...any) {
		s.metrics.witness.WithLabelValues(http.StatusText(code)).Inc()
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAddCheckpointBytes))
	if err != nil {
		reject(http.StatusBadRequest, "read the request body: %v", err)
		return
	}
	req, err := tlog.ParseAddCheckpoint(body)
	if err != nil {
		reject(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "tlog: "))
		return
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	v, ok := s.cfg.Witness.Logs.Log(origin)
	if !ok {
		reject(http.StatusNotFound, "unknown log %q: this witness does not witness it", origin)
		return
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			reject(http.StatusForbidden, "checkpoint of %q: no valid signature by its key: %v", origin, err)
		} else {
			reject(http.StatusBadRequest, "checkpoint: %v", err)
		}
		return
	}
	c, err := tlog.ParseCheckpointPrefix([]byte(n.Text))
	if err != nil {
		reject(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "tlog: "))
		return
	}
	if req.OldSize > c.Size {
		reject(http.StatusBadRequest, "old size %d is beyond the checkpoint's size %d", req.OldSize, c.Size)
		return
	}

	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	// Checked under the lock gossip records split views under: once one is
	// recorded, nothing more is cosigned.
	if _, err := store.SplitView(origin); err == nil {
		h := sha256.Sum256([]byte(origin))
		reject(http.StatusUnprocessableEntity, "this witness caught %q showing a split view and no longer cosigns it; the evidence is at /witness/%x/split-view", origin, h)
		return
	}
	latest, err := s.witnessed(store, origin)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if req.OldSize != latest.Size {
		s.metrics.witness.WithLabelValues(http.StatusText(http.StatusConflict)).Inc()
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, "%d\n", latest.Size)
		return
	}
	var why string
	switch {
	case c.Size == 0 && c.Root != tlog.EmptyRoot:
		why = "a checkpoint of size 0 must have the root of the empty tree"
	case req.OldSize == 0 && len(req.Proof) > 0:
		why = "old size 0 takes no consistency proof"
	case req.OldSize == c.Size && (c.Root != latest.Root || len(req.Proof) > 0):
		why = fmt.Sprintf("size %d was cosigned with root %s, and this checkpoint has root %s", c.Size, latest.Root, c.Root)
	case req.OldSize > 0 && req.OldSize < c.Size:
		if err := tlog.VerifyConsistency(req.OldSize, c.Size, req.Proof, latest.Root, c.Root); err != nil {
			why = fmt.Sprintf("not consistent with the cosigned checkpoint of size %d: %v", req.OldSize, err)
		}
	}
	if why != "" {
		// The log signed it: it may be evidence of a fork. Keep a trace.
		s.log.Warn("witness: refused a signed checkpoint", slog.String("origin", origin),
			slog.Uint64("size", c.Size), slog.Uint64("cosigned_size", latest.Size), slog.String("reason", why),
			slog.String("checkpoint", string(req.Checkpoint)))
		reject(http.StatusUnprocessableEntity, "%s", why)
		return
	}
	sig, err := s.cfg.Witness.Cosigner.Sign([]byte(n.Text))
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	line := fmt.Appendf(nil, "— %s %s\n", s.cfg.Witness.Cosigner.Name(),
		base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, s.cfg.Witness.Cosigner.KeyHash()), sig...)))
	// Kept for the monitoring endpoint: the checkpoint with the log's
	// signatures this witness verified and its own cosignature.
	kept := []byte(n.Text + "\n")
	for _, sg := range n.Sigs {
		kept = fmt.Appendf(kept, "— %s %s\n", sg.Name, sg.Base64)
	}
	kept = append(kept, line...)
	if s.testHook != nil {
		s.testHook(r.Context(), "/add-checkpoint")
	}
	if err := store.SetWitnessed(origin, kept); err != nil {
		s.httpError(w, r, err)
		return
	}
	s.metrics.witness.WithLabelValues(http.StatusText(http.StatusOK)).Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(line)
}

// witnessedCheckpoint serves GET /witness/<origin hash>/checkpoint, the
// C2SP tlog-witness monitoring endpoint (monitoring prefix /witness): the
// latest checkpoint cosigned for the log whose origin has that lower-case
// hex SHA-256, with the log's signatures and the cosignature; 404 if there
// is none.
func (s *Server) witnessedCheckpoint(w http.ResponseWriter, r *http.Request) {
	s.serveWitnessRecord(w, r, (*storage.Store).Witnessed, "text/plain; charset=utf-8",
		"this witness has cosigned no checkpoint of a log with that origin hash")
}

// serveWitnessRecord answers GET /witness/<origin hash>/… with what read
// returns for the witnessed log of that origin hash; 404 with none.
func (s *Server) serveWitnessRecord(w http.ResponseWriter, r *http.Request, read func(*storage.Store, string) ([]byte, error), contentType, none string) {
	store, _, err := s.attached()
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if origin, ok := s.witnessedOrigin(r.PathValue("origin")); ok {
		b, err := read(store, origin)
		if err == nil {
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Cache-Control", "no-store")
			w.Write(b)
			return
		}
		if !errors.Is(err, storage.ErrNotFound) {
			s.httpError(w, r, err)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, none, http.StatusNotFound)
}

// witnessed returns the latest checkpoint cosigned for origin: size 0 with
// the empty root when there is none.
func (s *Server) witnessed(store *storage.Store, origin string) (tlog.Checkpoint, error) {
	signed, err := store.Witnessed(origin)
	if errors.Is(err, storage.ErrNotFound) {
		return tlog.Checkpoint{Origin: origin, Root: tlog.EmptyRoot}, nil
	}
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return tlog.Checkpoint{}, fmt.Errorf("%w: witnessed checkpoint of %q has no signatures", storage.ErrCorrupt, origin)
	}
	return tlog.ParseCheckpointPrefix(append(text, '\n'))
}

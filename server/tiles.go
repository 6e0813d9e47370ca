package server

import (
	"compress/gzip"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/tlog"
)

// HTTPHandler serves the log over HTTP, for the tools of the transparency
// ecosystem: the C2SP tlog-tiles read API (GET /checkpoint, /tile/<L>/<N>,
// /tile/entries/<N>), and, with a witness configured, the C2SP tlog-witness
// POST /add-checkpoint and its monitoring endpoint
// GET /witness/<origin hash>/checkpoint. Checkpoints, tiles and entries hold
// no personal data (entries commit to payloads through a salted hash), so
// the read API needs no credentials, like every tlog-tiles log.
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", s.serveCheckpoint)
	mux.HandleFunc("GET /tile/", s.serveTile)
	if s.cfg.Witness != nil {
		mux.HandleFunc("POST /add-checkpoint", s.addCheckpoint)
		mux.HandleFunc("GET /witness/{origin}/checkpoint", s.witnessedCheckpoint)
		mux.HandleFunc("GET /witness/{origin}/split-view", s.splitViewEvidence)
	}
	return mux
}

// The caching rules of tlog-tiles: the checkpoint changes with every batch;
// a tile or bundle of a given width never changes.
const (
	cacheCheckpoint = "no-store"
	cacheImmutable  = "public, max-age=31536000, immutable"
)

func (s *Server) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	store, _, err := s.attached()
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", cacheCheckpoint)
	w.Write(store.Head().Checkpoint)
}

func (s *Server) serveTile(w http.ResponseWriter, r *http.Request) {
	store, _, err := s.attached()
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	t, err := tlog.ParseTilePath(r.URL.Path)
	if err != nil {
		s.httpError(w, r, invalid("%s", strings.TrimPrefix(err.Error(), "tlog: ")))
		return
	}
	var body []byte
	if t.Level == tlog.EntriesLevel {
		body, err = store.EntryBundle(t.Index, t.Width)
	} else {
		body, err = store.HashTile(t.Level, t.Index, t.Width)
	}
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", cacheImmutable)
	if t.Level == tlog.EntriesLevel && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		zw := gzip.NewWriter(w)
		zw.Write(body)
		zw.Close()
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept-Encoding") {
		for _, e := range strings.Split(h, ",") {
			name, q, _ := strings.Cut(strings.TrimSpace(e), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

// httpCodes maps the gRPC codes of toStatus to HTTP status codes.
var httpCodes = map[codes.Code]int{
	codes.InvalidArgument:   http.StatusBadRequest,
	codes.OutOfRange:        http.StatusNotFound,
	codes.NotFound:          http.StatusNotFound,
	codes.Unavailable:       http.StatusServiceUnavailable,
	codes.ResourceExhausted: http.StatusServiceUnavailable,
	codes.Canceled:          499,
	codes.DeadlineExceeded:  http.StatusGatewayTimeout,
}

// httpError answers an HTTP request with the status and message toStatus
// gives err, as plain text.
func (s *Server) httpError(w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(s.status(r.Context(), err))
	code, ok := httpCodes[st.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	if errors.Is(err, errNotReady) {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, st.Message(), code)
}

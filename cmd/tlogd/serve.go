package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/tlogd/tlogd/server"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

func serve(args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", `Runs the log server. With no flags it keeps its data in ./tlogd-data,
generates the log key there on first start, and listens on 127.0.0.1:7400.
SIGINT or SIGTERM drain running calls and close the store cleanly.`)
	listen := c.String("listen", "127.0.0.1:7400", "`address` to listen on for gRPC")
	dataDir := c.String("data-dir", "tlogd-data", "`directory` of the log's Pebble store (created if missing)")
	origin := c.String("origin", "", "log `origin` for a new key (default: <hostname>/tlogd); must match an existing key")
	keyFile := c.String("key-file", "", "`file` holding the log's signing key (default: <data-dir>/log.key; created on first start)")
	logLevel := c.String("log-level", "info", "log `level`: debug, info, warn or error (successful calls are logged at debug)")
	logFormat := c.String("log-format", "text", "log `format`: text or json")
	maxPayload := c.Int("max-payload-bytes", 64<<10, "largest record payload in `bytes`, 1 to 1048576")
	maxRecords := c.Int("max-records-per-append", 1000, "most records in one Append `call`, 1 to 10000")
	cacheMiB := c.Int("cache-mib", 1024, "Pebble block cache size in `MiB` (the tree tiles of a 10-million-record log take about 600 MiB)")
	drain := c.Duration("drain-timeout", 15*time.Second, "how long to let running calls finish on shutdown")
	cpuProfile := c.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (for performance work)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	// Check every flag before anything is created on disk.
	switch {
	case *maxPayload < 1 || *maxPayload > 1<<20:
		return usageError{fmt.Sprintf("-max-payload-bytes %d: want 1 to 1048576", *maxPayload)}
	case *maxRecords < 1 || *maxRecords > 10000:
		return usageError{fmt.Sprintf("-max-records-per-append %d: want 1 to 10000", *maxRecords)}
	case *cacheMiB < 8:
		return usageError{fmt.Sprintf("-cache-mib %d: want at least 8", *cacheMiB)}
	case *drain < 0:
		return usageError{"-drain-timeout must not be negative"}
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// Take the port first: a busy port should fail before a key or a log is
	// created.
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	defer lis.Close()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if *keyFile == "" {
		*keyFile = filepath.Join(*dataDir, "log.key")
	}

	signerKey, created, err := loadOrCreateKey(*keyFile, *origin, *dataDir)
	if err != nil {
		return err
	}
	signer, vkey, err := tlog.ParseSignerKey(signerKey)
	if err != nil {
		return fmt.Errorf("key file %s: %w", *keyFile, err)
	}
	if *origin != "" && *origin != signer.Name() {
		return fmt.Errorf("-origin %q does not match the key in %s, which is for origin %q", *origin, *keyFile, signer.Name())
	}
	if created {
		logger.Info("generated a new log key", slog.String("key_file", *keyFile), slog.String("origin", signer.Name()))
	}

	store, err := storage.Open(*dataDir, storage.Options{Signer: signer, VerifierKey: vkey, Logger: logger, CacheBytes: int64(*cacheMiB) << 20})
	if errors.Is(err, storage.ErrWrongKey) {
		return fmt.Errorf("refusing to start: %w; use the key this log was created with (-key-file)", err)
	}
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("refusing to start: %w (is another tlogd running on %s?)", err, *dataDir)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", slog.String("error", err.Error()))
		}
	}()

	srv, err := server.New(server.Config{
		Store:               store,
		Logger:              logger,
		MaxPayloadBytes:     *maxPayload,
		MaxRecordsPerAppend: *maxRecords,
	})
	if err != nil {
		return err
	}
	head := store.Head()
	fmt.Fprintf(stdout, "tlogd serving log %s on %s\norigin: %s\nverifier key: %s\ntree size: %d\n",
		signer.Name(), lis.Addr(), signer.Name(), vkey, head.Size)
	logger.Info("serving", slog.String("addr", lis.Addr().String()), slog.String("origin", signer.Name()),
		slog.String("verifier_key", vkey), slog.Uint64("tree_size", head.Size), slog.String("data_dir", *dataDir))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		srv.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	logger.Info("shutting down", slog.Duration("drain_timeout", *drain))
	dctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	srv.Stop(dctx)
	<-errc
	logger.Info("stopped", slog.Uint64("tree_size", store.Head().Size))
	return nil
}

// loadOrCreateKey reads the signing key file, creating a key when the file
// is missing and the data directory holds no log yet.
func loadOrCreateKey(path, origin, dataDir string) (key string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("key file %s is readable by group or others (mode %v); run chmod 600 on it", path, st.Mode().Perm())
		}
		return strings.TrimSpace(string(b)), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read key file: %w", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dataDir, "MANIFEST-*")); len(m) > 0 {
		return "", false, fmt.Errorf("key file %s is missing but %s already holds a log; point -key-file at that log's key", path, dataDir)
	}
	if origin == "" {
		origin = defaultOrigin()
	}
	if _, err := writeNewKey(path, origin); err != nil {
		return "", false, err
	}
	b, err = os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("read new key file: %w", err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// defaultOrigin names a new log after this host.
func defaultOrigin() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " +") {
		h = "localhost"
	}
	return strings.ToLower(h) + "/tlogd"
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("-log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("-log-format %q: want text or json", format)}
}

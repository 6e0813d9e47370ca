package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"google.golang.org/grpc"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	"github.com/tlogd/tlogd/server"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

func serve(args []string, stdout, stderr io.Writer) error {
	c := cli.New("tlogd", "serve", "", `Runs the log server. With no flags it keeps its data in ./tlogd-data,
generates the log key there on first start, and listens on 127.0.0.1:7400
without authentication (every local caller may do everything).

With -tls-client-ca (client certificates) or -token-file (bearer tokens),
callers authenticate and -policy decides what each may do. Listening on an
address other than loopback requires TLS, or -insecure.

Every flag can also come from the environment (TLOGD_ and the flag name in
capitals, dashes as underscores: TLOGD_DATA_DIR) or from a YAML -config file
of flag names and values; the command line wins over the environment, which
wins over the file. SIGINT or SIGTERM drain running calls and close the store.`)
	listen := c.String("listen", "127.0.0.1:7400", "`address` to listen on for gRPC")
	dataDir := c.String("data-dir", "tlogd-data", "`directory` of the log's Pebble store (created if missing)")
	origin := c.String("origin", "", "log `origin` for a new key (default: <hostname>/tlogd); must match an existing key")
	keyFile := c.String("key-file", "", "`file` holding the log's signing key (default: <data-dir>/log.key; created on first start)")
	tlsCert := c.String("tls-cert", "", "server certificate `file` (PEM); serves TLS")
	tlsKey := c.String("tls-key", "", "server private key `file` (PEM)")
	tlsClientCA := c.String("tls-client-ca", "", "CA certificates `file` (PEM) that client certificates must chain to; enables mutual TLS")
	tokenFile := c.String("token-file", "", "`file` of bearer-token hashes and principals (see tlogd token); enables tokens")
	policyFile := c.String("policy", "", "YAML policy `file` granting roles to principals; required with -tls-client-ca or -token-file")
	insecure := c.Bool("insecure", false, "allow listening on a non-loopback address without TLS")
	rateLimit := c.Float64("rate-limit", 5000, "calls per second allowed to each principal (0: no limit; not applied without authentication)")
	rateBurst := c.Int("rate-burst", 0, "calls a principal may make in a burst (default: twice -rate-limit)")
	httpListen := c.String("http-listen", "", "`address` to serve HTTP on, over TLS with -tls-cert: the auditor dashboard under /ui/ (sign-in with a -token-file token), and the C2SP tlog-tiles read API (/checkpoint, /tile/…) for the tools of the transparency ecosystem, which needs no credentials since checkpoints, tiles and entries hold no personal data (default: off)")
	dashboard := c.Bool("dashboard", true, "with -http-listen, serve the auditor dashboard under /ui/")
	sessionTTL := c.Duration("session-ttl", 8*time.Hour, "how long a dashboard sign-in lasts")
	var dashboardHosts []string
	c.Func("dashboard-host", "a host `name` the dashboard answers to over plain HTTP, besides IP addresses and localhost (repeatable, or comma-separated); other names are refused, against DNS rebinding", func(v string) error {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || strings.ContainsAny(name, " /:[]@") {
				return fmt.Errorf("%q is not a host name", name)
			}
			dashboardHosts = append(dashboardHosts, name)
		}
		return nil
	})
	var trustedProxies []netip.Prefix
	c.Func("trusted-proxy", "`address` or CIDR of a reverse proxy in front of -http-listen (repeatable, or comma-separated): the dashboard believes its X-Forwarded-For (the browser's address, for sign-in limits and the audit trail) and X-Forwarded-Proto (the last value; https: the proxy terminates TLS, so Secure cookies, HSTS and the origin check as over TLS, and no host-name check); the proxy must pass the Host header on, append to X-Forwarded-For and overwrite X-Forwarded-Proto", func(v string) error {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			p, err := netip.ParsePrefix(item)
			if err != nil {
				a, aerr := netip.ParseAddr(item)
				if aerr != nil {
					return fmt.Errorf("%q is not an address or CIDR", item)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Bits() == 0 {
				return fmt.Errorf("%q would trust every peer's X-Forwarded-For: name the proxy's addresses", item)
			}
			trustedProxies = append(trustedProxies, p.Masked())
		}
		return nil
	})
	witnessPolicy := c.String("witness-policy", "", "C2SP tlog-policy `file` whose witness lines (each with its URL, the witness's tlog-witness submission prefix) this log asks to cosign its checkpoints, and whose quorum GetCheckpoint's cosigned_checkpoint and Append's wait_for_witnesses meet")
	witnessKey := c.String("witness-key", "", "cosigner key `file` (tlogd keygen -cosigner); with -witness-logs, tlogd also serves the C2SP tlog-witness POST /add-checkpoint on -http-listen and cosigns the checkpoints of those logs")
	witnessLogs := c.String("witness-logs", "", "C2SP tlog-policy `file` whose log lines are the logs to witness (its witness, group and quorum lines are not used here)")
	witnessPeers := c.String("witness-peers", "", "comma-separated monitoring `URLs` of other witnesses of the same logs (for a tlogd witness: http://host:port/witness); with -witness-key, their latest cosigned checkpoints are compared with this witness's every -gossip-interval, and a split view is recorded and stops cosigning")
	gossipInterval := c.Duration("gossip-interval", 10*time.Second, "how often a witness compares its cosigned checkpoints with -witness-peers")
	replicaOf := c.String("replica-of", "", "gRPC `address` of the log's primary: run as a read replica that copies the log, checks every entry against the checkpoints the log key signed, serves every read and proof from its own store, and refuses appends (FailedPrecondition naming the primary); needs -log-verifier-key")
	logVKey := c.String("log-verifier-key", "", "the log's note verifier `key` (as the primary prints it); a replica takes only what this key signed")
	replicaCA := c.String("replica-tls-ca", "", "CA certificates `file` (PEM) to trust for the primary's certificate; turns TLS on for -replica-of")
	replicaCert := c.String("replica-tls-cert", "", "client certificate `file` (PEM) for the primary (mutual TLS)")
	replicaKey := c.String("replica-tls-key", "", "client private key `file` (PEM) for -replica-tls-cert")
	replicaToken := c.String("replica-token-file", "", "`file` holding a bearer token for the primary; its principal needs the read role, and read_payloads for the replica to store payloads")
	metricsListen := c.String("metrics-listen", "", "`address` to serve Prometheus metrics on, at /metrics (default: off)")
	logLevel := c.String("log-level", "info", "log `level`: debug, info, warn or error (successful calls are logged at debug)")
	logFormat := c.String("log-format", "auto", "log `format`: text, json, or auto (text on a terminal, JSON otherwise)")
	maxPayload := c.Int("max-payload-bytes", 64<<10, "largest record payload in `bytes`, 1 to 1048576")
	maxRecords := c.Int("max-records-per-append", 1000, "most records in one Append `call`, 1 to 10000")
	cacheMiB := c.Int("cache-mib", 1024, "Pebble block cache size in `MiB` (the tree tiles of a 10-million-record log take about 600 MiB)")
	indexFlush := c.Int("index-flush-records", 262144, "how many new leaves are indexed only in memory before their indexes are written to disk in the background; a start after a crash rebuilds at most this many (lower: faster restarts, more small index tables)")
	reserveMiB := c.Int("reserve-mib", 256, "free space in `MiB` to keep on the data directory's filesystem: below it appends fail with ResourceExhausted, before anything is written, and resume once space is freed; a quarter of it is held in a ballast file for writes that find the disk full")
	maxCall := c.Duration("max-call-duration", time.Minute, "longest a unary call may run, whatever deadline the client sets")
	drain := c.Duration("drain-timeout", 15*time.Second, "how long to let running calls finish on shutdown")
	cpuProfile := c.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (for performance work)")
	configFile := c.String("config", "", "YAML `file` of flag values, for example \"listen: 0.0.0.0:7400\"")
	if err := c.Parse(args, stdout, 0, 0); err != nil {
		return err
	}
	if err := c.ApplyEnvAndConfig("TLOGD_", *configFile); err != nil {
		return err
	}
	// Check every flag before anything is created on disk.
	switch {
	case *maxPayload < 1 || *maxPayload > 1<<20:
		return cli.Usagef("-max-payload-bytes %d: want 1 to 1048576", *maxPayload)
	case *maxRecords < 1 || *maxRecords > 10000:
		return cli.Usagef("-max-records-per-append %d: want 1 to 10000", *maxRecords)
	case *cacheMiB < 8:
		return cli.Usagef("-cache-mib %d: want at least 8", *cacheMiB)
	case *indexFlush < 1000 || *indexFlush > 1<<24:
		return cli.Usagef("-index-flush-records %d: want 1000 to 16777216", *indexFlush)
	case *reserveMiB < 1:
		return cli.Usagef("-reserve-mib %d: want at least 1", *reserveMiB)
	case *drain < 0 || *maxCall <= 0:
		return cli.UsageError{Msg: "-drain-timeout must not be negative and -max-call-duration must be positive"}
	case *rateLimit < 0 || *rateBurst < 0:
		return cli.UsageError{Msg: "-rate-limit and -rate-burst must not be negative"}
	case (*tlsCert == "") != (*tlsKey == ""):
		return cli.UsageError{Msg: "-tls-cert and -tls-key go together"}
	case *tlsClientCA != "" && *tlsCert == "":
		return cli.UsageError{Msg: "-tls-client-ca needs -tls-cert and -tls-key: client certificates need TLS"}
	case (*tlsClientCA != "" || *tokenFile != "") && *policyFile == "":
		return cli.UsageError{Msg: "-policy is required with -tls-client-ca or -token-file: it says what each principal may do"}
	case (*witnessKey == "") != (*witnessLogs == ""):
		return cli.UsageError{Msg: "-witness-key and -witness-logs go together"}
	case *witnessPeers != "" && *witnessKey == "":
		return cli.UsageError{Msg: "-witness-peers needs -witness-key: only a witness gossips"}
	case *gossipInterval <= 0:
		return cli.UsageError{Msg: "-gossip-interval must be positive"}
	case *witnessKey != "" && *httpListen == "":
		return cli.UsageError{Msg: "-witness-key needs -http-listen: the witness answers over HTTP"}
	case (*replicaOf == "") != (*logVKey == ""):
		return cli.UsageError{Msg: "-replica-of and -log-verifier-key go together: a replica checks the primary against the log's key"}
	case *replicaOf != "" && *witnessPolicy != "":
		return cli.UsageError{Msg: "-witness-policy is the primary's: a replica does not collect cosignatures (make it a witness with -witness-key instead)"}
	case *replicaOf != "" && (*keyFile != "" || *origin != ""):
		return cli.UsageError{Msg: "-key-file and -origin are the primary's: a replica never signs"}
	case *sessionTTL < time.Minute || *sessionTTL > 30*24*time.Hour:
		return cli.Usagef("-session-ttl %s: want 1m to 720h", *sessionTTL)
	case len(trustedProxies) > 0 && (*httpListen == "" || !*dashboard):
		return cli.UsageError{Msg: "-trusted-proxy is for the dashboard: it needs -http-listen, and the dashboard on"}
	case *policyFile != "" && *tlsClientCA == "" && *tokenFile == "":
		return cli.UsageError{Msg: "-policy needs -tls-client-ca or -token-file: without authentication there are no principals"}
	}
	if *tlsCert == "" && !*insecure && !isLoopback(*listen) {
		return cli.Usagef("-listen %s is not a loopback address: serve TLS (-tls-cert, -tls-key) or pass -insecure", *listen)
	}
	if *tlsCert == "" && !*insecure && *httpListen != "" && !isLoopback(*httpListen) {
		return cli.Usagef("-http-listen %s is not a loopback address: serve TLS (-tls-cert, -tls-key) or pass -insecure", *httpListen)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg := server.Config{
		Logger:              logger,
		MaxPayloadBytes:     *maxPayload,
		MaxRecordsPerAppend: *maxRecords,
		MaxCallDuration:     *maxCall,
		RateLimit:           *rateLimit,
		RateBurst:           *rateBurst,
		SessionTTL:          *sessionTTL,
		DashboardHosts:      dashboardHosts,
		TrustedProxies:      trustedProxies,
	}
	if *tlsCert != "" {
		if cfg.TLS, err = loadTLS(*tlsCert, *tlsKey, *tlsClientCA); err != nil {
			return err
		}
	}
	if *tokenFile != "" {
		if cfg.Tokens, err = server.LoadTokens(*tokenFile); err != nil {
			return err
		}
	}
	if *policyFile != "" {
		if cfg.Policy, err = server.LoadPolicy(*policyFile); err != nil {
			return err
		}
	}
	if *witnessKey != "" {
		if cfg.Witness, err = loadWitness(*witnessKey, *witnessLogs); err != nil {
			return err
		}
		for _, p := range strings.Split(*witnessPeers, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") {
				return cli.Usagef("-witness-peers: %q is not an http:// or https:// URL", p)
			}
			cfg.Witness.Peers = append(cfg.Witness.Peers, p)
		}
		cfg.Witness.GossipInterval = *gossipInterval
		logger.Info("witnessing", slog.String("cosigner", cfg.Witness.Cosigner.Name()),
			slog.String("cosigner_verifier_key", cfg.Witness.Cosigner.VerifierKey()), slog.Int("logs", len(cfg.Witness.Logs.Logs())))
	}
	if *witnessPolicy != "" {
		if cfg.Cosigning, err = loadCosigning(*witnessPolicy); err != nil {
			return err
		}
	}
	if *replicaOf != "" {
		creds := client.Credentials{CAFile: *replicaCA, CertFile: *replicaCert, KeyFile: *replicaKey, TokenFile: *replicaToken, Insecure: isLoopback(*replicaOf)}
		opts, err := creds.DialOptions()
		if err != nil {
			return fmt.Errorf("-replica-of: %w", err)
		}
		conn, err := grpc.NewClient(*replicaOf, append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))...)
		if err != nil {
			return fmt.Errorf("-replica-of %s: %w", *replicaOf, err)
		}
		defer conn.Close()
		cfg.Replica = &server.ReplicaConfig{Primary: *replicaOf, Conn: conn}
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}

	// Take the port first: a busy port should fail before a key or a log is
	// created. Health answers NOT_SERVING while the log opens.
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
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
	errc := make(chan error, 3)
	go func() { errc <- srv.Serve(lis) }()
	stopServer := func(timeout time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		srv.Stop(ctx)
	}
	var metricsSrv, tilesSrv *http.Server
	var tilesURL string
	if *metricsListen != "" {
		if metricsSrv, _, err = startHTTP(logger, "metrics", *metricsListen, metricsMux(srv), nil, errc); err != nil {
			stopServer(0)
			return err
		}
		defer metricsSrv.Close()
	}
	if *httpListen != "" {
		h := srv.HTTPHandler()
		if *dashboard {
			if h, err = withDashboard(srv, h); err != nil {
				stopServer(0)
				return err
			}
		}
		httpTLS := cfg.TLS
		if httpTLS != nil && !*dashboard {
			// Only the dashboard's sign-in takes client certificates.
			httpTLS = httpTLS.Clone()
			httpTLS.ClientAuth, httpTLS.ClientCAs = tls.NoClientCert, nil
		}
		if tilesSrv, tilesURL, err = startHTTP(logger, "http", *httpListen, h, httpTLS, errc); err != nil {
			stopServer(0)
			return err
		}
		defer tilesSrv.Close()
	}

	sopts := storage.Options{CacheBytes: int64(*cacheMiB) << 20, ReserveBytes: uint64(*reserveMiB) << 20, IndexFlushRecords: *indexFlush}
	var (
		store  *storage.Store
		signer note.Signer // nil on a replica
		name   string      // the log origin
		vkey   string
	)
	if *replicaOf != "" {
		store, err = openReplica(logger, *dataDir, *logVKey, sopts)
		if err == nil {
			name, vkey = store.Origin(), *logVKey
		}
	} else {
		store, signer, vkey, err = openLog(logger, *dataDir, *keyFile, *origin, sopts)
		if signer != nil {
			name = signer.Name()
		}
	}
	if err != nil {
		stopServer(0)
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", slog.String("error", err.Error()))
		}
	}()
	if cfg.Cosigning != nil && len(cfg.Cosigning.Policy.Logs()) > 0 {
		if v, ok := cfg.Cosigning.Policy.Log(name); !ok || v.KeyHash() != signer.KeyHash() {
			stopServer(0)
			return fmt.Errorf("-witness-policy %s lists logs, but not this one (%s)", *witnessPolicy, vkey)
		}
	}
	srv.Attach(store)

	head := store.Head()
	mode := "open: no authentication, every caller may do everything"
	switch {
	case cfg.TLS != nil && cfg.TLS.ClientCAs != nil && cfg.Tokens != nil:
		mode = "mutual TLS and bearer tokens, with a policy"
	case cfg.TLS != nil && cfg.TLS.ClientCAs != nil:
		mode = "mutual TLS, with a policy"
	case cfg.Tokens != nil:
		mode = "bearer tokens, with a policy"
	}
	fmt.Fprintf(stdout, "tlogd serving log %s on %s\norigin: %s\nverifier key: %s\ntree size: %d\n",
		name, lis.Addr(), name, vkey, head.Size)
	if *replicaOf != "" {
		fmt.Fprintf(stdout, "replica of: %s\n", *replicaOf)
	}
	if tilesURL != "" {
		fmt.Fprintf(stdout, "tlog-tiles: %s\n", tilesURL)
		if *dashboard {
			fmt.Fprintf(stdout, "dashboard:  %s/ui/\n", tilesURL)
		}
	}
	fmt.Fprintf(stdout, "authentication: %s\n", mode) // the banner's last line
	logger.Info("serving", slog.String("addr", lis.Addr().String()), slog.String("origin", name), slog.String("replica_of", *replicaOf),
		slog.String("verifier_key", vkey), slog.Uint64("tree_size", head.Size), slog.String("data_dir", *dataDir),
		slog.Bool("tls", cfg.TLS != nil), slog.String("authentication", mode))
	if cfg.Policy == nil {
		logger.Warn("authentication is off: every caller may append and read payloads; use -tls-client-ca or -token-file with -policy for anything but local use")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-errc:
		stopServer(*drain)
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	logger.Info("shutting down", slog.Duration("drain_timeout", *drain))
	stopServer(*drain)
	for _, hs := range []*http.Server{metricsSrv, tilesSrv} {
		if hs != nil {
			hs.Close()
		}
	}
	logger.Info("stopped", slog.Uint64("tree_size", store.Head().Size))
	return nil
}

// openLog loads or creates the signing key and opens the store.
// opts gives the sizes; openLog sets the rest.
func openLog(logger *slog.Logger, dataDir, keyFile, origin string, opts storage.Options) (*storage.Store, note.Signer, string, error) {
	if keyFile == "" {
		keyFile = filepath.Join(dataDir, "log.key")
	}
	signerKey, created, err := loadOrCreateKey(keyFile, origin, dataDir)
	if err != nil {
		return nil, nil, "", err
	}
	signer, vkey, err := tlog.ParseSignerKey(signerKey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("key file %s: %w", keyFile, err)
	}
	if origin != "" && origin != signer.Name() {
		return nil, nil, "", fmt.Errorf("-origin %q does not match the key in %s, which is for origin %q", origin, keyFile, signer.Name())
	}
	if created {
		logger.Info("generated a new log key", slog.String("key_file", keyFile), slog.String("origin", signer.Name()))
	}
	// The store holds payloads: personal data. Pebble creates what is
	// missing with the process's umask; the directory itself is ours.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, "", fmt.Errorf("create -data-dir: %w", err)
	}
	opts.Signer, opts.VerifierKey, opts.Logger, opts.Reindex = signer, vkey, logger, server.Reindex
	store, err := storage.Open(dataDir, opts)
	switch {
	case errors.Is(err, storage.ErrWrongKey):
		return nil, nil, "", fmt.Errorf("refusing to start: %w; use the key this log was created with (-key-file)", err)
	case errors.Is(err, storage.ErrLocked):
		return nil, nil, "", fmt.Errorf("refusing to start: %w (is another tlogd running on %s?)", err, dataDir)
	case err != nil:
		return nil, nil, "", err
	}
	return store, signer, vkey, nil
}

// openReplica opens (or creates) a replica's store for the log of vkey.
func openReplica(logger *slog.Logger, dataDir, vkey string, opts storage.Options) (*storage.Store, error) {
	if _, err := note.NewVerifier(vkey); err != nil {
		return nil, cli.Usagef("-log-verifier-key: %v", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create -data-dir: %w", err)
	}
	opts.Replica, opts.VerifierKey, opts.Logger, opts.Reindex = true, vkey, logger, server.Reindex
	store, err := storage.Open(dataDir, opts)
	switch {
	case errors.Is(err, storage.ErrWrongKey):
		return nil, fmt.Errorf("refusing to start: %w", err)
	case errors.Is(err, storage.ErrLocked):
		return nil, fmt.Errorf("refusing to start: %w (is another tlogd running on %s?)", err, dataDir)
	}
	return store, err
}

// loadTLS builds the server's TLS configuration. With a client CA, client
// certificates are verified when presented; callers without one can still
// use a bearer token or the policy's anonymous roles.
func loadTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load -tls-cert and -tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read -tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-client-ca %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// loadCosigning reads the policy of the witnesses this log asks for
// cosignatures; every witness needs its URL.
func loadCosigning(file string) (*server.CosigningConfig, error) {
	p, err := readPolicy("-witness-policy", file)
	if err != nil {
		return nil, err
	}
	if len(p.Witnesses()) == 0 {
		return nil, fmt.Errorf("-witness-policy %s lists no witness (a line \"witness <name> <cosigner verifier key> <url>\")", file)
	}
	for _, w := range p.Witnesses() {
		if u := p.WitnessURL(w); !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("-witness-policy %s: witness %s needs an http:// or https:// URL, its tlog-witness submission prefix", file, w.Name())
		}
	}
	return &server.CosigningConfig{Policy: p}, nil
}

// loadWitness reads the witness's cosigner key and the logs it witnesses.
func loadWitness(keyFile, logsFile string) (*server.WitnessConfig, error) {
	skey, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read -witness-key: %w", err)
	}
	cosigner, err := tlog.ParseCosignerKey(string(skey), nil)
	if err != nil {
		return nil, fmt.Errorf("-witness-key %s: %w (make one with tlogd keygen -cosigner)", keyFile, err)
	}
	logs, err := readPolicy("-witness-logs", logsFile)
	if err != nil {
		return nil, err
	}
	if len(logs.Logs()) == 0 {
		return nil, fmt.Errorf("-witness-logs %s lists no log (a line \"log <verifier key>\")", logsFile)
	}
	return &server.WitnessConfig{Cosigner: cosigner, Logs: logs}, nil
}

// readPolicy reads and parses the C2SP tlog-policy file of a flag.
func readPolicy(flag, file string) (*tlog.Policy, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", flag, err)
	}
	p, err := tlog.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, file, err)
	}
	return p, nil
}

func metricsMux(srv *server.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", srv.MetricsHandler())
	return mux
}

// withDashboard serves the dashboard under /ui/ and h everywhere else.
func withDashboard(srv *server.Server, h http.Handler) (http.Handler, error) {
	dash, err := srv.DashboardHandler()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", dash)
	mux.Handle("/ui", dash)
	mux.Handle("/", h)
	return mux, nil
}

// startHTTP serves h on addr, over TLS with tlsCfg when it is set, until
// the returned server is closed. It returns the server's base URL. A
// failure to serve is sent to errc.
func startHTTP(logger *slog.Logger, what, addr string, h http.Handler, tlsCfg *tls.Config, errc chan<- error) (*http.Server, string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	url := "http://" + lis.Addr().String()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if tlsCfg != nil {
		hs.TLSConfig = tlsCfg.Clone()
		lis = tls.NewListener(lis, hs.TLSConfig)
		url = "https://" + lis.Addr().String()
	}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("%s: %w", what, err)
		}
	}()
	logger.Info("serving "+what, slog.String("addr", lis.Addr().String()), slog.Bool("tls", tlsCfg != nil))
	return hs, url, nil
}

// isLoopback reports whether a listen address only accepts local
// connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
		return nil, cli.Usagef("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, cli.Usagef("-log-format %q: want text, json or auto", format)
}

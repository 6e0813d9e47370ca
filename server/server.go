// Package server serves a tlogd log over gRPC: the tlog.v1.LogService
// API, the standard gRPC health service and server reflection. It
// authenticates callers (mutual TLS or bearer tokens), authorizes every
// method against a role policy, records every read of payloads in the log,
// validates requests, maps errors to gRPC status codes (InvalidArgument,
// OutOfRange, NotFound, Unauthenticated, PermissionDenied,
// ResourceExhausted, Unavailable, Internal), exports Prometheus metrics, and
// runs the single sequencer that group-commits appends.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
)

// Config configures a Server. Zero limits take the documented defaults.
type Config struct {
	// Store is the log to serve. If nil, the server starts with health
	// NOT_SERVING and every log call Unavailable until Attach. The caller
	// closes the store after Stop.
	Store *storage.Store
	// Logger receives access logs and errors. nil discards them.
	Logger *slog.Logger

	// TLS, if set, serves gRPC over TLS with this configuration. With
	// ClientCAs set, client certificates are verified (when presented) and
	// name their principal (see CertificateIdentity).
	TLS *tls.Config
	// Tokens, if set, accepts "authorization: Bearer <token>" metadata.
	Tokens *Tokens
	// Policy grants roles to principals. Required when callers can
	// authenticate (Tokens, or TLS with ClientCAs); without any of the
	// three the server runs open: every caller may do everything.
	Policy *Policy
	// RateLimit is how many calls per second each principal may make, with
	// bursts of RateBurst; 0 disables the limit. Not applied in open mode.
	RateLimit float64
	RateBurst int

	// MaxRecordsPerAppend bounds the records of one Append; default 1000.
	MaxRecordsPerAppend int
	// MaxPayloadBytes bounds one record's payload; default 64 KiB.
	MaxPayloadBytes int
	// MaxEntriesPerCall bounds GetEntries and stream chunks; default 1000.
	MaxEntriesPerCall int
	// MaxRequestBytes bounds a request message; default 16 MiB. Larger
	// requests fail with ResourceExhausted before they are decoded.
	MaxRequestBytes int
	// MaxResponseBytes bounds GetEntries responses and stream chunks, which
	// carry fewer entries rather than exceed it; default 4 MiB, the largest
	// message a gRPC client accepts by default.
	MaxResponseBytes int
	// MaxConcurrentStreams bounds the calls in flight on one connection;
	// default 1024.
	MaxConcurrentStreams int
	// MaxCallDuration caps the deadline of unary calls; default 1 minute.
	// MaxStreamDuration caps streams; default 1 hour (followers reconnect).
	MaxCallDuration, MaxStreamDuration time.Duration
	// MaxConnectionAge closes connections after this long, so clients
	// rebalance; default 1 hour, then 1 minute of grace for running calls.
	MaxConnectionAge time.Duration
	// ConnectionTimeout bounds the connection handshake; default 10 s.
	ConnectionTimeout time.Duration
	// MaxBatchRecords is how many records the sequencer puts in one durable
	// batch at most; default 4096. A single Append is never split.
	MaxBatchRecords int
	// QueueDepth is how many Append calls may wait for the sequencer;
	// default 1024. Further calls wait for room or for their deadline.
	QueueDepth int
	// Now is the clock for log time; default time.Now.
	Now func() time.Time

	// SessionTTL is how long a dashboard sign-in lasts; default 8 hours.
	SessionTTL time.Duration
	// DashboardHosts are the host names, in lower case, the dashboard
	// answers to over plain HTTP besides IP addresses and localhost (see
	// DashboardHandler).
	DashboardHosts []string
	// TrustedProxies are the addresses of reverse proxies in front of the
	// dashboard: from them, X-Forwarded-For names the browser's address
	// and X-Forwarded-Proto: https makes the request secure (the proxy
	// terminates TLS). Those headers from any other peer are ignored.
	TrustedProxies []netip.Prefix

	// Witness, if set, makes the server a C2SP tlog-witness of other logs
	// on its HTTP handler.
	Witness *WitnessConfig
	// Cosigning, if set, makes the log collect cosignatures of its
	// checkpoints from the witnesses of a policy.
	Cosigning *CosigningConfig
	// Replica, if set, makes the server a read replica of another tlogd;
	// Store must then be a replica's (storage.Options.Replica).
	Replica *ReplicaConfig
}

func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxRecordsPerAppend, 1000)
	def(&c.MaxPayloadBytes, 64<<10)
	def(&c.MaxEntriesPerCall, 1000)
	def(&c.MaxRequestBytes, 16<<20)
	def(&c.MaxResponseBytes, 4<<20)
	def(&c.MaxConcurrentStreams, 1024)
	def(&c.MaxBatchRecords, 4096)
	def(&c.QueueDepth, 1024)
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&c.MaxCallDuration, time.Minute)
	defDur(&c.MaxStreamDuration, time.Hour)
	defDur(&c.MaxConnectionAge, time.Hour)
	defDur(&c.ConnectionTimeout, 10*time.Second)
	defDur(&c.SessionTTL, 8*time.Hour)
	if c.Now == nil {
		c.Now = time.Now
	}
	for name, v := range map[string]int{
		"MaxRecordsPerAppend": c.MaxRecordsPerAppend, "MaxPayloadBytes": c.MaxPayloadBytes,
		"MaxEntriesPerCall": c.MaxEntriesPerCall, "MaxRequestBytes": c.MaxRequestBytes, "MaxResponseBytes": c.MaxResponseBytes,
		"MaxConcurrentStreams": c.MaxConcurrentStreams, "MaxBatchRecords": c.MaxBatchRecords, "QueueDepth": c.QueueDepth,
		"RateBurst": c.RateBurst,
	} {
		if v < 0 {
			return fmt.Errorf("server: Config.%s must not be negative", name)
		}
	}
	if c.Replica != nil {
		if c.Replica.Conn == nil || c.Replica.Primary == "" {
			return errors.New("server: Config.Replica needs Primary and Conn")
		}
		if c.Cosigning != nil {
			return errors.New("server: a replica does not collect cosignatures: its primary does")
		}
		if c.Replica.Retry <= 0 {
			c.Replica.Retry = 5 * time.Second
		}
	}
	if c.RateLimit < 0 {
		return errors.New("server: Config.RateLimit must not be negative")
	}
	if c.RateLimit > 0 && c.RateBurst == 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	// One Append is never split across batches.
	c.MaxBatchRecords = max(c.MaxBatchRecords, c.MaxRecordsPerAppend)
	if c.entryBudget() < c.MaxPayloadBytes+entryOverhead {
		return fmt.Errorf("server: Config.MaxResponseBytes (%d) cannot hold %d entries' framing and one %d-byte payload", c.MaxResponseBytes, c.MaxEntriesPerCall, c.MaxPayloadBytes)
	}
	mtls := c.TLS != nil && c.TLS.ClientCAs != nil
	if (mtls || c.Tokens != nil) && c.Policy == nil {
		return errors.New("server: a Policy is required when callers can authenticate (client certificates or tokens)")
	}
	return nil
}

// entryOverhead is the most a response spends per entry on framing, index
// and leaf hash, beyond the entry, salt and payload bytes.
const entryOverhead = 96

// entryBudget is how many entry, salt and payload bytes one response may
// carry.
func (c *Config) entryBudget() int {
	return c.MaxResponseBytes - c.MaxEntriesPerCall*entryOverhead
}

// Server is a running tlogd gRPC server. Call Stop to shut it down.
type Server struct {
	cfg      Config
	eraseMu  sync.RWMutex // one EraseSubject at a time; GetTimeline reads between them
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	auth     *authenticator
	metrics  *metrics
	store    atomic.Pointer[storage.Store]
	seq      atomic.Pointer[sequencer]
	stopping chan struct{}
	// cosign collects cosignatures of the log's checkpoints; nil without
	// Config.Cosigning.
	cosign *cosigning
	// witnessMu makes a witness's check against the latest cosigned
	// checkpoint and its update one step.
	witnessMu sync.Mutex
	stopOnce  sync.Once
	failOnce  sync.Once
	// writerStopped is set once the store refuses batches.
	writerStopped atomic.Bool
	// primarySize is, on a replica, the size of the primary's latest
	// checkpoint it has seen; replicaDone is closed when its follower ends.
	primarySize atomic.Uint64
	replicaDone chan struct{}
	// testHook, if set by a test, runs innermost, just before a handler,
	// and in add-checkpoint between the check and the update.
	testHook func(ctx context.Context, method string)
	// uiHook, if set by a test, may change a dashboard API response before
	// it is sent (a wrong proof, a forked checkpoint), or the call's error
	// (err: the call's; the answer: the hook's).
	uiHook func(method string, resp proto.Message, err error) error
	// dashConn is the dashboard's in-process connection, once
	// DashboardHandler made it.
	dashConn atomic.Pointer[grpc.ClientConn]
}

// New builds a Server. Its interceptor chain, outermost first: Prometheus
// metrics, access logging (slog: method, principal, code, duration),
// authentication and authorization, per-principal rate limiting, the
// per-call deadline cap, and panic recovery (a generic Internal to the
// client, the panic and stack to the log). It registers LogService, health
// and reflection.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		health:   health.NewServer(),
		stopping: make(chan struct{}),
	}
	s.auth = &authenticator{tokens: cfg.Tokens, policy: cfg.Policy, mtls: cfg.TLS != nil && cfg.TLS.ClientCAs != nil}
	s.metrics = newMetrics(s)
	if cfg.Cosigning != nil {
		s.cosign = newCosigning(s, cfg.Cosigning)
	}
	if cfg.Replica != nil {
		s.replicaDone = make(chan struct{})
	}
	if w := cfg.Witness; w != nil && w.GossipInterval <= 0 {
		w.GossipInterval = 10 * time.Second
	}

	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(accessLogLevel),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			if slot, ok := ctx.Value(slotKey{}).(*principalSlot); ok && slot.name != "" {
				return logging.Fields{"principal", slot.name}
			}
			return nil
		}),
	}
	recoveryOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(s.recovered)}
	unary := []grpc.UnaryServerInterceptor{
		s.metrics.grpc.UnaryServerInterceptor(),
		slotUnary,
		logging.UnaryServerInterceptor(accessLogger(s.log), logOpts...),
		auth.UnaryServerInterceptor(s.auth.authFunc),
	}
	stream := []grpc.StreamServerInterceptor{
		s.metrics.grpc.StreamServerInterceptor(),
		slotStream,
		logging.StreamServerInterceptor(accessLogger(s.log), logOpts...),
		auth.StreamServerInterceptor(s.auth.authFunc),
	}
	if cfg.RateLimit > 0 && cfg.Policy != nil {
		lim := newPrincipalLimiter(cfg.RateLimit, cfg.RateBurst)
		unary = append(unary, ratelimit.UnaryServerInterceptor(lim))
		stream = append(stream, ratelimit.StreamServerInterceptor(lim))
	}
	if cfg.Replica != nil {
		unary = append(unary, s.replicaUnary)
	}
	unary = append(unary, deadlineUnary(cfg.MaxCallDuration), recovery.UnaryServerInterceptor(recoveryOpts...), s.hookUnary)
	stream = append(stream, deadlineStream(cfg.MaxStreamDuration), recovery.StreamServerInterceptor(recoveryOpts...), s.hookStream)

	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.MaxSendMsgSize(cfg.MaxResponseBytes + 64<<10),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
		grpc.ConnectionTimeout(cfg.ConnectionTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second, // pings more often than this close the connection
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     15 * time.Minute,
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: time.Minute,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	tlogv1.RegisterLogServiceServer(s.grpc, &logService{srv: s})
	tlogv1.RegisterAuditServiceServer(s.grpc, &auditService{srv: s})
	tlogv1.RegisterWitnessServiceServer(s.grpc, &witnessService{srv: s})
	healthpb.RegisterHealthServer(s.grpc, healthService{s.health, s.stopping})
	reflection.Register(s.grpc)
	s.metrics.grpc.InitializeMetrics(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(tlogv1.LogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if cfg.Store != nil {
		s.Attach(cfg.Store)
	}
	return s, nil
}

// Attach starts serving the log in store, once it is open and verified:
// the sequencer starts and health turns SERVING. Call it once.
func (s *Server) Attach(store *storage.Store) {
	s.store.Store(store)
	if s.cfg.Replica != nil {
		s.seq.Store(refusingSequencer(s.notPrimary()))
		go s.runReplica(store)
	} else {
		s.seq.Store(newSequencer(store, s.cfg.MaxBatchRecords, s.cfg.QueueDepth, s.cfg.Now, s.writerFailed, s.metrics.batch))
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(tlogv1.LogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	if s.cosign != nil {
		go s.cosign.run(store)
	}
	if w := s.cfg.Witness; w != nil && len(w.Peers) > 0 {
		go s.runGossip(store)
	}
}

// errNotReady is returned by log calls before Attach.
var errNotReady = status.Error(codes.Unavailable, "the log is still opening; retry shortly")

// attached returns the store and sequencer, or errNotReady.
func (s *Server) attached() (*storage.Store, *sequencer, error) {
	st, q := s.store.Load(), s.seq.Load()
	if st == nil || q == nil {
		return nil, nil, errNotReady
	}
	if st.Head().Checkpoint == nil {
		return nil, nil, status.Errorf(codes.Unavailable, "this replica has not yet copied a checkpoint from its primary %s; retry shortly", s.cfg.Replica.Primary)
	}
	return st, q, nil
}

// Serve accepts connections on lis until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// Stop drains the server: health reports NOT_SERVING, new calls are refused,
// following streams and health watches end, running calls finish (until ctx
// ends, when they are cut off), and the sequencer commits what it has
// queued. The store stays open; close it after Stop returns.
func (s *Server) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		close(s.stopping)
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.grpc.Stop()
			<-done
		}
		if c := s.dashConn.Load(); c != nil {
			c.Close()
		}
		if q := s.seq.Load(); q != nil {
			q.stop()
		}
		if s.replicaDone != nil && s.store.Load() != nil { // attached: the follower runs
			<-s.replicaDone
		}
	})
}

// healthService is the standard health service, except that Watch streams
// end when the server stops (they never end on their own, and graceful
// shutdown waits for every open call), and that it needs no credentials.
type healthService struct {
	*health.Server
	stopping <-chan struct{}
}

// AuthFuncOverride exempts the health service from authentication.
func (h healthService) AuthFuncOverride(ctx context.Context, _ string) (context.Context, error) {
	return ctx, nil
}

func (h healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return h.Server.Watch(req, watchStream{stream, ctx})
}

// watchStream is a health Watch stream with a context that ends at stop.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }

// writerFailed reports, once, that the store stopped accepting batches.
func (s *Server) writerFailed(err error) {
	s.failOnce.Do(func() {
		s.writerStopped.Store(true)
		s.log.Error("log writer stopped: appends fail until tlogd restarts", slog.String("error", err.Error()))
		s.health.SetServingStatus(tlogv1.LogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	})
}

func (s *Server) status(ctx context.Context, err error) error { return toStatus(ctx, s.log, err) }

// recovered turns a panic into a generic Internal status; the panic value and
// stack go to the server log only.
func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
	return status.Error(codes.Internal, "internal error")
}

// accessLogLevel logs successful calls at debug level, client errors at
// info, and server-side failures at warn or error.
func accessLogLevel(c codes.Code) logging.Level {
	switch c {
	case codes.OK:
		return logging.LevelDebug
	case codes.Internal, codes.DataLoss, codes.Unknown:
		return logging.LevelError
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return logging.LevelWarn
	}
	return logging.LevelInfo
}

func accessLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// slotUnary and slotStream give each call a principal slot that the
// authentication step fills in and the access log reads.
func slotUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(context.WithValue(ctx, slotKey{}, &principalSlot{}), req)
}

func slotStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = context.WithValue(ss.Context(), slotKey{}, &principalSlot{})
	return h(srv, w)
}

// deadlineUnary caps the deadline of unary calls at max.
func deadlineUnary(max time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > max {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max)
			defer cancel()
		}
		return h(ctx, req)
	}
}

// deadlineStream caps the deadline of streams at max.
func deadlineStream(max time.Duration) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx := ss.Context()
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > max {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, max)
			defer cancel()
			w := middleware.WrapServerStream(ss)
			w.WrappedContext = ctx
			ss = w
		}
		return h(srv, ss)
	}
}

func (s *Server) hookUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.testHook != nil {
		s.testHook(ctx, info.FullMethod)
	}
	return h(ctx, req)
}

func (s *Server) hookStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if s.testHook != nil {
		s.testHook(ss.Context(), info.FullMethod)
	}
	return h(srv, ss)
}

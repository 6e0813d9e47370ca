// Package server serves a tlogd log over gRPC: the tlog.v1.LogService
// API, the standard gRPC health service and server reflection. It validates
// requests, maps errors to gRPC status codes (InvalidArgument, OutOfRange,
// NotFound, Unavailable, Internal) and runs the single sequencer that
// group-commits appends.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
)

// Config configures a Server. Zero limits take the documented defaults.
type Config struct {
	// Store is the log to serve. Required. The caller closes it after Stop.
	Store *storage.Store
	// Logger receives access logs and errors. nil discards them.
	Logger *slog.Logger
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
	// MaxBatchRecords is how many records the sequencer puts in one durable
	// batch at most; default 4096. A single Append is never split.
	MaxBatchRecords int
	// QueueDepth is how many Append calls may wait for the sequencer;
	// default 1024. Further calls wait for room or for their deadline.
	QueueDepth int
	// Now is the clock for log time; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Store == nil {
		return errors.New("server: Config.Store is required")
	}
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
	def(&c.MaxBatchRecords, 4096)
	def(&c.QueueDepth, 1024)
	if c.Now == nil {
		c.Now = time.Now
	}
	for name, v := range map[string]int{
		"MaxRecordsPerAppend": c.MaxRecordsPerAppend, "MaxPayloadBytes": c.MaxPayloadBytes,
		"MaxEntriesPerCall": c.MaxEntriesPerCall, "MaxRequestBytes": c.MaxRequestBytes, "MaxResponseBytes": c.MaxResponseBytes,
		"MaxBatchRecords": c.MaxBatchRecords, "QueueDepth": c.QueueDepth,
	} {
		if v < 0 {
			return fmt.Errorf("server: Config.%s must not be negative", name)
		}
	}
	// One Append is never split across batches.
	c.MaxBatchRecords = max(c.MaxBatchRecords, c.MaxRecordsPerAppend)
	if c.entryBudget() < c.MaxPayloadBytes+entryOverhead {
		return fmt.Errorf("server: Config.MaxResponseBytes (%d) cannot hold %d entries' framing and one %d-byte payload", c.MaxResponseBytes, c.MaxEntriesPerCall, c.MaxPayloadBytes)
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
	store    *storage.Store
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	seq      *sequencer
	stopping chan struct{}
	stopOnce sync.Once
	failOnce sync.Once
}

// New builds a Server with its interceptor chain (access logging outside,
// panic recovery innermost) and registers LogService, health and reflection.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		health:   health.NewServer(),
		stopping: make(chan struct{}),
	}
	s.seq = newSequencer(cfg.Store, cfg.MaxBatchRecords, cfg.QueueDepth, cfg.Now, s.writerFailed)

	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(accessLogLevel),
	}
	recoveryOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(s.recovered)}
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(accessLogger(s.log), logOpts...),
			recovery.UnaryServerInterceptor(recoveryOpts...),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(accessLogger(s.log), logOpts...),
			recovery.StreamServerInterceptor(recoveryOpts...),
		),
	)
	tlogv1.RegisterLogServiceServer(s.grpc, &logService{srv: s})
	healthpb.RegisterHealthServer(s.grpc, healthService{s.health, s.stopping})
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(tlogv1.LogService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Serve accepts connections on lis until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// Stop drains the server: health reports NOT_SERVING, new calls are refused,
// following streams end, running calls finish (until ctx ends, when they are
// cut off), and the sequencer commits what it has queued. The store stays
// open; close it after Stop returns.
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
		s.seq.stop()
	})
}

// healthService is the standard health service, except that Watch streams
// end when the server stops: they never end on their own, and graceful
// shutdown waits for every open call.
type healthService struct {
	*health.Server
	stopping <-chan struct{}
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

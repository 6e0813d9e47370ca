package server

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// BenchmarkAppendChain measures unary Append of one 256-byte record, 64
// calls in flight, client and server in this process: "open" has no TLS and
// no authentication; "mtls" has mutual TLS, the policy, rate limiting and
// the whole interceptor chain. The difference is the cost of security.
//
//	go test ./server -run '^$' -bench AppendChain -benchtime 10s -count 5
func BenchmarkAppendChain(b *testing.B) {
	for _, mode := range []string{"open", "mtls"} {
		b.Run(mode, func(b *testing.B) {
			var conn = func() tlogv1.LogServiceClient {
				if mode == "open" {
					return startLog(b, nil).client
				}
				sl := startSecureLog(b, testPolicy, func(c *Config) { c.RateLimit = 1e9 })
				return tlogv1.NewLogServiceClient(sl.dial(b, "spiffe://example.org/billing"))
			}()
			var n atomic.Uint64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				payload := make([]byte, 256)
				for pb.Next() {
					binary.BigEndian.PutUint64(payload, n.Add(1))
					if _, err := conn.Append(context.Background(), &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: payload}}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

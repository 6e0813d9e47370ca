package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// BenchmarkApply measures the sequencer alone, without gRPC: batches of
// records of 256 random bytes, each batch committed with a synced Pebble
// batch and a signed checkpoint, on disk in the test's temp dir. Salts,
// commitments and payload hashes are prepared outside the timed loop, as
// the server's handlers compute them in parallel before queueing.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			k := newTestKey(b, "example.com/log")
			s, err := Open(b.TempDir(), Options{Signer: k.signer, VerifierKey: k.vkey})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Prepare enough distinct records for every iteration.
			const pool = 1 << 16
			payloads := make([]byte, pool*256)
			rand.Read(payloads)
			recs := make([]Record, 0, pool)
			for i := range pool {
				p := payloads[i*256 : (i+1)*256]
				r := Record{Payload: p, PayloadHash: sha256.Sum256(p)}
				rand.Read(r.Salt[:])
				r.Commitment = tlog.Commit(r.Salt[:], p)
				recs = append(recs, r)
			}
			next := 0
			batch := &Batch{Records: make([]Record, size)}
			b.SetBytes(int64(size * 256))
			for b.Loop() {
				for j := range batch.Records {
					r := recs[next%pool]
					// The pool repeats; give every record its own dedup key.
					r.PayloadHash = sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(next)))
					batch.Records[j] = r
					next++
				}
				batch.Time++
				if _, _, err := s.Apply(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

package server

import (
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tlogd/tlogd/storage"
)

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg            *prometheus.Registry
	grpc           *grpcprom.ServerMetrics
	batchRecords   prometheus.Histogram
	batchSequence  prometheus.Histogram
	fsync          prometheus.Histogram
	appendDuration prometheus.Histogram
	payloadReads   prometheus.Counter
	witness        *prometheus.CounterVec
	cosignatures   *prometheus.CounterVec
	cosignedSize   prometheus.Gauge
	splitViews     *prometheus.CounterVec
	replica        *replicaMetrics // nil unless the server is a replica
}

func newMetrics(s *Server) *metrics {
	latency := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100 µs … 3.3 s
	m := &metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(latency))),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tlogd_batch_records",
			Help:    "Records per durable batch (one fsync and one checkpoint each).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 … 8192
		}),
		batchSequence: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tlogd_batch_sequence_seconds",
			Help:    "Time the sequencer spends building a batch and handing it to Pebble.",
			Buckets: latency,
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tlogd_batch_fsync_seconds",
			Help:    "Time a batch waits for its WAL fsync after it is handed to Pebble.",
			Buckets: latency,
		}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tlogd_append_duration_seconds",
			Help:    "Time from queueing an Append's records to their batch being durable.",
			Buckets: latency,
		}),
		payloadReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlogd_payload_reads_total",
			Help: "Reads that returned payloads; each is recorded in the log.",
		}),
		witness: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlogd_witness_requests_total",
			Help: "add-checkpoint requests to the witness, by HTTP status (Unprocessable Entity: a signed checkpoint inconsistent with the cosigned one, maybe a fork).",
		}, []string{"status"}),
		cosignatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlogd_cosignature_requests_total",
			Help: "Requests to the witnesses of the log's witness policy to cosign its checkpoint, by witness and result (ok or error).",
		}, []string{"witness", "result"}),
		splitViews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlogd_split_views_total",
			Help: "Split views this witness caught by comparing its cosigned checkpoints with its peers': the log showed two histories; the evidence is kept and the log is no longer cosigned.",
		}, []string{"origin"}),
		cosignedSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlogd_cosigned_tree_size",
			Help: "Size of the newest checkpoint whose cosignatures meet the witness policy's quorum.",
		}),
	}
	m.reg.MustRegister(
		m.grpc, m.batchRecords, m.batchSequence, m.fsync, m.appendDuration, m.payloadReads, m.witness, m.cosignatures, m.cosignedSize, m.splitViews,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&logCollector{s},
	)
	if s.cfg.Replica != nil {
		m.replica = newReplicaMetrics(m.reg)
	}
	return m
}

func (m *metrics) batch(st storage.BatchStats) {
	m.batchRecords.Observe(float64(st.Records))
	m.batchSequence.Observe(st.Sequence.Seconds())
	m.fsync.Observe(st.Sync.Seconds())
}

// MetricsHandler serves the server's metrics in the Prometheus text format.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg})
}

// logCollector reports the state of the log and of its Pebble store at
// each scrape.
type logCollector struct{ s *Server }

var (
	descTreeSize       = prometheus.NewDesc("tlogd_tree_size", "Leaves in the latest published tree.", nil, nil)
	descCheckpointAge  = prometheus.NewDesc("tlogd_checkpoint_age_seconds", "Seconds since the latest checkpoint's batch was sequenced.", nil, nil)
	descReady          = prometheus.NewDesc("tlogd_ready", "1 when the log is open and accepting appends.", nil, nil)
	descDiskBytes      = prometheus.NewDesc("tlogd_pebble_disk_bytes", "Bytes the store uses on disk.", nil, nil)
	descMemtableBytes  = prometheus.NewDesc("tlogd_pebble_memtable_bytes", "Bytes in Pebble's memtables.", nil, nil)
	descL0Files        = prometheus.NewDesc("tlogd_pebble_l0_files", "Tables in Pebble's level 0.", nil, nil)
	descL0Sublevels    = prometheus.NewDesc("tlogd_pebble_l0_sublevels", "Sublevels of Pebble's level 0.", nil, nil)
	descReadAmp        = prometheus.NewDesc("tlogd_pebble_read_amplification", "Sorted runs a point read may visit.", nil, nil)
	descCompactionDebt = prometheus.NewDesc("tlogd_pebble_compaction_debt_bytes", "Bytes compactions are estimated still to write.", nil, nil)
	descCompactions    = prometheus.NewDesc("tlogd_pebble_compactions_total", "Compactions since the store was opened.", nil, nil)
	descFlushes        = prometheus.NewDesc("tlogd_pebble_flushes_total", "Memtable flushes since the store was opened.", nil, nil)
	descIngestions     = prometheus.NewDesc("tlogd_pebble_ingestions_total", "Table ingestions (hash-index epochs) since the store was opened.", nil, nil)
	descWALBytes       = prometheus.NewDesc("tlogd_pebble_wal_written_bytes_total", "Bytes written to the WAL since the store was opened.", nil, nil)
	descCacheBytes     = prometheus.NewDesc("tlogd_pebble_block_cache_bytes", "Bytes in the block cache.", nil, nil)
	descCacheHits      = prometheus.NewDesc("tlogd_pebble_block_cache_hits_total", "Block cache hits.", nil, nil)
	descCacheMisses    = prometheus.NewDesc("tlogd_pebble_block_cache_misses_total", "Block cache misses.", nil, nil)
	descIndexEpochs    = prometheus.NewDesc("tlogd_index_epochs", "Hash-index epochs on disk.", nil, nil)
	descIndexPending   = prometheus.NewDesc("tlogd_index_pending_leaves", "Recent leaves indexed only in memory.", nil, nil)
	descAvailBytes     = prometheus.NewDesc("tlogd_disk_available_bytes", "Free space on the data directory's filesystem.", nil, nil)
	descReserveBytes   = prometheus.NewDesc("tlogd_disk_reserve_bytes", "Free space appends leave on the data directory's filesystem: below it they fail with ResourceExhausted.", nil, nil)
	descCorruptions    = prometheus.NewDesc("tlogd_storage_corruptions_total", "Damaged blocks found in the data directory's files since start (checksum mismatches); the reads that hit them failed.", nil, nil)
)

func (c *logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTreeSize, descCheckpointAge, descReady, descDiskBytes, descMemtableBytes,
		descL0Files, descL0Sublevels, descReadAmp, descCompactionDebt, descCompactions, descFlushes, descIngestions,
		descWALBytes, descCacheBytes, descCacheHits, descCacheMisses, descIndexEpochs, descIndexPending, descCorruptions, descAvailBytes, descReserveBytes} {
		ch <- d
	}
}

func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	store := c.s.store.Load()
	if store == nil {
		gauge(descReady, 0)
		return
	}
	ready := 1.0
	if c.s.writerStopped.Load() {
		ready = 0
	}
	gauge(descReady, ready)
	h := store.Head()
	gauge(descTreeSize, float64(h.Size))
	if !h.Time.IsZero() {
		gauge(descCheckpointAge, time.Since(h.Time).Seconds())
	}
	st := store.Stats()
	gauge(descDiskBytes, float64(st.DiskBytes))
	gauge(descMemtableBytes, float64(st.MemTableBytes))
	gauge(descL0Files, float64(st.L0Files))
	gauge(descL0Sublevels, float64(st.L0Sublevels))
	gauge(descReadAmp, float64(st.ReadAmp))
	gauge(descCompactionDebt, float64(st.CompactionDebtBytes))
	counter(descCompactions, float64(st.Compactions))
	counter(descFlushes, float64(st.Flushes))
	counter(descIngestions, float64(st.Ingestions))
	counter(descWALBytes, float64(st.WALBytesWritten))
	gauge(descCacheBytes, float64(st.BlockCacheBytes))
	counter(descCacheHits, float64(st.BlockCacheHits))
	counter(descCacheMisses, float64(st.BlockCacheMisses))
	gauge(descIndexEpochs, float64(st.IndexEpochs))
	gauge(descIndexPending, float64(st.IndexPending))
	counter(descCorruptions, float64(st.Corruptions))
	if st.AvailBytes > 0 {
		gauge(descAvailBytes, float64(st.AvailBytes))
	}
	gauge(descReserveBytes, float64(st.ReserveBytes))
}

package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
)

// recordPayloadRead appends an AuditEvent saying who read payloads, how
// (reason and labels) and when, and waits until it is durable. Callers send
// payloads only after it returns without error, so every read of personal
// data leaves a trace in the log itself.
func (s *Server) recordPayloadRead(ctx context.Context, store *storage.Store, seq *sequencer, reason string, labels map[string]string) error {
	if seq.refuse != nil {
		return seq.refuse // a replica: it cannot record the read
	}
	ev := s.ownEvent(ctx, store, tlogv1.Action_ACTION_LOG_PAYLOADS_READ, reason, labels)
	if _, _, err := s.recordOwn(ctx, seq, ev, nil); err != nil {
		return fmt.Errorf("record payload read: %w", err)
	}
	s.metrics.payloadReads.Inc()
	return nil
}

// ownEvent is an event tlogd records about a caller's act on the log: the
// caller is the actor, the log the target.
func (s *Server) ownEvent(ctx context.Context, store *storage.Store, action tlogv1.Action, reason string, labels map[string]string) *tlogv1.AuditEvent {
	p, _ := PrincipalFrom(ctx)
	actor := &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: truncate(p.Name, 256)}
	if p.Via == "mtls" {
		actor.Type = tlogv1.ActorType_ACTOR_TYPE_SERVICE
	}
	if addr, agent, ok := uiCaller(ctx); ok {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			actor.SourceIp = host
		}
		actor.UserAgent = truncate(agent, 512)
	} else {
		if pr, ok := peer.FromContext(ctx); ok {
			if host, _, err := net.SplitHostPort(pr.Addr.String()); err == nil {
				actor.SourceIp = host
			}
		}
		if ua := metadata.ValueFromIncomingContext(ctx, "user-agent"); len(ua) > 0 {
			actor.UserAgent = truncate(ua[0], 512)
		}
	}
	labels["via"] = p.Via
	id := make([]byte, 16)
	rand.Read(id)
	return &tlogv1.AuditEvent{
		EventId:       hex.EncodeToString(id),
		OccurredAt:    timestamppb.New(s.cfg.Now()),
		Actor:         actor,
		Action:        action,
		Target:        &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_LOG, Id: store.Origin()},
		Outcome:       tlogv1.Outcome_OUTCOME_SUCCESS,
		Reason:        reason,
		SourceService: "tlogd",
		Labels:        labels,
	}
}

// recordOwn appends one of tlogd's own events like any other (it joins the
// actor's chain and the indexes), with the erasure it carries if any, and
// waits until it is durable.
func (s *Server) recordOwn(ctx context.Context, seq *sequencer, ev *tlogv1.AuditEvent, erases *storage.Erasure) (storage.Result, storage.Head, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		return storage.Result{}, storage.Head{}, fmt.Errorf("encode %s record: %w", ev.GetAction(), err)
	}
	records := newRecords([][]byte{b}, false)
	eventRecord(&records[0], ev)
	records[0].Erases = erases
	res, head, err := seq.submit(ctx, records)
	if err != nil {
		return storage.Result{}, storage.Head{}, err
	}
	return res[0], head, nil
}

// entriesRead describes a run of entries for a payload-read record.
func entriesRead(method string, es []storage.Entry) (string, map[string]string) {
	first, last := es[0].Index, es[len(es)-1].Index
	return fmt.Sprintf("%s returned the payloads of entries %d to %d", method, first, last),
		map[string]string{"method": method, "first_index": fmt.Sprint(first), "last_index": fmt.Sprint(last)}
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

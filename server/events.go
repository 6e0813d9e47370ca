package server

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// auditService implements tlog.v1.AuditService.
type auditService struct {
	tlogv1.UnimplementedAuditServiceServer
	srv *Server
}

// The posting-list terms of audit events: a kind byte and a fixed-length
// value, so that no term is a prefix of another.
const (
	termSubject = 'S' // + SHA-256 subject key
	termTenant  = 'N' // + SHA-256 of the tenant
	termAction  = 'C' // + 4-byte action + 1-byte outcome
)

// Every posting's value is the roles its subject plays in the event (0 in
// tenant and action postings), the event's action (4 bytes) and outcome (1
// byte), so that most filters are checked without reading the event.

// Roles a subject plays in an event, as stored in its subject posting.
const (
	roleActor  = 1
	roleTarget = 2
)

// subjectKey identifies a subject: an actor or target id within a tenant.
func subjectKey(tenant, id string) tlog.Hash {
	h := sha256.New()
	h.Write([]byte("tlogd/subject/v1\x00"))
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return tlog.Hash(h.Sum(nil))
}

// eventKey is an event's dedup key: its tenant and event id.
func eventKey(tenant, eventID string) tlog.Hash {
	h := sha256.New()
	h.Write([]byte("tlogd/event/v1\x00"))
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(eventID))
	return tlog.Hash(h.Sum(nil))
}

func subjectTerm(subj tlog.Hash) []byte { return append([]byte{termSubject}, subj[:]...) }

func tenantTerm(tenant string) []byte {
	h := sha256.Sum256([]byte("tlogd/tenant/v1\x00" + tenant))
	return append([]byte{termTenant}, h[:]...)
}

func actionTerm(a tlogv1.Action, o tlogv1.Outcome) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{termAction}, uint32(a)), byte(o))
}

func postingValue(roles byte, ev *tlogv1.AuditEvent) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{roles}, uint32(ev.GetAction())), byte(ev.GetOutcome()))
}

// eventRecord validates nothing: it turns a valid event into a record with
// its subjects and postings; salt and commitment come from newRecords.
func eventRecord(r *storage.Record, ev *tlogv1.AuditEvent) {
	tenant := ev.GetTenant()
	actor, target := subjectKey(tenant, ev.GetActor().GetId()), subjectKey(tenant, ev.GetTarget().GetId())
	r.PayloadHash = eventKey(tenant, ev.GetEventId())
	r.Subjects = []tlog.Hash{actor, target}
	if actor == target {
		r.Postings = append(r.Postings, storage.Posting{Term: subjectTerm(actor), Value: postingValue(roleActor|roleTarget, ev)})
	} else {
		r.Postings = append(r.Postings,
			storage.Posting{Term: subjectTerm(actor), Value: postingValue(roleActor, ev)},
			storage.Posting{Term: subjectTerm(target), Value: postingValue(roleTarget, ev)})
	}
	value := postingValue(0, ev)
	r.Postings = append(r.Postings, storage.Posting{Term: tenantTerm(tenant), Value: value},
		storage.Posting{Term: actionTerm(ev.GetAction(), ev.GetOutcome()), Value: value})
}

func (a *auditService) RecordEvents(ctx context.Context, req *tlogv1.RecordEventsRequest) (*tlogv1.RecordEventsResponse, error) {
	s := a.srv
	evs := req.GetEvents()
	switch {
	case len(evs) == 0:
		return nil, invalid("events: must hold at least 1 event")
	case len(evs) > s.cfg.MaxRecordsPerAppend:
		return nil, invalid("events: %d events exceed the limit of %d per call", len(evs), s.cfg.MaxRecordsPerAppend)
	}
	payloads := make([][]byte, len(evs))
	total := 0
	for i, ev := range evs {
		if err := validateEvent(ev); err != nil {
			return nil, invalid("events[%d].%v", i, err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			return nil, invalid("events[%d]: %v", i, err)
		}
		if len(b) > s.cfg.MaxPayloadBytes {
			return nil, invalid("events[%d]: the encoded event has %d bytes, over the limit of %d", i, len(b), s.cfg.MaxPayloadBytes)
		}
		payloads[i] = b
		// Each result echoes its payload: the answer must fit the response
		// limit, which is checked before anything is appended.
		if total += len(b) + resultOverhead; total > s.cfg.entryBudget() {
			return nil, invalid("events: the answer to %d events would exceed max_response_bytes (%d); send fewer or smaller events per call", i+1, s.cfg.MaxResponseBytes)
		}
	}
	records := newRecords(payloads, false)
	for i := range records {
		eventRecord(&records[i], evs[i])
	}
	out, err := s.sequence(ctx, records, req.GetIncludeProofs(), req.GetConsistencyFrom(), false)
	if err != nil {
		return nil, err
	}
	resp := &tlogv1.RecordEventsResponse{Results: make([]*tlogv1.EventResult, len(out.results)), Checkpoint: out.checkpoint, ConsistencyProof: out.consistency}
	for i, r := range out.results {
		er := &tlogv1.EventResult{Result: r, Payload: out.stored[i].Payload}
		if r.GetDuplicate() && !bytes.Equal(out.stored[i].Payload, payloads[i]) {
			er.Conflict, er.Payload, r.Salt = true, nil, nil
		}
		resp.Results[i] = er
	}
	return resp, nil
}

// resultOverhead bounds the bytes of a RecordEvents result besides its
// payload: index, leaf hash, entry, salt and an inclusion proof of up to 64
// hashes, with their framing.
const resultOverhead = 8 + 34 + 60 + 18 + 64*34 + 16

// Timeline pages hold at most this many events; 100 by default.
const (
	maxPageSize     = 1000
	defaultPageSize = 100
)

func (a *auditService) GetTimeline(ctx context.Context, req *tlogv1.GetTimelineRequest) (*tlogv1.GetTimelineResponse, error) {
	s := a.srv
	if err := checkID(req.GetSubjectId(), 256, true); err != nil {
		return nil, invalid("subject_id: %v", err)
	}
	if err := checkID(req.GetTenant(), 128, false); err != nil {
		return nil, invalid("tenant: %v", err)
	}
	pageSize, from, err := parsePage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	size, cp, err := checkpointAt(store, "tree_size", req.GetTreeSize())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	term := subjectTerm(subjectKey(req.GetTenant(), req.GetSubjectId()))
	resp := &tlogv1.GetTimelineResponse{Checkpoint: string(cp)}
	// The latest event and the page agree: no erasure between the reads.
	s.eraseMu.RLock()
	defer s.eraseMu.RUnlock()
	last, err := store.Postings(term, 0, size, 1, true)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if len(last) == 0 {
		return resp, nil
	}
	resp.HasEvents, resp.LatestIndex = true, last[0].Index
	hits, err := store.Postings(term, from, size, pageSize+1, false)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if len(hits) > pageSize {
		resp.NextPageToken = pageToken(hits[pageSize].Index)
		hits = hits[:pageSize]
	}
	if len(hits) == 0 {
		return resp, nil
	}
	budget := s.cfg.entryBudget()
	for i, h := range hits {
		te, err := s.timelineEvent(store, h.Index, size)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		if len(h.Value) > 0 {
			te.SubjectRoles = uint32(h.Value[0])
		}
		// Within the response limit, as GetEntries: the payload goes twice
		// (raw and decoded).
		e := te.GetEntry()
		if budget -= provenSize(e.GetEntry(), e.GetSalt(), e.GetPayload(), len(te.GetInclusionProof())); budget < 0 && i > 0 {
			resp.NextPageToken = pageToken(h.Index)
			hits = hits[:i]
			break
		}
		resp.Events = append(resp.Events, te)
	}
	// No payload leaves the server before the read is durably recorded.
	reason := fmt.Sprintf("GetTimeline returned %d events of a subject, entries %d to %d", len(hits), hits[0].Index, hits[len(hits)-1].Index)
	labels := map[string]string{"method": "GetTimeline", "first_index": fmt.Sprint(hits[0].Index), "last_index": fmt.Sprint(hits[len(hits)-1].Index)}
	if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
		return nil, s.status(ctx, err)
	}
	return resp, nil
}

// provenSize bounds the bytes an event with its entry, salt, payload (sent
// twice: raw and decoded) and an inclusion proof of proofHashes hashes
// takes in a response.
func provenSize(entry, salt, payload []byte, proofHashes int) int {
	return 2*len(payload) + len(entry) + len(salt) + 33*(proofHashes+1)
}

// timelineEvent reads entry index with its payload and proves it at size.
func (s *Server) timelineEvent(store *storage.Store, index, size uint64) (*tlogv1.ProvenEvent, error) {
	es, err := store.Entries(index, 1, true, s.cfg.entryBudget())
	if err != nil {
		return nil, err
	}
	p, err := store.InclusionProof(index, size)
	if err != nil {
		return nil, err
	}
	pe := &tlogv1.ProvenEvent{Entry: entriesProto(es)[0], InclusionProof: hashBytes(p)}
	if !es[0].Erased {
		pe.Event = &tlogv1.AuditEvent{}
		if err := proto.Unmarshal(es[0].Payload, pe.Event); err != nil {
			return nil, fmt.Errorf("%w: entry %d is in a subject's posting list but holds no audit event: %w", storage.ErrCorrupt, index, err)
		}
	}
	return pe, nil
}

func pageToken(next uint64) string {
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, next))
}

// parsePage checks a request's page_size (0: the default) and page_token
// (empty: from the start), and returns the size and the index to resume at.
func parsePage(size uint32, tok string) (int, uint64, error) {
	n := int(size)
	switch {
	case n == 0:
		n = defaultPageSize
	case n > maxPageSize:
		return 0, 0, invalid("page_size: %d exceeds the limit of %d", n, maxPageSize)
	}
	if tok == "" {
		return n, 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 8 {
		return 0, 0, invalid("page_token: not a token from a previous response")
	}
	return n, binary.BigEndian.Uint64(b), nil
}

// ownAction reports whether only tlogd itself records action.
func ownAction(a tlogv1.Action) bool {
	return a == tlogv1.Action_ACTION_LOG_PAYLOADS_READ || a == tlogv1.Action_ACTION_SUBJECT_ERASED
}

// validateEvent checks an event strictly; the error names the field
// (relative to the event).
func validateEvent(ev *tlogv1.AuditEvent) error {
	if ev == nil {
		return fmt.Errorf("event_id: the event is empty")
	}
	if f := unknownFields(ev); f != "" {
		return fmt.Errorf("%s: unknown fields are not accepted (they would be stored unchecked)", f)
	}
	if err := checkID(ev.GetEventId(), 128, true); err != nil {
		return fmt.Errorf("event_id: %w", err)
	}
	if ev.GetOccurredAt() == nil {
		return fmt.Errorf("occurred_at: required")
	}
	if err := ev.GetOccurredAt().CheckValid(); err != nil {
		return fmt.Errorf("occurred_at: %w", err)
	}
	act := ev.GetActor()
	switch {
	case act == nil:
		return fmt.Errorf("actor: required")
	case act.GetType() == tlogv1.ActorType_ACTOR_TYPE_UNSPECIFIED:
		return fmt.Errorf("actor.type: required")
	case tlogv1.ActorType_name[int32(act.GetType())] == "":
		return fmt.Errorf("actor.type: unknown value %d", act.GetType())
	}
	if err := checkID(act.GetId(), 256, true); err != nil {
		return fmt.Errorf("actor.id: %w", err)
	}
	if err := checkText(act.GetDisplayName(), 256); err != nil {
		return fmt.Errorf("actor.display_name: %w", err)
	}
	if ip := act.GetSourceIp(); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("actor.source_ip: %q is not an IPv4 or IPv6 address", truncate(ip, 64))
		}
	}
	if err := checkText(act.GetUserAgent(), 512); err != nil {
		return fmt.Errorf("actor.user_agent: %w", err)
	}
	switch a := ev.GetAction(); {
	case a == tlogv1.Action_ACTION_UNSPECIFIED:
		return fmt.Errorf("action: required")
	case tlogv1.Action_name[int32(a)] == "":
		return fmt.Errorf("action: unknown value %d", a)
	case ownAction(a):
		return fmt.Errorf("action: %s is recorded by tlogd itself", a)
	case a == tlogv1.Action_ACTION_CUSTOM:
		if err := checkID(ev.GetCustomAction(), 128, true); err != nil {
			return fmt.Errorf("custom_action: %w (required with ACTION_CUSTOM)", err)
		}
	case ev.GetCustomAction() != "":
		return fmt.Errorf("custom_action: only with ACTION_CUSTOM")
	}
	tgt := ev.GetTarget()
	switch {
	case tgt == nil:
		return fmt.Errorf("target: required")
	case tgt.GetType() == tlogv1.TargetType_TARGET_TYPE_UNSPECIFIED:
		return fmt.Errorf("target.type: required")
	case tlogv1.TargetType_name[int32(tgt.GetType())] == "":
		return fmt.Errorf("target.type: unknown value %d", tgt.GetType())
	}
	if tgt.GetType() == tlogv1.TargetType_TARGET_TYPE_LOG {
		return fmt.Errorf("target.type: TARGET_TYPE_LOG is for tlogd's own records")
	}
	if err := checkID(tgt.GetId(), 256, true); err != nil {
		return fmt.Errorf("target.id: %w", err)
	}
	if err := checkID(ev.GetTenant(), 128, false); err != nil {
		return fmt.Errorf("tenant: %w", err)
	}
	switch o := ev.GetOutcome(); {
	case o == tlogv1.Outcome_OUTCOME_UNSPECIFIED:
		return fmt.Errorf("outcome: required")
	case tlogv1.Outcome_name[int32(o)] == "":
		return fmt.Errorf("outcome: unknown value %d", o)
	}
	if err := checkText(ev.GetReason(), 1024); err != nil {
		return fmt.Errorf("reason: %w", err)
	}
	if n := len(ev.GetChanges()); n > 64 {
		return fmt.Errorf("changes: %d changes exceed the limit of 64", n)
	}
	for i, c := range ev.GetChanges() {
		if err := checkID(c.GetAttribute(), 128, true); err != nil {
			return fmt.Errorf("changes[%d].attribute: %w", i, err)
		}
		if err := checkText(c.GetOldValue(), 1024); err != nil {
			return fmt.Errorf("changes[%d].old_value: %w", i, err)
		}
		if err := checkText(c.GetNewValue(), 1024); err != nil {
			return fmt.Errorf("changes[%d].new_value: %w", i, err)
		}
	}
	for name, v := range map[string]string{"request_id": ev.GetRequestId(), "trace_id": ev.GetTraceId(), "source_service": ev.GetSourceService()} {
		if err := checkID(v, 128, false); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if n := len(ev.GetLabels()); n > 64 {
		return fmt.Errorf("labels: %d labels exceed the limit of 64", n)
	}
	for k, v := range ev.GetLabels() {
		if err := checkID(k, 128, true); err != nil {
			return fmt.Errorf("labels: key %q: %w", truncate(k, 32), err)
		}
		if err := checkText(v, 128); err != nil {
			return fmt.Errorf("labels[%q]: %w", truncate(k, 32), err)
		}
	}
	return nil
}

// checkID checks an identifier: at most max bytes of UTF-8 without control
// characters, and not empty when required.
func checkID(s string, max int, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("required")
	case len(s) > max:
		return fmt.Errorf("%d bytes exceed the limit of %d", len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("control characters are not allowed")
	}
	return nil
}

// unknownFields names the first message of an event that carries fields
// this build does not know, or "" if none does. It looks where the schema
// has messages (occurred_at, actor, target, changes, none of which holds
// a message; TestUnknownFieldsCoversSchema checks it) instead of walking
// the event by reflection, which cost the handlers a twentieth of their
// time.
func unknownFields(ev *tlogv1.AuditEvent) string {
	switch {
	case len(ev.ProtoReflect().GetUnknown()) > 0:
		return "AuditEvent"
	case ev.GetOccurredAt() != nil && len(ev.GetOccurredAt().ProtoReflect().GetUnknown()) > 0:
		return "occurred_at"
	case ev.GetActor() != nil && len(ev.GetActor().ProtoReflect().GetUnknown()) > 0:
		return "actor"
	case ev.GetTarget() != nil && len(ev.GetTarget().ProtoReflect().GetUnknown()) > 0:
		return "target"
	}
	for i, c := range ev.GetChanges() {
		if c != nil && len(c.ProtoReflect().GetUnknown()) > 0 {
			return fmt.Sprintf("changes[%d]", i)
		}
	}
	return ""
}

// checkText checks free text: at most max bytes of UTF-8; line breaks and
// tabs are allowed, other control characters (carriage returns included,
// which can overwrite a terminal line) are not.
func checkText(s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%d bytes exceed the limit of %d", len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return fmt.Errorf("control characters are not allowed")
	}
	return nil
}

// queryBudget bounds the entries one QueryEvents call examines; the page
// token resumes after them.
const queryBudget = 10000

// eventFilter is a validated QueryEventsRequest.
type eventFilter struct {
	tenant, subject, actor, target string
	actions                        map[tlogv1.Action]bool
	outcome                        tlogv1.Outcome
	occurredFrom, occurredBefore   *time.Time
}

func (f *eventFilter) match(ev *tlogv1.AuditEvent) bool {
	actor, target := ev.GetActor().GetId(), ev.GetTarget().GetId()
	o := ev.GetOccurredAt().AsTime()
	switch {
	case (f.tenant != "" || f.subject != "" || f.actor != "" || f.target != "") && ev.GetTenant() != f.tenant:
		return false
	case f.subject != "" && actor != f.subject && target != f.subject,
		f.actor != "" && actor != f.actor,
		f.target != "" && target != f.target,
		len(f.actions) > 0 && !f.actions[ev.GetAction()],
		f.outcome != tlogv1.Outcome_OUTCOME_UNSPECIFIED && ev.GetOutcome() != f.outcome,
		f.occurredFrom != nil && o.Before(*f.occurredFrom),
		f.occurredBefore != nil && !o.Before(*f.occurredBefore):
		return false
	}
	return true
}

// driver picks the posting lists that narrow the query most (an event in
// any of them is a candidate), and the roles a subject posting must have.
func (f *eventFilter) driver() (terms [][]byte, roles byte) {
	switch {
	case f.subject != "":
		return [][]byte{subjectTerm(subjectKey(f.tenant, f.subject))}, roleActor | roleTarget
	case f.actor != "":
		return [][]byte{subjectTerm(subjectKey(f.tenant, f.actor))}, roleActor
	case f.target != "":
		return [][]byte{subjectTerm(subjectKey(f.tenant, f.target))}, roleTarget
	case f.tenant != "":
		return [][]byte{tenantTerm(f.tenant)}, 0
	case len(f.actions) > 0 || f.outcome != tlogv1.Outcome_OUTCOME_UNSPECIFIED:
		for a := range tlogv1.Action_name {
			for o := range tlogv1.Outcome_name {
				if a != 0 && o != 0 && f.matchValue(tlogv1.Action(a), tlogv1.Outcome(o)) {
					terms = append(terms, actionTerm(tlogv1.Action(a), tlogv1.Outcome(o)))
				}
			}
		}
		return terms, 0
	}
	return nil, 0
}

// matchValue reports whether an event of action a and outcome o may match.
func (f *eventFilter) matchValue(a tlogv1.Action, o tlogv1.Outcome) bool {
	return (len(f.actions) == 0 || f.actions[a]) && (f.outcome == tlogv1.Outcome_OUTCOME_UNSPECIFIED || o == f.outcome)
}

// matchHit reports whether the event behind a posting may match, from the
// posting's value alone.
func (f *eventFilter) matchHit(h storage.Hit, roles byte) bool {
	v := h.Value
	if len(v) != 6 {
		return true // read the event to know
	}
	return (roles == 0 || v[0]&roles != 0) && f.matchValue(tlogv1.Action(binary.BigEndian.Uint32(v[1:5])), tlogv1.Outcome(v[5]))
}

// candidates returns the first n entries in [from, to) of the union of the
// posting lists of terms, in index order: the first n of each list hold the
// first n of their union.
func candidates(store *storage.Store, terms [][]byte, from, to uint64, n int) ([]storage.Hit, error) {
	var all []storage.Hit
	for _, t := range terms {
		hits, err := store.Postings(t, from, to, n, false)
		if err != nil {
			return nil, err
		}
		all = append(all, hits...)
	}
	if len(terms) > 1 {
		slices.SortFunc(all, func(a, b storage.Hit) int { return cmp.Compare(a.Index, b.Index) })
		all = slices.CompactFunc(all, func(a, b storage.Hit) bool { return a.Index == b.Index })
	}
	return all[:min(len(all), n)], nil
}

func parseQuery(req *tlogv1.QueryEventsRequest) (*eventFilter, error) {
	f := &eventFilter{tenant: req.GetTenant(), subject: req.GetSubjectId(), actor: req.GetActorId(), target: req.GetTargetId(), outcome: req.GetOutcome()}
	for name, v := range map[string]string{"tenant": f.tenant, "subject_id": f.subject, "actor_id": f.actor, "target_id": f.target} {
		max := 256
		if name == "tenant" {
			max = 128
		}
		if err := checkID(v, max, false); err != nil {
			return nil, invalid("%s: %v", name, err)
		}
	}
	if len(req.GetActions()) > 0 {
		f.actions = map[tlogv1.Action]bool{}
	}
	for i, a := range req.GetActions() {
		if a == tlogv1.Action_ACTION_UNSPECIFIED || tlogv1.Action_name[int32(a)] == "" {
			return nil, invalid("actions[%d]: unknown action %d", i, a)
		}
		f.actions[a] = true
	}
	if o := f.outcome; tlogv1.Outcome_name[int32(o)] == "" {
		return nil, invalid("outcome: unknown value %d", o)
	}
	var err error
	if f.occurredFrom, err = optTime("occurred_from", req.GetOccurredFrom()); err != nil {
		return nil, err
	}
	if f.occurredBefore, err = optTime("occurred_before", req.GetOccurredBefore()); err != nil {
		return nil, err
	}
	if _, err = optTime("logged_from", req.GetLoggedFrom()); err != nil {
		return nil, err
	}
	if _, err = optTime("logged_before", req.GetLoggedBefore()); err != nil {
		return nil, err
	}
	return f, nil
}

// optTime checks an optional timestamp field.
func optTime(name string, ts *timestamppb.Timestamp) (*time.Time, error) {
	if ts == nil {
		return nil, nil
	}
	if err := ts.CheckValid(); err != nil {
		return nil, invalid("%s: %v", name, err)
	}
	t := ts.AsTime()
	return &t, nil
}

func (a *auditService) QueryEvents(ctx context.Context, req *tlogv1.QueryEventsRequest) (*tlogv1.QueryEventsResponse, error) {
	s := a.srv
	f, err := parseQuery(req)
	if err != nil {
		return nil, err
	}
	pageSize, next, err := parsePage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	size, cp, err := checkpointAt(store, "tree_size", req.GetTreeSize())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	end := size
	if t := req.GetLoggedFrom(); t != nil {
		first, err := store.FirstAtTime(uint64(max(t.AsTime().UnixMilli(), 0)), size)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		next = max(next, first)
	}
	if t := req.GetLoggedBefore(); t != nil {
		if end, err = store.FirstAtTime(uint64(max(t.AsTime().UnixMilli(), 0)), size); err != nil {
			return nil, s.status(ctx, err)
		}
	}
	var found []storage.Entry
	var events []*tlogv1.AuditEvent
	budget := s.cfg.entryBudget()
	consider := func(e storage.Entry) error {
		if e.Erased {
			return nil
		}
		if parsed, err := tlog.ParseEntry(e.Entry); err != nil || parsed.Links == nil {
			return err // records are not events
		}
		ev := &tlogv1.AuditEvent{}
		if err := proto.Unmarshal(e.Payload, ev); err != nil {
			return fmt.Errorf("%w: event entry %d holds no audit event: %w", storage.ErrCorrupt, e.Index, err)
		}
		if f.match(ev) {
			found, events = append(found, e), append(events, ev)
			budget -= provenSize(e.Entry, e.Salt, e.Payload, 64) // the proof is not made yet
		}
		return nil
	}
	terms, roles := f.driver()
	full := func() bool { return len(found) == pageSize || budget < 0 }
	for examined := 0; !full() && next < end && examined < queryBudget; {
		n := min(end-next, 1000, uint64(queryBudget-examined))
		if terms == nil {
			es, err := store.Entries(next, int(n), true, s.cfg.entryBudget())
			if err != nil {
				return nil, s.status(ctx, err)
			}
			for _, e := range es {
				if full() {
					break
				}
				examined++
				next = e.Index + 1
				if err := consider(e); err != nil {
					return nil, s.status(ctx, err)
				}
			}
			continue
		}
		hits, err := candidates(store, terms, next, end, int(n))
		if err != nil {
			return nil, s.status(ctx, err)
		}
		if len(hits) == 0 {
			next = end
			break
		}
		for _, h := range hits {
			if full() {
				break
			}
			examined++
			next = h.Index + 1
			if !f.matchHit(h, roles) {
				continue
			}
			es, err := store.Entries(h.Index, 1, true, s.cfg.entryBudget())
			if err != nil {
				return nil, s.status(ctx, err)
			}
			if err := consider(es[0]); err != nil {
				return nil, s.status(ctx, err)
			}
		}
	}
	resp := &tlogv1.QueryEventsResponse{Checkpoint: string(cp)}
	if next < end {
		resp.NextPageToken = pageToken(next)
	}
	if len(found) == 0 {
		return resp, nil
	}
	protos := entriesProto(found)
	for i, e := range found {
		p, err := store.InclusionProof(e.Index, size)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		resp.Events = append(resp.Events, &tlogv1.ProvenEvent{Entry: protos[i], Event: events[i], InclusionProof: hashBytes(p)})
	}
	reason := fmt.Sprintf("QueryEvents returned %d events, entries %d to %d", len(found), found[0].Index, found[len(found)-1].Index)
	labels := map[string]string{"method": "QueryEvents", "first_index": fmt.Sprint(found[0].Index), "last_index": fmt.Sprint(found[len(found)-1].Index)}
	if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
		return nil, s.status(ctx, err)
	}
	return resp, nil
}

func (a *auditService) EraseSubject(ctx context.Context, req *tlogv1.EraseSubjectRequest) (*tlogv1.EraseSubjectResponse, error) {
	s := a.srv
	if err := checkID(req.GetSubjectId(), 256, true); err != nil {
		return nil, invalid("subject_id: %v", err)
	}
	if err := checkID(req.GetTenant(), 128, false); err != nil {
		return nil, invalid("tenant: %v", err)
	}
	if err := checkText(req.GetReason(), 1024); err != nil || req.GetReason() == "" {
		if err == nil {
			err = fmt.Errorf("required: say why (the request's reference, the legal basis)")
		}
		return nil, invalid("reason: %v", err)
	}
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	// One erasure at a time: a storage batch carries at most one.
	s.eraseMu.Lock()
	defer s.eraseMu.Unlock()
	subj := subjectKey(req.GetTenant(), req.GetSubjectId())
	term := subjectTerm(subj)
	var (
		indexes  []uint64
		postings []storage.PostingKey
	)
	for from := uint64(0); ; {
		hits, err := store.Postings(term, from, math.MaxUint64, 10000, false)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		for _, h := range hits {
			indexes = append(indexes, h.Index)
			postings = append(postings, storage.PostingKey{Term: term, Index: h.Index})
			es, err := store.Entries(h.Index, 1, true, s.cfg.entryBudget())
			if err != nil {
				return nil, s.status(ctx, err)
			}
			ev := &tlogv1.AuditEvent{}
			if es[0].Erased || proto.Unmarshal(es[0].Payload, ev) != nil {
				continue
			}
			if ownAction(ev.GetAction()) {
				// tlogd's own records (payload reads, erasures) are the
				// trail of access to the log: they stay, and so does the
				// subject's chain through them.
				indexes, postings = indexes[:len(indexes)-1], postings[:len(postings)-1]
				continue
			}
			// The event's other index entries go too; the other subject's
			// posting stays, so its timeline still links through the event.
			postings = append(postings, storage.PostingKey{Term: tenantTerm(ev.GetTenant()), Index: h.Index},
				storage.PostingKey{Term: actionTerm(ev.GetAction(), ev.GetOutcome()), Index: h.Index})
		}
		if len(hits) < 10000 {
			break
		}
		from = hits[len(hits)-1].Index + 1
	}
	if len(indexes) == 0 {
		return nil, status.Errorf(codes.NotFound, "subject_id: no event names %q in tenant %q (or it was erased before)", req.GetSubjectId(), req.GetTenant())
	}
	list := make([]string, len(indexes))
	for i, x := range indexes {
		list[i] = fmt.Sprint(x)
	}
	// The record carries the erasure: both commit in one synced batch, or
	// neither does.
	ev := s.ownEvent(ctx, store, tlogv1.Action_ACTION_SUBJECT_ERASED, req.GetReason(), map[string]string{
		"subject_key": subj.String(), "tenant": req.GetTenant(), "erased_entries": strings.Join(list, ","),
	})
	rec, head, err := s.recordOwn(ctx, seq, ev, &storage.Erasure{Indexes: indexes, Postings: postings, Forget: []storage.Forget{{Subject: subj, Term: term}}})
	if err != nil {
		return nil, s.status(ctx, fmt.Errorf("record erasure: %w", err))
	}
	s.log.InfoContext(ctx, "erased a subject", slog.Uint64("erasure_index", rec.Index), slog.Int("events", len(indexes)))
	return &tlogv1.EraseSubjectResponse{ErasureIndex: rec.Index, ErasedEvents: uint32(len(indexes)), Checkpoint: string(head.Checkpoint)}, nil
}

// Reindex gives a stored record what the handlers gave it when they
// appended it, for storage.Options.Reindex: an audit event's dedup key is
// its tenant and event id, and it has its subjects and postings; any other
// record's dedup key is the SHA-256 of its payload. An erasure record gets
// the indexes it erased (Erases.Indexes; its postings are left out), which
// a replica erases in its copy.
func Reindex(entry, payload []byte, r *storage.Record) {
	if e, err := tlog.ParseEntry(entry); err == nil && e.Links != nil {
		ev := &tlogv1.AuditEvent{}
		if proto.Unmarshal(payload, ev) == nil {
			eventRecord(r, ev)
			if ev.GetAction() == tlogv1.Action_ACTION_SUBJECT_ERASED {
				r.Erases = &storage.Erasure{}
				for _, f := range strings.Split(ev.GetLabels()["erased_entries"], ",") {
					if x, err := strconv.ParseUint(f, 10, 64); err == nil {
						r.Erases.Indexes = append(r.Erases.Indexes, x)
					}
				}
			}
			return
		}
	}
	r.PayloadHash = sha256.Sum256(payload)
}

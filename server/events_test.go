package server

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// testEvent is a valid event.
func testEvent(id, actor, target string, action tlogv1.Action) *tlogv1.AuditEvent {
	return &tlogv1.AuditEvent{
		EventId:    id,
		OccurredAt: timestamppb.New(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)),
		Actor:      &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: actor, SourceIp: "192.0.2.7"},
		Action:     action,
		Target:     &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: target},
		Tenant:     "acme",
		Outcome:    tlogv1.Outcome_OUTCOME_SUCCESS,
		Changes:    []*tlogv1.Change{{Attribute: "role", OldValue: "viewer", NewValue: "admin"}},
	}
}

func TestRecordEventsAndTimeline(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	events := []*tlogv1.AuditEvent{
		testEvent("e0", "admin", "alice", tlogv1.Action_ACTION_ACCOUNT_CREATED),
		testEvent("e1", "admin", "bob", tlogv1.Action_ACTION_ACCOUNT_CREATED),
		testEvent("e2", "admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED),
		testEvent("e3", "alice", "alice", tlogv1.Action_ACTION_PASSWORD_CHANGED),
	}
	resp, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events, IncludeProofs: true})
	if err != nil {
		t.Fatal(err)
	}
	cp := tl.openCheckpoint(t, resp.GetCheckpoint())
	wantLinks := [][]uint64{{tlog.NoLink, tlog.NoLink}, {0, tlog.NoLink}, {1, 0}, {2, 2}}
	for i, r := range resp.GetResults() {
		res := r.GetResult()
		if res.GetIndex() != uint64(i) || res.GetDuplicate() {
			t.Fatalf("event %d at %d (duplicate %v)", i, res.GetIndex(), res.GetDuplicate())
		}
		var back tlogv1.AuditEvent
		if err := proto.Unmarshal(r.GetPayload(), &back); err != nil || !proto.Equal(&back, events[i]) {
			t.Fatalf("event %d: the payload is not the event: %v", i, err)
		}
		if err := tlog.VerifyRecord(res.GetEntry(), res.GetSalt(), r.GetPayload()); err != nil {
			t.Fatal(err)
		}
		e, err := tlog.ParseEntry(res.GetEntry())
		if err != nil || !slices.Equal(e.Links, wantLinks[i]) {
			t.Fatalf("event %d links %v, want %v (%v)", i, e.Links, wantLinks[i], err)
		}
		checkInclusion(t, res.GetIndex(), res.GetLeafHash(), res.GetInclusionProof(), cp)
	}
	// The same event id again is a duplicate, even with other content;
	// the answer carries the first event's payload.
	again := testEvent("e2", "admin", "alice", tlogv1.Action_ACTION_ROLE_REVOKED)
	dup, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: []*tlogv1.AuditEvent{again, testEvent("e4", "admin", "alice", tlogv1.Action_ACTION_ROLE_REVOKED)}})
	if err != nil {
		t.Fatal(err)
	}
	if r := dup.GetResults()[0]; !r.GetResult().GetDuplicate() || r.GetResult().GetIndex() != 2 || !r.GetConflict() || r.GetPayload() != nil || r.GetResult().GetSalt() != nil {
		t.Fatalf("duplicate event id with other content: %v", r)
	}
	// The same event again: an idempotent retry, with the payload.
	same, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events[2:3]})
	if r := same.GetResults()[0]; err != nil || !r.GetResult().GetDuplicate() || r.GetConflict() || !bytes.Equal(r.GetPayload(), resp.GetResults()[2].GetPayload()) {
		t.Fatalf("retried event: %v %v", r, err)
	}

	// alice's timeline: 0, 2, 3, 4 (the revocation), linked.
	tlr, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice", PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	tcp := tl.openCheckpoint(t, tlr.GetCheckpoint())
	var got []uint64
	for _, te := range tlr.GetEvents() {
		got = append(got, te.GetEntry().GetIndex())
		checkInclusion(t, te.GetEntry().GetIndex(), te.GetEntry().GetLeafHash(), te.GetInclusionProof(), tcp)
		if err := tlog.VerifyRecord(te.GetEntry().GetEntry(), te.GetEntry().GetSalt(), te.GetEntry().GetPayload()); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []uint64{0, 2, 3}) || !tlr.GetHasEvents() || tlr.GetLatestIndex() != 4 || tlr.GetNextPageToken() == "" {
		t.Fatalf("first page %v, latest %d, token %q", got, tlr.GetLatestIndex(), tlr.GetNextPageToken())
	}
	next, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice", PageSize: 3, PageToken: tlr.GetNextPageToken(), TreeSize: tcp.Size})
	if err != nil || len(next.GetEvents()) != 1 || next.GetEvents()[0].GetEntry().GetIndex() != 4 || next.GetNextPageToken() != "" {
		t.Fatalf("second page: %v %v", next, err)
	}
	if next.GetEvents()[0].GetEvent().GetAction() != tlogv1.Action_ACTION_ROLE_REVOKED {
		t.Fatalf("event 4 decoded as %v", next.GetEvents()[0].GetEvent())
	}
	// At the older size 4, alice's latest event is 3.
	old, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice", TreeSize: 4})
	if err != nil || old.GetLatestIndex() != 3 || len(old.GetEvents()) != 3 {
		t.Fatalf("timeline at size 4: %v %v", old, err)
	}
	// Another tenant's alice has no events.
	none, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "other", SubjectId: "alice"})
	if err != nil || none.GetHasEvents() || len(none.GetEvents()) != 0 {
		t.Fatalf("other tenant: %v %v", none, err)
	}
	// Each timeline read was recorded as a payload read.
	rec, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 5, Count: 1, IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := payloadReadRecord(rec.GetEntries()[0].GetPayload()); !ok || ev.GetLabels()["method"] != "GetTimeline" {
		t.Fatalf("entry 5 is not the timeline read: %v", ev)
	}
	_, err = ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{SubjectId: "alice", PageToken: "!!"})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "page_token:") {
		t.Fatalf("bad page token: %v", err)
	}
}

func TestEventValidation(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	for _, tc := range []struct {
		field  string
		change func(*tlogv1.AuditEvent)
	}{
		{"event_id: required", func(e *tlogv1.AuditEvent) { e.EventId = "" }},
		{"event_id: control characters", func(e *tlogv1.AuditEvent) { e.EventId = "a\nb" }},
		{"event_id: 129 bytes", func(e *tlogv1.AuditEvent) { e.EventId = strings.Repeat("x", 129) }},
		{"occurred_at: required", func(e *tlogv1.AuditEvent) { e.OccurredAt = nil }},
		{"occurred_at:", func(e *tlogv1.AuditEvent) { e.OccurredAt.Nanos = -1 }},
		{"actor: required", func(e *tlogv1.AuditEvent) { e.Actor = nil }},
		{"actor.type: required", func(e *tlogv1.AuditEvent) { e.Actor.Type = 0 }},
		{"actor.type: unknown value 99", func(e *tlogv1.AuditEvent) { e.Actor.Type = 99 }},
		{"actor.id: required", func(e *tlogv1.AuditEvent) { e.Actor.Id = "" }},
		{"actor.source_ip:", func(e *tlogv1.AuditEvent) { e.Actor.SourceIp = "300.1.1.1" }},
		{"actor.user_agent: 513 bytes", func(e *tlogv1.AuditEvent) { e.Actor.UserAgent = strings.Repeat("u", 513) }},
		{"action: required", func(e *tlogv1.AuditEvent) { e.Action = 0 }},
		{"action: unknown value 1000", func(e *tlogv1.AuditEvent) { e.Action = 1000 }},
		{"action: ACTION_LOG_PAYLOADS_READ", func(e *tlogv1.AuditEvent) { e.Action = tlogv1.Action_ACTION_LOG_PAYLOADS_READ }},
		{"action: ACTION_SUBJECT_ERASED is recorded by tlogd", func(e *tlogv1.AuditEvent) { e.Action = tlogv1.Action_ACTION_SUBJECT_ERASED }},
		{"target.type: TARGET_TYPE_LOG", func(e *tlogv1.AuditEvent) { e.Target.Type = tlogv1.TargetType_TARGET_TYPE_LOG }},
		{"reason: control", func(e *tlogv1.AuditEvent) { e.Reason = "ok\rforged line" }},
		{"actor: unknown fields", func(e *tlogv1.AuditEvent) { e.Actor.ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01}) }},
		{"changes[0]: unknown fields", func(e *tlogv1.AuditEvent) { e.Changes[0].ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01}) }},
		{"AuditEvent: unknown fields", func(e *tlogv1.AuditEvent) { e.ProtoReflect().SetUnknown([]byte{0xf8, 0x06, 0x01}) }},
		{"custom_action: required", func(e *tlogv1.AuditEvent) { e.Action = tlogv1.Action_ACTION_CUSTOM }},
		{"custom_action: only with ACTION_CUSTOM", func(e *tlogv1.AuditEvent) { e.CustomAction = "x" }},
		{"target: required", func(e *tlogv1.AuditEvent) { e.Target = nil }},
		{"target.type: required", func(e *tlogv1.AuditEvent) { e.Target.Type = 0 }},
		{"target.id: required", func(e *tlogv1.AuditEvent) { e.Target.Id = "" }},
		{"tenant: control characters", func(e *tlogv1.AuditEvent) { e.Tenant = "a\x00" }},
		{"outcome: required", func(e *tlogv1.AuditEvent) { e.Outcome = 0 }},
		{"reason: 1025 bytes", func(e *tlogv1.AuditEvent) { e.Reason = strings.Repeat("r", 1025) }},
		{"changes[0].attribute: required", func(e *tlogv1.AuditEvent) { e.Changes[0].Attribute = "" }},
		{"changes[0].new_value: control", func(e *tlogv1.AuditEvent) { e.Changes[0].NewValue = "\x1b[31m" }},
		{"changes: 65 changes", func(e *tlogv1.AuditEvent) {
			for range 64 {
				e.Changes = append(e.Changes, &tlogv1.Change{Attribute: "a"})
			}
		}},
		{"request_id: 129 bytes", func(e *tlogv1.AuditEvent) { e.RequestId = strings.Repeat("q", 129) }},
		{"labels: key", func(e *tlogv1.AuditEvent) { e.Labels = map[string]string{"": "v"} }},
		{`labels["k"]: control`, func(e *tlogv1.AuditEvent) { e.Labels = map[string]string{"k": "\x07"} }},
	} {
		ev := testEvent("ok", "admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED)
		tc.change(ev)
		_, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: []*tlogv1.AuditEvent{testEvent("fine", "a", "b", tlogv1.Action_ACTION_ROLE_ASSIGNED), ev}})
		st, _ := status.FromError(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "events[1]."+tc.field) {
			t.Errorf("%s: got %v", tc.field, err)
		}
	}
	if tl.store.Head().Size != 0 {
		t.Fatal("an invalid batch appended something")
	}
	for _, tc := range []struct {
		req  *tlogv1.RecordEventsRequest
		want string
	}{
		{&tlogv1.RecordEventsRequest{}, "events: must hold at least 1 event"},
		{&tlogv1.RecordEventsRequest{Events: []*tlogv1.AuditEvent{nil}}, "events[0].event_id"},
	} {
		_, err := ac.RecordEvents(ctx(t), tc.req)
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.want) {
			t.Errorf("%v: %v", tc.req, err)
		}
	}
	_, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || st.Message() != "subject_id: required" {
		t.Errorf("timeline without a subject: %v", err)
	}
	_, err = ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{SubjectId: "a", PageSize: 1001})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "page_size:") {
		t.Errorf("page size: %v", err)
	}
	for _, tc := range []struct {
		req  *tlogv1.QueryEventsRequest
		want string
	}{
		{&tlogv1.QueryEventsRequest{Actions: []tlogv1.Action{tlogv1.Action_ACTION_LOGIN_FAILED, 0}}, "actions[1]: unknown action 0"},
		{&tlogv1.QueryEventsRequest{Outcome: 9}, "outcome: unknown value 9"},
		{&tlogv1.QueryEventsRequest{ActorId: "a\tb"}, "actor_id: control characters"},
		{&tlogv1.QueryEventsRequest{OccurredFrom: &timestamppb.Timestamp{Nanos: -5}}, "occurred_from:"},
		{&tlogv1.QueryEventsRequest{LoggedBefore: &timestamppb.Timestamp{Seconds: -1 << 62}}, "logged_before:"},
		{&tlogv1.QueryEventsRequest{PageSize: 5000}, "page_size: 5000 exceeds"},
		{&tlogv1.QueryEventsRequest{PageToken: "x"}, "page_token:"},
		{&tlogv1.QueryEventsRequest{TreeSize: 99}, "tree_size: 99 is beyond"},
	} {
		_, err := ac.QueryEvents(ctx(t), tc.req)
		if st, _ := status.FromError(err); (st.Code() != codes.InvalidArgument && st.Code() != codes.OutOfRange) || !strings.HasPrefix(st.Message(), tc.want) {
			t.Errorf("QueryEvents(%v): %v, want %q", tc.req, err, tc.want)
		}
	}
	// grpc-go refuses to send invalid UTF-8; other clients may.
	ev := testEvent("x", "\xff", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED)
	if err := validateEvent(ev); err == nil || err.Error() != "actor.id: not valid UTF-8" {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestEraseSubject(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	events := []*tlogv1.AuditEvent{
		testEvent("e0", "admin", "alice", tlogv1.Action_ACTION_ACCOUNT_CREATED), // 0
		testEvent("e1", "bob", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED),     // 1
		testEvent("e2", "admin", "bob", tlogv1.Action_ACTION_ROLE_ASSIGNED),     // 2
		testEvent("e3", "alice", "alice", tlogv1.Action_ACTION_LOGIN_FAILED),    // 3
	}
	if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events}); err != nil {
		t.Fatal(err)
	}
	_, err := ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "alice"})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "reason: required") {
		t.Fatalf("erase without a reason: %v", err)
	}
	resp, err := ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "alice", Reason: "GDPR art. 17 request #42"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetErasureIndex() != 4 || resp.GetErasedEvents() != 3 {
		t.Fatalf("erasure: %v", resp)
	}
	cp := tl.openCheckpoint(t, resp.GetCheckpoint())
	es, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 0, Count: 5, IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es.GetEntries() {
		erased := e.GetIndex() != 2 && e.GetIndex() != 4
		if e.GetErased() != erased || (erased && (e.GetErasedBy() != 4 || e.GetPayload() != nil || e.GetSalt() != nil)) {
			t.Fatalf("entry %d: erased %v by %d", e.GetIndex(), e.GetErased(), e.GetErasedBy())
		}
		// Every proof still holds.
		p, err := tl.client.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: e.GetIndex()}, TreeSize: cp.Size})
		if err != nil {
			t.Fatal(err)
		}
		checkInclusion(t, e.GetIndex(), e.GetLeafHash(), p.GetHashes(), cp)
	}
	rec, ok := payloadReadRecordAny(es.GetEntries()[4].GetPayload())
	if !ok || rec.GetAction() != tlogv1.Action_ACTION_SUBJECT_ERASED || rec.GetReason() != "GDPR art. 17 request #42" ||
		rec.GetLabels()["erased_entries"] != "0,1,3" || rec.GetLabels()["subject_key"] != subjectKey("acme", "alice").String() {
		t.Fatalf("erasure record: %v", rec)
	}
	// alice has no timeline left; bob's still links through the erased event.
	if tlr, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice"}); err != nil || tlr.GetHasEvents() {
		t.Fatalf("alice's timeline after erasure: %v %v", tlr, err)
	}
	bob, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "bob"})
	if err != nil || len(bob.GetEvents()) != 2 {
		t.Fatalf("bob's timeline: %v %v", bob, err)
	}
	if first := bob.GetEvents()[0]; !first.GetEntry().GetErased() || first.GetEvent() != nil || first.GetSubjectRoles() != roleActor {
		t.Fatalf("bob's erased event: %v", first)
	}
	// Queries skip erased events; the event id can be recorded again.
	q, err := ac.QueryEvents(ctx(t), &tlogv1.QueryEventsRequest{Tenant: "acme", TreeSize: cp.Size})
	if err != nil || len(q.GetEvents()) != 1 || q.GetEvents()[0].GetEntry().GetIndex() != 2 {
		t.Fatalf("query after erasure: %v %v", q, err)
	}
	again, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events[:1]})
	if err != nil || again.GetResults()[0].GetResult().GetDuplicate() {
		t.Fatalf("re-recording an erased event id: %v %v", again, err)
	}
	// alice's next event starts a new chain: her old events are listed
	// nowhere any more.
	if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: []*tlogv1.AuditEvent{testEvent("e9", "admin", "alice", tlogv1.Action_ACTION_ACCOUNT_CREATED)}}); err != nil {
		t.Fatal(err)
	}
	fresh, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice"})
	if err != nil || len(fresh.GetEvents()) != 2 {
		t.Fatalf("alice's timeline after erasure and new events: %v %v", fresh, err)
	}
	for _, pe := range fresh.GetEvents() {
		e, _ := tlog.ParseEntry(pe.GetEntry().GetEntry())
		if e.Links[1] != tlog.NoLink && e.Links[1] != fresh.GetEvents()[0].GetEntry().GetIndex() {
			t.Fatalf("alice's new events link to %v", e.Links)
		}
	}
	// tlogd's own records are the access trail: never erased.
	_, err = ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{SubjectId: tl.store.Origin(), Reason: "x"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("erasing the log's own trail: %v", err)
	}
	_, err = ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "nobody", Reason: "x"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("erasing an unknown subject: %v", err)
	}
}

// payloadReadRecordAny decodes a payload as an AuditEvent.
func payloadReadRecordAny(p []byte) (*tlogv1.AuditEvent, bool) {
	var ev tlogv1.AuditEvent
	return &ev, proto.Unmarshal(p, &ev) == nil
}

// TestReindex: what Open rebuilds the indexes with is what the handlers
// append with.
func TestReindex(t *testing.T) {
	ev := testEvent("e-7", "admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	rs := newRecords([][]byte{b}, false)
	eventRecord(&rs[0], ev)
	entry := tlog.Entry{Commitment: rs[0].Commitment, Links: []uint64{tlog.NoLink, tlog.NoLink}}.AppendBinary(nil)
	var got storage.Record
	Reindex(entry, b, &got)
	if got.PayloadHash != rs[0].PayloadHash || !reflect.DeepEqual(got.Subjects, rs[0].Subjects) || !reflect.DeepEqual(got.Postings, rs[0].Postings) {
		t.Fatalf("event: Reindex gives %+v, the handler used %+v", got, rs[0])
	}
	plain := newRecords([][]byte{[]byte("a record")}, true)[0]
	entry = tlog.Entry{Commitment: plain.Commitment}.AppendBinary(nil)
	got = storage.Record{}
	Reindex(entry, plain.Payload, &got)
	if got.PayloadHash != plain.PayloadHash || got.Subjects != nil || got.Postings != nil {
		t.Fatalf("record: Reindex gives %+v, Append used %s", got, plain.PayloadHash)
	}
}

// TestPagesStayWithinResponseBytes: big events make smaller pages, never a
// response the client cannot receive.
func TestPagesStayWithinResponseBytes(t *testing.T) {
	tl := startLog(t, func(c *Config) { c.MaxResponseBytes = 1 << 20 })
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	var evs []*tlogv1.AuditEvent
	for i := range 40 {
		ev := testEvent(fmt.Sprintf("big-%d", i), "admin", "victim", tlogv1.Action_ACTION_ACCOUNT_UPDATED)
		for j := range 30 {
			ev.Changes = append(ev.Changes, &tlogv1.Change{Attribute: fmt.Sprint("a", j), NewValue: strings.Repeat("x", 1000)})
		}
		evs = append(evs, ev)
	}
	// All 40 would not fit one answer: refused before anything is appended.
	_, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: evs})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "max_response_bytes") || tl.store.Head().Size != 0 {
		t.Fatalf("a batch whose answer is too big: %v", err)
	}
	for b := 0; b < 40; b += 10 {
		if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: evs[b : b+10]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, call := range []func(string) (int, string, error){
		func(tok string) (int, string, error) {
			r, err := ac.GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "victim", PageSize: 1000, PageToken: tok, TreeSize: 40})
			return len(r.GetEvents()), r.GetNextPageToken(), err
		},
		func(tok string) (int, string, error) {
			r, err := ac.QueryEvents(ctx(t), &tlogv1.QueryEventsRequest{Tenant: "acme", SubjectId: "victim", PageSize: 1000, PageToken: tok, TreeSize: 40})
			return len(r.GetEvents()), r.GetNextPageToken(), err
		},
	} {
		total, pages, tok := 0, 0, ""
		for {
			n, next, err := call(tok)
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			total, pages, tok = total+n, pages+1, next
			if tok == "" {
				break
			}
		}
		if total != 40 || pages < 3 {
			t.Fatalf("%d events in %d pages", total, pages)
		}
	}
}

// TestUnknownFieldsCoversSchema: unknownFields looks only at the messages
// an AuditEvent holds today; a new message field, or a message inside one
// of them, must be added there.
func TestUnknownFieldsCoversSchema(t *testing.T) {
	var got []string
	fields := (&tlogv1.AuditEvent{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Message() == nil || f.IsMap() {
			continue
		}
		got = append(got, string(f.Name()))
		inner := f.Message().Fields()
		for j := range inner.Len() {
			if inner.Get(j).Message() != nil {
				t.Errorf("%s.%s is a message: unknownFields does not look inside it", f.Name(), inner.Get(j).Name())
			}
		}
	}
	if want := []string{"occurred_at", "actor", "target", "changes"}; !slices.Equal(got, want) {
		t.Fatalf("the event's message fields are %v; unknownFields checks %v", got, want)
	}
}

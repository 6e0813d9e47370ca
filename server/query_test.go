package server

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// history is a generated user-management history: users and services of
// a few tenants creating accounts, granting and revoking roles, failing to
// log in.
func history(n int, seed uint64) []*tlogv1.AuditEvent {
	r := rand.New(rand.NewPCG(seed, 1))
	tenants := []string{"acme", "globex", ""}
	actions := []tlogv1.Action{
		tlogv1.Action_ACTION_ACCOUNT_CREATED, tlogv1.Action_ACTION_ROLE_ASSIGNED, tlogv1.Action_ACTION_ROLE_REVOKED,
		tlogv1.Action_ACTION_PERMISSION_GRANTED, tlogv1.Action_ACTION_GROUP_MEMBER_ADDED, tlogv1.Action_ACTION_LOGIN_FAILED,
		tlogv1.Action_ACTION_LOGIN_SUCCEEDED, tlogv1.Action_ACTION_ACCESS_DENIED, tlogv1.Action_ACTION_PASSWORD_RESET,
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*tlogv1.AuditEvent, n)
	for i := range out {
		actor := fmt.Sprintf("user%02d", r.IntN(30))
		if r.IntN(5) == 0 {
			actor = "admin"
		}
		ev := testEvent(fmt.Sprintf("ev-%d", i), actor, fmt.Sprintf("user%02d", r.IntN(30)), actions[r.IntN(len(actions))])
		ev.Tenant = tenants[r.IntN(len(tenants))]
		ev.OccurredAt = timestamppb.New(start.Add(time.Duration(r.IntN(365*24)) * time.Hour))
		ev.Outcome = []tlogv1.Outcome{tlogv1.Outcome_OUTCOME_SUCCESS, tlogv1.Outcome_OUTCOME_FAILURE, tlogv1.Outcome_OUTCOME_DENIED}[r.IntN(3)]
		if ev.Action == tlogv1.Action_ACTION_LOGIN_FAILED {
			ev.Target.Id = actor
		}
		out[i] = ev
	}
	return out
}

// TestQueryEventsAgainstBruteForce records a generated history and checks
// every kind of filter, paged, against a scan of the history itself.
func TestQueryEventsAgainstBruteForce(t *testing.T) {
	// TLOGD_HISTORY_EVENTS (a multiple of 500) runs it on a larger history;
	// BENCHMARKS.md records a run with 300,000.
	n, pageSize := 3000, uint32(37)
	if v := os.Getenv("TLOGD_HISTORY_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 3000 || n%500 != 0 {
			t.Fatalf("TLOGD_HISTORY_EVENTS=%q: want a multiple of 500, at least 3000", v)
		}
		pageSize = 1000
	}
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	evs := history(n, 7)
	for b := 0; b < len(evs); b += 500 {
		if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: evs[b : b+500]}); err != nil {
			t.Fatal(err)
		}
		if b < 2000 {
			time.Sleep(3 * time.Millisecond) // distinct log times for the first batches
		}
	}
	size := tl.store.Head().Size
	if size != uint64(n) {
		t.Fatalf("size %d", size)
	}
	// The log times of the second and third batches, for logged_*.
	logTime := func(i uint64) *timestamppb.Timestamp {
		es, err := tl.store.Entries(i, 1, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := tlog.ParseEntry(es[0].Entry)
		return timestamppb.New(time.UnixMilli(int64(e.Time)))
	}
	from, before := logTime(500), logTime(1500)
	start, mid := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  *tlogv1.QueryEventsRequest
		want func(*tlogv1.AuditEvent) bool
	}{
		{"tenant", &tlogv1.QueryEventsRequest{Tenant: "acme"}, func(e *tlogv1.AuditEvent) bool { return e.Tenant == "acme" }},
		{"subject", &tlogv1.QueryEventsRequest{Tenant: "globex", SubjectId: "user07"}, func(e *tlogv1.AuditEvent) bool {
			return e.Tenant == "globex" && (e.Actor.Id == "user07" || e.Target.Id == "user07")
		}},
		{"actor", &tlogv1.QueryEventsRequest{Tenant: "acme", ActorId: "admin"}, func(e *tlogv1.AuditEvent) bool { return e.Tenant == "acme" && e.Actor.Id == "admin" }},
		{"target in the empty tenant", &tlogv1.QueryEventsRequest{TargetId: "user03"}, func(e *tlogv1.AuditEvent) bool { return e.Tenant == "" && e.Target.Id == "user03" }},
		{"failed logins, any tenant", &tlogv1.QueryEventsRequest{Actions: []tlogv1.Action{tlogv1.Action_ACTION_LOGIN_FAILED}}, func(e *tlogv1.AuditEvent) bool {
			return e.Action == tlogv1.Action_ACTION_LOGIN_FAILED
		}},
		{"role changes denied in acme", &tlogv1.QueryEventsRequest{Tenant: "acme", Actions: []tlogv1.Action{tlogv1.Action_ACTION_ROLE_ASSIGNED, tlogv1.Action_ACTION_ROLE_REVOKED}, Outcome: tlogv1.Outcome_OUTCOME_DENIED},
			func(e *tlogv1.AuditEvent) bool {
				return e.Tenant == "acme" && (e.Action == tlogv1.Action_ACTION_ROLE_ASSIGNED || e.Action == tlogv1.Action_ACTION_ROLE_REVOKED) && e.Outcome == tlogv1.Outcome_OUTCOME_DENIED
			}},
		{"logins failed or denied, any tenant (two action lists)", &tlogv1.QueryEventsRequest{Actions: []tlogv1.Action{tlogv1.Action_ACTION_LOGIN_FAILED, tlogv1.Action_ACTION_ACCESS_DENIED}},
			func(e *tlogv1.AuditEvent) bool {
				return e.Action == tlogv1.Action_ACTION_LOGIN_FAILED || e.Action == tlogv1.Action_ACTION_ACCESS_DENIED
			}},
		{"denied, any tenant (outcome only)", &tlogv1.QueryEventsRequest{Outcome: tlogv1.Outcome_OUTCOME_DENIED},
			func(e *tlogv1.AuditEvent) bool { return e.Outcome == tlogv1.Outcome_OUTCOME_DENIED }},
		{"a subject's successful grants", &tlogv1.QueryEventsRequest{Tenant: "acme", SubjectId: "user11", Outcome: tlogv1.Outcome_OUTCOME_SUCCESS,
			Actions: []tlogv1.Action{tlogv1.Action_ACTION_ROLE_ASSIGNED, tlogv1.Action_ACTION_PERMISSION_GRANTED}},
			func(e *tlogv1.AuditEvent) bool {
				return e.Tenant == "acme" && (e.Actor.Id == "user11" || e.Target.Id == "user11") && e.Outcome == tlogv1.Outcome_OUTCOME_SUCCESS &&
					(e.Action == tlogv1.Action_ACTION_ROLE_ASSIGNED || e.Action == tlogv1.Action_ACTION_PERMISSION_GRANTED)
			}},
		{"occurred in the second half, failed", &tlogv1.QueryEventsRequest{OccurredFrom: timestamppb.New(mid), Outcome: tlogv1.Outcome_OUTCOME_FAILURE},
			func(e *tlogv1.AuditEvent) bool {
				return !e.OccurredAt.AsTime().Before(mid) && e.Outcome == tlogv1.Outcome_OUTCOME_FAILURE
			}},
		{"logged in the second and third batches, in acme", &tlogv1.QueryEventsRequest{Tenant: "acme", LoggedFrom: from, LoggedBefore: before}, nil},
		{"occurred in the first month, full scan", &tlogv1.QueryEventsRequest{OccurredBefore: timestamppb.New(start.AddDate(0, 1, 0))},
			func(e *tlogv1.AuditEvent) bool { return e.OccurredAt.AsTime().Before(start.AddDate(0, 1, 0)) }},
		{"nothing matches", &tlogv1.QueryEventsRequest{Tenant: "initech"}, func(*tlogv1.AuditEvent) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []uint64
			for i, e := range evs {
				if tc.want == nil { // the log-time case
					if i >= 500 && i < 1500 && e.Tenant == "acme" {
						want = append(want, uint64(i))
					}
				} else if tc.want(e) {
					want = append(want, uint64(i))
				}
			}
			req := proto.Clone(tc.req).(*tlogv1.QueryEventsRequest)
			req.TreeSize, req.PageSize = size, pageSize
			var got []uint64
			for pages := 0; ; pages++ {
				resp, err := ac.QueryEvents(ctx(t), req)
				if err != nil {
					t.Fatal(err)
				}
				cp := tl.openCheckpoint(t, resp.GetCheckpoint())
				if cp.Size != size || len(resp.GetEvents()) > int(pageSize) {
					t.Fatalf("page at size %d with %d events", cp.Size, len(resp.GetEvents()))
				}
				for _, pe := range resp.GetEvents() {
					e := pe.GetEntry()
					got = append(got, e.GetIndex())
					checkInclusion(t, e.GetIndex(), e.GetLeafHash(), pe.GetInclusionProof(), cp)
					if !proto.Equal(pe.GetEvent(), evs[e.GetIndex()]) {
						t.Fatalf("entry %d: event differs", e.GetIndex())
					}
				}
				if resp.GetNextPageToken() == "" {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d events, want %d (first %v vs %v)", len(got), len(want), head(got), head(want))
			}
		})
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }

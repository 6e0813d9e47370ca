package server

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// grantHistory is a generated history of grants and revocations of a few
// roles, permissions and groups to 40 users of two tenants, with denied
// attempts, account deletions and unrelated events between them.
func grantHistory(n int, seed uint64) []*tlogv1.AuditEvent {
	r := rand.New(rand.NewPCG(seed, 2))
	type grant struct {
		give, take tlogv1.Action
		attr       string
		names      []string
	}
	grants := []grant{
		{tlogv1.Action_ACTION_ROLE_ASSIGNED, tlogv1.Action_ACTION_ROLE_REVOKED, "role", []string{"viewer", "editor", "admin"}},
		{tlogv1.Action_ACTION_PERMISSION_GRANTED, tlogv1.Action_ACTION_PERMISSION_REVOKED, "permission", []string{"reports.read", "billing.write"}},
		{tlogv1.Action_ACTION_GROUP_MEMBER_ADDED, tlogv1.Action_ACTION_GROUP_MEMBER_REMOVED, "group", []string{"eng", "ops"}},
	}
	out := make([]*tlogv1.AuditEvent, n)
	for i := range out {
		user := fmt.Sprintf("u%02d", r.IntN(40))
		g := grants[r.IntN(len(grants))]
		name := g.names[r.IntN(len(g.names))]
		var ev *tlogv1.AuditEvent
		switch k := r.IntN(10); {
		case k < 5:
			ev = testEvent(fmt.Sprint("g", i), "admin", user, g.give)
			ev.Changes = []*tlogv1.Change{{Attribute: g.attr, NewValue: name}}
		case k < 8:
			ev = testEvent(fmt.Sprint("g", i), "admin", user, g.take)
			ev.Changes = []*tlogv1.Change{{Attribute: g.attr, OldValue: name}}
		case k < 9:
			ev = testEvent(fmt.Sprint("g", i), "admin", user, tlogv1.Action_ACTION_LOGIN_FAILED)
		default:
			ev = testEvent(fmt.Sprint("g", i), "admin", user, tlogv1.Action_ACTION_ACCOUNT_DELETED)
			ev.Changes = nil
		}
		if r.IntN(8) == 0 {
			ev.Outcome = tlogv1.Outcome_OUTCOME_DENIED
		}
		if r.IntN(3) == 0 {
			ev.Tenant = "globex"
		}
		out[i] = ev
	}
	return out
}

// bruteDrift is the report of events against a baseline, computed by
// replaying every event: "subject kind name status index" lines.
func bruteDrift(events []*tlogv1.AuditEvent, erased map[int]bool, tenant string, baseline map[string]*tlogv1.Grants) []string {
	type key struct{ subject, kind, name string }
	held, revoked := map[key]int{}, map[key]int{}
	kinds := map[tlogv1.Action]string{
		tlogv1.Action_ACTION_ROLE_ASSIGNED: "role", tlogv1.Action_ACTION_PERMISSION_GRANTED: "permission", tlogv1.Action_ACTION_GROUP_MEMBER_ADDED: "group",
		tlogv1.Action_ACTION_ROLE_REVOKED: "-role", tlogv1.Action_ACTION_PERMISSION_REVOKED: "-permission", tlogv1.Action_ACTION_GROUP_MEMBER_REMOVED: "-group",
	}
	for i, ev := range events {
		if erased[i] || ev.Tenant != tenant || ev.Outcome != tlogv1.Outcome_OUTCOME_SUCCESS {
			continue
		}
		if ev.Action == tlogv1.Action_ACTION_ACCOUNT_DELETED {
			for k := range held {
				if k.subject == ev.Target.Id {
					delete(held, k)
					revoked[k] = i
				}
			}
			continue
		}
		kind, ok := kinds[ev.Action]
		if !ok {
			continue
		}
		if kind[0] != '-' {
			k := key{ev.Target.Id, kind, ev.Changes[0].NewValue}
			held[k] = i
			delete(revoked, k)
		} else if k := (key{ev.Target.Id, kind[1:], ev.Changes[0].OldValue}); true {
			if _, ok := held[k]; ok {
				delete(held, k)
				revoked[k] = i
			}
		}
	}
	approved := map[key]bool{}
	for subj, g := range baseline {
		for kind, names := range map[string][]string{"role": g.Roles, "permission": g.Permissions, "group": g.Groups} {
			for _, n := range names {
				approved[key{subj, kind, n}] = true
			}
		}
	}
	var out []string
	for k, i := range held {
		if !approved[k] {
			out = append(out, fmt.Sprintf("%s %s %s unapproved %d", k.subject, k.kind, k.name, i))
		}
	}
	for k := range approved {
		if _, ok := held[k]; ok {
			continue
		}
		if i, ok := revoked[k]; ok {
			out = append(out, fmt.Sprintf("%s %s %s revoked %d", k.subject, k.kind, k.name, i))
		} else {
			out = append(out, fmt.Sprintf("%s %s %s never-granted -", k.subject, k.kind, k.name))
		}
	}
	slices.Sort(out)
	return out
}

func TestGetDriftAgainstBruteForce(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	evs := grantHistory(4000, 11)
	for b := 0; b < len(evs); b += 500 {
		if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: evs[b : b+500]}); err != nil {
			t.Fatal(err)
		}
	}
	baseline := map[string]*tlogv1.Grants{
		"u00":    {Roles: []string{"viewer"}, Groups: []string{"eng"}},
		"u01":    {Roles: []string{"admin", "editor"}, Permissions: []string{"reports.read"}},
		"u02":    {},
		"nobody": {Roles: []string{"viewer"}},
	}
	for i := 3; i < 30; i++ {
		baseline[fmt.Sprintf("u%02d", i)] = &tlogv1.Grants{Roles: []string{"viewer"}, Permissions: []string{"reports.read"}, Groups: []string{"ops"}}
	}
	statusName := map[tlogv1.DriftStatus]string{tlogv1.DriftStatus_DRIFT_STATUS_UNAPPROVED: "unapproved", tlogv1.DriftStatus_DRIFT_STATUS_REVOKED: "revoked", tlogv1.DriftStatus_DRIFT_STATUS_NEVER_GRANTED: "never-granted"}
	kindName := map[tlogv1.GrantKind]string{tlogv1.GrantKind_GRANT_KIND_ROLE: "role", tlogv1.GrantKind_GRANT_KIND_PERMISSION: "permission", tlogv1.GrantKind_GRANT_KIND_GROUP: "group"}
	report := func(tenant string, size uint64) []string {
		req := &tlogv1.GetDriftRequest{Tenant: tenant, Baseline: baseline, TreeSize: size, PageSize: 7}
		var got []string
		for {
			resp, err := ac.GetDrift(ctx(t), req)
			if err != nil {
				t.Fatal(err)
			}
			cp := tl.openCheckpoint(t, resp.GetCheckpoint())
			if cp.Size != size {
				t.Fatalf("checkpoint of size %d, want %d", cp.Size, size)
			}
			for _, it := range resp.GetItems() {
				idx := "-"
				if pe := it.GetEvent(); pe != nil {
					e := pe.GetEntry()
					checkInclusion(t, e.GetIndex(), e.GetLeafHash(), pe.GetInclusionProof(), cp)
					idx = fmt.Sprint(e.GetIndex())
				}
				got = append(got, fmt.Sprintf("%s %s %s %s %s", it.GetSubjectId(), kindName[it.GetKind()], it.GetName(), statusName[it.GetStatus()], idx))
			}
			if uint64(len(got)) > resp.GetTotalItems() {
				t.Fatalf("%d items, total_items %d", len(got), resp.GetTotalItems())
			}
			if resp.GetNextPageToken() == "" {
				return got
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	size := uint64(len(evs))
	for _, tenant := range []string{"acme", "globex", "initech"} {
		got, want := report(tenant, size), bruteDrift(evs, nil, tenant, baseline)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %d items, want %d:\n%s\nwant\n%s", tenant, len(got), len(want), strings.Join(got[:min(len(got), 10)], "\n"), strings.Join(want[:min(len(want), 10)], "\n"))
		}
		if tenant == "acme" && (len(want) < 50 || !strings.Contains(strings.Join(want, "\n"), "revoked") || !strings.Contains(strings.Join(want, "\n"), "unapproved")) {
			t.Fatalf("the history gives too little drift to test: %d items", len(want))
		}
	}
	// At an earlier checkpoint, the events before it.
	if got, want := report("acme", 2000), bruteDrift(evs[:2000], nil, "acme", baseline); !slices.Equal(got, want) {
		t.Fatalf("at 2000: got %d items, want %d", len(got), len(want))
	}
	// An erased subject's events are no longer replayed.
	if _, err := ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "u01", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	erased := map[int]bool{}
	for i, ev := range evs {
		if ev.Tenant == "acme" && (ev.Target.Id == "u01" || ev.Actor.Id == "u01") {
			erased[i] = true
		}
	}
	if got, want := report("acme", tl.store.Head().Size), bruteDrift(evs, erased, "acme", baseline); !slices.Equal(got, want) {
		t.Fatalf("after erasure: got %d items, want %d", len(got), len(want))
	}
}

func TestGetDriftBadInput(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	for _, tc := range []struct {
		req  *tlogv1.GetDriftRequest
		want string
	}{
		{&tlogv1.GetDriftRequest{Tenant: "a\x00b"}, "tenant: control characters"},
		{&tlogv1.GetDriftRequest{Baseline: map[string]*tlogv1.Grants{"": {}}}, `baseline: subject id "": required`},
		{&tlogv1.GetDriftRequest{Baseline: map[string]*tlogv1.Grants{"bob": {Roles: []string{"ok", ""}}}}, `baseline["bob"].roles[1]: required`},
		{&tlogv1.GetDriftRequest{Baseline: map[string]*tlogv1.Grants{"bob": {Groups: []string{strings.Repeat("g", 257)}}}}, `baseline["bob"].groups[0]: 257 bytes exceed the limit of 256`},
		{&tlogv1.GetDriftRequest{PageSize: 1001}, "page_size:"},
		{&tlogv1.GetDriftRequest{PageToken: "x"}, "page_token:"},
		{&tlogv1.GetDriftRequest{PageToken: pageToken(5)}, "page_token: beyond the report's 0 items"},
		{&tlogv1.GetDriftRequest{TreeSize: 9}, "tree_size:"},
	} {
		_, err := ac.GetDrift(ctx(t), tc.req)
		if st, _ := status.FromError(err); (st.Code() != codes.InvalidArgument && st.Code() != codes.OutOfRange) || !strings.HasPrefix(st.Message(), tc.want) {
			t.Errorf("%v: %v, want %s", tc.req, err, tc.want)
		}
	}
	big := map[string]*tlogv1.Grants{}
	for i := range maxBaselineSubjects + 1 {
		big[fmt.Sprint("s", i)] = &tlogv1.Grants{}
	}
	_, err := ac.GetDrift(ctx(t), &tlogv1.GetDriftRequest{Baseline: big})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "baseline: 10001 subjects exceed") {
		t.Errorf("a large baseline: %v", err)
	}
}

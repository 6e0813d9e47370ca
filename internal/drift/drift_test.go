package drift

import (
	"fmt"
	"testing"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

func grant(action tlogv1.Action, target, attr, old, new string) *tlogv1.AuditEvent {
	return &tlogv1.AuditEvent{Action: action, Tenant: "acme", Outcome: tlogv1.Outcome_OUTCOME_SUCCESS,
		Target:  &tlogv1.Target{Id: target},
		Changes: []*tlogv1.Change{{Attribute: attr, OldValue: old, NewValue: new}}}
}

func TestReplayAndCompare(t *testing.T) {
	events := []*tlogv1.AuditEvent{
		grant(tlogv1.Action_ACTION_ROLE_ASSIGNED, "alice", KindRole, "", "viewer"),           // 0
		grant(tlogv1.Action_ACTION_ROLE_ASSIGNED, "alice", KindRole, "viewer", "admin"),      // 1: adds admin, keeps viewer
		grant(tlogv1.Action_ACTION_PERMISSION_GRANTED, "bob", KindPermission, "", "reports"), // 2
		grant(tlogv1.Action_ACTION_PERMISSION_REVOKED, "bob", KindPermission, "reports", ""), // 3
		grant(tlogv1.Action_ACTION_GROUP_MEMBER_ADDED, "carol", KindGroup, "", "eng"),        // 4
		{Action: tlogv1.Action_ACTION_ACCOUNT_DELETED, Target: &tlogv1.Target{Id: "carol"}},  // 5
		grant(tlogv1.Action_ACTION_ROLE_REVOKED, "dave", KindRole, "editor", ""),             // 6: never held: no change
		grant(tlogv1.Action_ACTION_ROLE_ASSIGNED, "erin", "colour", "", "blue"),              // 7: names no grant
	}
	s := New[int]()
	for i, ev := range events {
		s.Replay(ev, i)
	}
	b := Baseline{Tenant: "acme", Subjects: map[string]Grants{
		"alice": {Roles: []string{"viewer", "viewer"}}, // listed twice: one item at most
		"bob":   {Permissions: []string{"reports"}},
		"carol": {Groups: []string{"eng"}},
		"dave":  {Roles: []string{"editor"}},
	}}
	var got []string
	for _, it := range s.Compare(b) {
		got = append(got, fmt.Sprint(it.Subject, " ", it.Kind, " ", it.Name, " ", it.Status, " ", it.Ref))
	}
	want := []string{
		"alice role admin unapproved 1",
		"bob permission reports revoked 3",
		"carol group eng revoked 5",
		"dave role editor never-granted 0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got\n%v\nwant\n%v", got, want)
	}
	if s.Events != 8 || s.Unreadable != 1 {
		t.Fatalf("events %d, unreadable %d", s.Events, s.Unreadable)
	}
}

func TestJustifies(t *testing.T) {
	admin := Key{"alice", KindRole, "admin"}
	give := grant(tlogv1.Action_ACTION_ROLE_ASSIGNED, "alice", KindRole, "", "admin")
	take := grant(tlogv1.Action_ACTION_ROLE_REVOKED, "alice", KindRole, "admin", "")
	denied := grant(tlogv1.Action_ACTION_ROLE_ASSIGNED, "alice", KindRole, "", "admin")
	denied.Outcome = tlogv1.Outcome_OUTCOME_DENIED
	deleted := &tlogv1.AuditEvent{Action: tlogv1.Action_ACTION_ACCOUNT_DELETED, Outcome: tlogv1.Outcome_OUTCOME_SUCCESS, Target: &tlogv1.Target{Id: "alice"}}
	for _, tc := range []struct {
		ev     *tlogv1.AuditEvent
		k      Key
		status string
		want   bool
	}{
		{give, admin, Unapproved, true},
		{give, admin, Revoked, false},
		{take, admin, Revoked, true},
		{take, admin, Unapproved, false},
		{denied, admin, Unapproved, false},
		{give, Key{"bob", KindRole, "admin"}, Unapproved, false},
		{give, Key{"alice", KindRole, "viewer"}, Unapproved, false},
		{deleted, admin, Revoked, true},
		{deleted, Key{"bob", KindRole, "admin"}, Revoked, false},
		{deleted, admin, Unapproved, false},
	} {
		if got := Justifies(tc.ev, tc.k, tc.status); got != tc.want {
			t.Errorf("%v %v %s: %v, want %v", tc.ev.GetAction(), tc.k, tc.status, got, tc.want)
		}
	}
}

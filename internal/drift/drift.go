// Package drift replays role, permission and group events and compares the
// grants they leave with an approved baseline. The verifying client and the
// server's GetDrift share it, so that both reach the same report from the
// same events.
package drift

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// Baseline is the approved state of grants: for each subject (a user,
// service account or group id in Tenant), the roles, permissions and groups
// it may hold.
type Baseline struct {
	Tenant   string            `json:"tenant" yaml:"tenant"`
	Subjects map[string]Grants `json:"subjects" yaml:"subjects"`
}

// Grants are what a subject holds or may hold.
type Grants struct {
	Roles       []string `json:"roles,omitempty" yaml:"roles"`
	Permissions []string `json:"permissions,omitempty" yaml:"permissions"`
	Groups      []string `json:"groups,omitempty" yaml:"groups"`
}

// The kinds of grant, as named in an event's changes (attribute).
const (
	KindRole       = "role"
	KindPermission = "permission"
	KindGroup      = "group"
)

// The statuses of a drift item.
const (
	// Unapproved: the subject holds a grant the baseline does not approve.
	// The item's event is the grant.
	Unapproved = "unapproved"
	// Revoked: the baseline approves a grant the subject held and no longer
	// holds. The item's event is the revocation (or the account's deletion).
	Revoked = "revoked"
	// NeverGranted: the baseline approves a grant no event gave. The item
	// has no event.
	NeverGranted = "never-granted"
)

// grantActions are the events that change grants: +1 gives, -1 takes.
var grantActions = map[tlogv1.Action]struct {
	kind string
	sign int
}{
	tlogv1.Action_ACTION_ROLE_ASSIGNED:        {KindRole, +1},
	tlogv1.Action_ACTION_ROLE_REVOKED:         {KindRole, -1},
	tlogv1.Action_ACTION_PERMISSION_GRANTED:   {KindPermission, +1},
	tlogv1.Action_ACTION_PERMISSION_REVOKED:   {KindPermission, -1},
	tlogv1.Action_ACTION_GROUP_MEMBER_ADDED:   {KindGroup, +1},
	tlogv1.Action_ACTION_GROUP_MEMBER_REMOVED: {KindGroup, -1},
}

// Actions are the actions replayed: the grant events and account deletion,
// in enum order.
func Actions() []tlogv1.Action {
	out := []tlogv1.Action{tlogv1.Action_ACTION_ACCOUNT_DELETED}
	for a := range grantActions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Replayed reports whether an event is one Replay takes: a successful grant
// event or account deletion of the tenant.
func Replayed(tenant string, ev *tlogv1.AuditEvent) bool {
	_, grant := grantActions[ev.GetAction()]
	return ev.GetTenant() == tenant && ev.GetOutcome() == tlogv1.Outcome_OUTCOME_SUCCESS &&
		(grant || ev.GetAction() == tlogv1.Action_ACTION_ACCOUNT_DELETED)
}

// Key names one grant of one subject.
type Key struct{ Subject, Kind, Name string }

// Item is one difference from the baseline; Ref refers to the event behind
// it (the zero value for NeverGranted).
type Item[R any] struct {
	Key
	Status string
	Ref    R
}

// State is the replayed state of grants; R refers to an event (an index,
// or the event itself).
type State[R any] struct {
	held    map[Key]R // the grant
	revoked map[Key]R // the latest revocation of a grant not held
	// Events counts the events replayed; Unreadable those that name no
	// role, permission or group in their changes.
	Events, Unreadable int
}

// New returns an empty state.
func New[R any]() *State[R] {
	return &State[R]{held: map[Key]R{}, revoked: map[Key]R{}}
}

// Replay applies one event for which Replayed holds, in log order.
//
// Convention: a grant event's target is the grantee, and the grant is named
// by a change whose attribute is "role", "permission" or "group": its
// new_value when granted, its old_value when revoked. An account's deletion
// takes every grant of its target.
func (s *State[R]) Replay(ev *tlogv1.AuditEvent, ref R) {
	s.Events++
	subject := ev.GetTarget().GetId()
	if ev.GetAction() == tlogv1.Action_ACTION_ACCOUNT_DELETED {
		for k := range s.held {
			if k.Subject == subject {
				delete(s.held, k)
				s.revoked[k] = ref
			}
		}
		return
	}
	k, sign, ok := Grant(ev)
	if !ok {
		s.Unreadable++
		return
	}
	if sign > 0 {
		s.held[k] = ref
		delete(s.revoked, k)
	} else if _, ok := s.held[k]; ok {
		delete(s.held, k)
		s.revoked[k] = ref
	}
}

// Grant returns the grant a grant event gives (sign +1) or takes (-1);
// false if the event is no grant event or names none.
func Grant(ev *tlogv1.AuditEvent) (k Key, sign int, ok bool) {
	ga, ok := grantActions[ev.GetAction()]
	if !ok {
		return Key{}, 0, false
	}
	name := ""
	for _, ch := range ev.GetChanges() {
		if ch.GetAttribute() != ga.kind {
			continue
		}
		name = ch.GetNewValue()
		if ga.sign < 0 || name == "" {
			name = cmp.Or(ch.GetOldValue(), ch.GetNewValue())
		}
	}
	return Key{ev.GetTarget().GetId(), ga.kind, name}, ga.sign, name != ""
}

// Check reports the first empty subject id or grant name in b.
func (b Baseline) Check() error {
	for subject, g := range b.Subjects {
		if subject == "" {
			return errors.New("subjects: an empty subject id")
		}
		for field, names := range map[string][]string{"roles": g.Roles, "permissions": g.Permissions, "groups": g.Groups} {
			for i, n := range names {
				if n == "" {
					return fmt.Errorf("subjects[%q].%s[%d]: empty", subject, field, i)
				}
			}
		}
	}
	return nil
}

// Approved reports whether b approves k.
func (b Baseline) Approved(k Key) bool {
	g := b.Subjects[k.Subject]
	switch k.Kind {
	case KindRole:
		return slices.Contains(g.Roles, k.Name)
	case KindPermission:
		return slices.Contains(g.Permissions, k.Name)
	case KindGroup:
		return slices.Contains(g.Groups, k.Name)
	}
	return false
}

// Compare lists the differences from the baseline, sorted by subject, kind
// and name.
func (s *State[R]) Compare(b Baseline) []Item[R] {
	var out []Item[R]
	for k, ref := range s.held {
		if !b.Approved(k) {
			out = append(out, Item[R]{Key: k, Status: Unapproved, Ref: ref})
		}
	}
	for subject, g := range b.Subjects {
		for kind, names := range map[string][]string{KindRole: g.Roles, KindPermission: g.Permissions, KindGroup: g.Groups} {
			for _, n := range names {
				k := Key{subject, kind, n}
				if _, ok := s.held[k]; ok {
					continue
				}
				if ref, ok := s.revoked[k]; ok {
					out = append(out, Item[R]{Key: k, Status: Revoked, Ref: ref})
				} else {
					out = append(out, Item[R]{Key: k, Status: NeverGranted})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Item[R]) int {
		return cmp.Or(cmp.Compare(a.Subject, b.Subject), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	// A baseline listing a grant twice lists it once here.
	return slices.CompactFunc(out, func(a, b Item[R]) bool { return a.Key == b.Key })
}

// Justifies reports whether ev, by itself, is the event an item of status
// gives for k: a grant of k for Unapproved, a revocation of k or the
// deletion of k's subject for Revoked. A report's reader checks each item
// with it, so that a server cannot cite an event for a drift it did not
// cause.
func Justifies(ev *tlogv1.AuditEvent, k Key, status string) bool {
	if ev.GetOutcome() != tlogv1.Outcome_OUTCOME_SUCCESS {
		return false
	}
	if status == Revoked && ev.GetAction() == tlogv1.Action_ACTION_ACCOUNT_DELETED {
		return ev.GetTarget().GetId() == k.Subject
	}
	got, sign, ok := Grant(ev)
	return ok && got == k && (status == Unapproved && sign > 0 || status == Revoked && sign < 0)
}

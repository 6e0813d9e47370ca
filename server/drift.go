package server

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tlogd/tlogd/internal/drift"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
)

// maxBaselineSubjects bounds a GetDrift baseline.
const maxBaselineSubjects = 10000

// driftSpan is the widest range of entries GetDrift reads at once.
const driftSpan = 1024

var (
	grantKinds  = map[string]tlogv1.GrantKind{drift.KindRole: tlogv1.GrantKind_GRANT_KIND_ROLE, drift.KindPermission: tlogv1.GrantKind_GRANT_KIND_PERMISSION, drift.KindGroup: tlogv1.GrantKind_GRANT_KIND_GROUP}
	driftStatus = map[string]tlogv1.DriftStatus{drift.Unapproved: tlogv1.DriftStatus_DRIFT_STATUS_UNAPPROVED, drift.Revoked: tlogv1.DriftStatus_DRIFT_STATUS_REVOKED, drift.NeverGranted: tlogv1.DriftStatus_DRIFT_STATUS_NEVER_GRANTED}
)

// parseBaseline checks a GetDrift baseline, naming the first bad field.
func parseBaseline(req *tlogv1.GetDriftRequest) (drift.Baseline, error) {
	b := drift.Baseline{Tenant: req.GetTenant(), Subjects: map[string]drift.Grants{}}
	if err := checkID(b.Tenant, 128, false); err != nil {
		return b, invalid("tenant: %v", err)
	}
	if n := len(req.GetBaseline()); n > maxBaselineSubjects {
		return b, invalid("baseline: %d subjects exceed the limit of %d", n, maxBaselineSubjects)
	}
	for subject, g := range req.GetBaseline() {
		if err := checkID(subject, 256, true); err != nil {
			return b, invalid("baseline: subject id %q: %v", truncate(subject, 32), err)
		}
		for field, names := range map[string][]string{"roles": g.GetRoles(), "permissions": g.GetPermissions(), "groups": g.GetGroups()} {
			for i, n := range names {
				if err := checkID(n, 256, true); err != nil {
					return b, invalid("baseline[%q].%s[%d]: %v", truncate(subject, 32), field, i, err)
				}
			}
		}
		b.Subjects[subject] = drift.Grants{Roles: g.GetRoles(), Permissions: g.GetPermissions(), Groups: g.GetGroups()}
	}
	return b, nil
}

func (a *auditService) GetDrift(ctx context.Context, req *tlogv1.GetDriftRequest) (*tlogv1.GetDriftResponse, error) {
	s := a.srv
	b, err := parseBaseline(req)
	if err != nil {
		return nil, err
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
	state, err := s.replayGrants(ctx, store, b.Tenant, size)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	items := state.Compare(b)
	resp := &tlogv1.GetDriftResponse{Checkpoint: string(cp), EventsReplayed: uint64(state.Events),
		UnreadableEvents: uint64(state.Unreadable), TotalItems: uint64(len(items))}
	if from > uint64(len(items)) {
		return nil, invalid("page_token: beyond the report's %d items", len(items))
	}
	items = items[from:]
	budget, cited := s.cfg.entryBudget(), 0
	for i, it := range items {
		if i == pageSize {
			resp.NextPageToken = pageToken(from + uint64(i))
			break
		}
		di := &tlogv1.DriftItem{SubjectId: it.Subject, Kind: grantKinds[it.Kind], Name: it.Name, Status: driftStatus[it.Status]}
		if it.Status != drift.NeverGranted {
			if di.Event, err = s.timelineEvent(store, it.Ref, size); err != nil {
				return nil, s.status(ctx, err)
			}
			e := di.Event.GetEntry()
			if budget -= provenSize(e.GetEntry(), e.GetSalt(), e.GetPayload(), len(di.Event.GetInclusionProof())); budget < 0 && i > 0 {
				resp.NextPageToken = pageToken(from + uint64(i))
				break
			}
			cited++
		}
		resp.Items = append(resp.Items, di)
	}
	if cited > 0 {
		reason := fmt.Sprintf("GetDrift returned %d items citing %d events, of tenant %q at tree size %d", len(resp.Items), cited, b.Tenant, size)
		labels := map[string]string{"method": "GetDrift", "tenant": b.Tenant, "tree_size": fmt.Sprint(size)}
		if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
			return nil, s.status(ctx, err)
		}
	}
	return resp, nil
}

// replayGrants replays the tenant's grant events in the tree of size: it
// reads the tenant's posting list and the events whose posting says they
// are replayed (a successful grant or deletion).
func (s *Server) replayGrants(ctx context.Context, store *storage.Store, tenant string, size uint64) (*drift.State[uint64], error) {
	want := &eventFilter{actions: map[tlogv1.Action]bool{}, outcome: tlogv1.Outcome_OUTCOME_SUCCESS}
	for _, a := range drift.Actions() {
		want.actions[a] = true
	}
	term := tenantTerm(tenant)
	state := drift.New[uint64]()
	for next := uint64(0); next < size; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hits, err := store.Postings(term, next, size, 10000, false)
		if err != nil {
			return nil, err
		}
		if len(hits) == 0 {
			break
		}
		next = hits[len(hits)-1].Index + 1
		for len(hits) > 0 {
			if !want.matchHit(hits[0], 0) {
				hits = hits[1:]
				continue
			}
			// One read for the replayed events within a span: reading
			// them one by one cost a bundle lookup each.
			first, last := hits[0].Index, hits[0].Index
			for _, h := range hits {
				if h.Index >= first+driftSpan {
					break
				}
				if want.matchHit(h, 0) {
					last = h.Index
				}
			}
			es, err := store.Entries(first, int(last-first+1), true, s.cfg.entryBudget())
			if err != nil {
				return nil, err
			}
			if len(es) == 0 {
				return nil, fmt.Errorf("%w: no entry at %d", storage.ErrCorrupt, first)
			}
			end := first + uint64(len(es)) // fewer than asked when the entries are large
			for len(hits) > 0 && hits[0].Index < end {
				h := hits[0]
				hits = hits[1:]
				if e := es[h.Index-first]; want.matchHit(h, 0) && !e.Erased {
					ev := &tlogv1.AuditEvent{}
					if err := proto.Unmarshal(e.Payload, ev); err != nil {
						return nil, fmt.Errorf("%w: entry %d is in a tenant's posting list but holds no audit event: %w", storage.ErrCorrupt, h.Index, err)
					}
					if drift.Replayed(tenant, ev) {
						state.Replay(ev, h.Index)
					}
				}
			}
		}
	}
	return state, nil
}

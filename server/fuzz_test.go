package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// FuzzValidateEvent: any encoded event, valid or not, is checked without a
// panic; a valid one has a stable deterministic encoding (what the log
// commits to) and its subjects and postings can be built.
func FuzzValidateEvent(f *testing.F) {
	for _, ev := range history(20, 3) {
		b, _ := proto.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := &tlogv1.AuditEvent{}
		if proto.Unmarshal(b, ev) != nil {
			return
		}
		if validateEvent(ev) != nil {
			return
		}
		enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			t.Fatalf("a valid event does not encode: %v", err)
		}
		back := &tlogv1.AuditEvent{}
		if err := proto.Unmarshal(enc, back); err != nil || !proto.Equal(back, ev) {
			t.Fatalf("round trip: %v", err)
		}
		again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(back)
		if string(again) != string(enc) {
			t.Fatal("the deterministic encoding is not stable")
		}
		rs := newRecords([][]byte{enc}, false)
		eventRecord(&rs[0], ev)
		if len(rs[0].Subjects) != 2 || len(rs[0].Postings) < 3 {
			t.Fatalf("subjects %d, postings %d", len(rs[0].Subjects), len(rs[0].Postings))
		}
	})
}

// rpcMethod is one RPC of the API, for FuzzRequests.
type rpcMethod struct {
	name    string // "/tlog.v1.LogService/Append"
	in, out protoreflect.MessageType
	stream  bool // server-streaming
}

// rpcMethods lists every RPC of the API from its descriptors, so that a new
// RPC is fuzzed without changing the test.
func rpcMethods(t testing.TB) []rpcMethod {
	var out []rpcMethod
	for _, file := range []protoreflect.FileDescriptor{tlogv1.File_tlog_v1_log_proto, tlogv1.File_tlog_v1_audit_proto} {
		for i := range file.Services().Len() {
			svc := file.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				if m.IsStreamingClient() {
					t.Fatalf("%s streams from the client: FuzzRequests cannot call it", m.FullName())
				}
				in, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				resp, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, rpcMethod{"/" + string(svc.FullName()) + "/" + string(m.Name()), in, resp, m.IsStreamingServer()})
			}
		}
	}
	return out
}

// FuzzRequests decodes any bytes as the request of each RPC and sends it to
// a real server (real Pebble, gRPC on loopback) holding a small history of
// records and events; of a stream it reads up to three messages. No request
// may crash the server or get Internal, Unknown, Unavailable or (but for a
// stream that follows the log) DeadlineExceeded: bad input gets a status
// that says what is wrong.
func FuzzRequests(f *testing.F) {
	tl := startLog(f, nil)
	audit := tlogv1.NewAuditServiceClient(tl.conn)
	if _, err := audit.RecordEvents(ctx(f), &tlogv1.RecordEventsRequest{Events: history(40, 5)}); err != nil {
		f.Fatal(err)
	}
	if _, err := tl.client.Append(ctx(f), &tlogv1.AppendRequest{Records: records("a", "b", "c")}); err != nil {
		f.Fatal(err)
	}
	methods := rpcMethods(f)
	seeds := map[string]proto.Message{
		"Append":              &tlogv1.AppendRequest{Records: records("x"), IncludeProofs: true},
		"GetInclusionProof":   &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 3}, TreeSize: 10},
		"GetConsistencyProof": &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 3, SecondTreeSize: 40},
		"GetEntries":          &tlogv1.GetEntriesRequest{Start: 1, Count: 5, IncludePayloads: true},
		"StreamEntries":       &tlogv1.StreamEntriesRequest{Start: 2, IncludePayloads: true},
		"RecordEvents":        &tlogv1.RecordEventsRequest{Events: history(2, 9)},
		"GetTimeline":         &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "alice", PageSize: 5},
		"QueryEvents":         &tlogv1.QueryEventsRequest{Tenant: "acme", Outcome: tlogv1.Outcome_OUTCOME_FAILURE, PageSize: 3},
		"GetDrift":            &tlogv1.GetDriftRequest{Tenant: "acme", Baseline: map[string]*tlogv1.Grants{"alice": {Roles: []string{"viewer"}}}},
	}
	for i, m := range methods {
		f.Add(uint8(i), []byte{})
		short := m.name[strings.LastIndex(m.name, "/")+1:]
		if s, ok := seeds[short]; ok {
			b, err := proto.Marshal(s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), b)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		m := methods[int(which)%len(methods)]
		req := m.in.New().Interface()
		if proto.Unmarshal(b, req) != nil {
			return
		}
		var err error
		following := false
		if m.stream {
			c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if fd := req.ProtoReflect().Descriptor().Fields().ByName("follow"); fd != nil {
				following = req.ProtoReflect().Get(fd).Bool()
			}
			var st grpc.ClientStream
			st, err = tl.conn.NewStream(c, &grpc.StreamDesc{ServerStreams: true}, m.name)
			if err == nil {
				err = st.SendMsg(req)
			}
			if err == nil {
				err = st.CloseSend()
			}
			for i := 0; err == nil && i < 3; i++ {
				err = st.RecvMsg(m.out.New().Interface())
			}
			if err == io.EOF {
				err = nil
			}
		} else {
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = tl.conn.Invoke(c, m.name, req, m.out.New().Interface())
		}
		switch code := status.Code(err); {
		case code == codes.DeadlineExceeded && following:
		case code == codes.Internal, code == codes.Unknown, code == codes.DeadlineExceeded, code == codes.Unavailable:
			t.Fatalf("%s(%v): %v", m.name, req, err)
		}
	})
}

// FuzzDashboardAPI sends any path and body to the dashboard's JSON API of a
// real server (real Pebble, the in-process gRPC connection) holding a small
// history, as a signed-in browser. No request may crash the server or get a
// 5xx, and every refusal is JSON naming its code and what is wrong.
func FuzzDashboardAPI(f *testing.F) {
	tl := startLog(f, nil)
	if _, err := tlogv1.NewAuditServiceClient(tl.conn).RecordEvents(ctx(f), &tlogv1.RecordEventsRequest{Events: history(40, 5)}); err != nil {
		f.Fatal(err)
	}
	dash, err := tl.srv.DashboardHandler()
	if err != nil {
		f.Fatal(err)
	}
	serve := func(method, path string, body []byte, cookie *http.Cookie, csrf string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req, err := http.NewRequest(method, "http://127.0.0.1/ui/api/"+path, bytes.NewReader(body))
		if err != nil {
			return nil
		}
		req.RemoteAddr = "192.0.2.1:1234"
		req.Header.Set("Content-Type", "application/json")
		if cookie != nil {
			req.AddCookie(cookie)
			req.Header.Set(csrfHeader, csrf)
		}
		dash.ServeHTTP(rec, req)
		return rec
	}
	rec := serve("POST", "session", []byte(`{"token":""}`), nil, "")
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &sess) != nil || len(rec.Result().Cookies()) != 1 {
		f.Fatalf("sign-in: %d %s", rec.Code, rec.Body)
	}
	cookie := rec.Result().Cookies()[0]
	if rec := serve("POST", "rpc/tlog.v1.AuditService/GetTimeline", []byte(`{"tenant":"acme","subject_id":"alice"}`), cookie, sess.CSRF); rec.Code != 200 {
		f.Fatalf("GetTimeline as the signed-in browser: %d %s", rec.Code, rec.Body)
	}
	for _, seed := range []struct{ path, body string }{
		{"rpc/tlog.v1.LogService/GetCheckpoint", `{}`},
		{"rpc/tlog.v1.LogService/GetEntries", `{"start":"1","count":5,"include_payloads":true}`},
		{"rpc/tlog.v1.LogService/GetInclusionProof", `{"index":"3","tree_size":"10"}`},
		{"rpc/tlog.v1.LogService/GetConsistencyProof", `{"first_tree_size":"3","second_tree_size":"40"}`},
		{"rpc/tlog.v1.AuditService/GetTimeline", `{"tenant":"acme","subject_id":"alice","page_size":5}`},
		{"rpc/tlog.v1.AuditService/QueryEvents", `{"tenant":"acme","outcome":"OUTCOME_FAILURE","page_size":3}`},
		{"rpc/tlog.v1.AuditService/GetDrift", `{"tenant":"acme","baseline":{"alice":{"roles":["viewer"]}}}`},
		{"rpc/tlog.v1.LogService/Append", `{"records":[{"payload":"eA=="}]}`},
		{"rpc/tlog.v1.LogService/GetEntries", `{"start":"-1"`},
		{"session", `{"token":"x"}`},
		{"info", ``},
		{"nothing/here", `[]`},
	} {
		f.Add(seed.path, []byte(seed.body), true)
	}
	f.Fuzz(func(t *testing.T, path string, body []byte, post bool) {
		method := "GET"
		if post {
			method = "POST"
		}
		// Signing in again, or out, would end the session the next inputs
		// run in: those go without it (the path as the server decodes it).
		signedIn := cookie
		if u, err := url.Parse("/ui/api/" + path); err != nil || strings.Contains(u.Path, "session") || strings.Contains(u.Path, "logout") {
			signedIn = nil
		}
		rec := serve(method, path, body, signedIn, sess.CSRF)
		if rec == nil || rec.Code < 400 {
			return
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %q %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		var out struct{ Code, Message string }
		if json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Code == "" || out.Message == "" {
			t.Fatalf("%s %q %q: %d answered %q, not a JSON error", method, path, body, rec.Code, rec.Body)
		}
	})
}

// FuzzParsePolicy: any policy file is parsed without a panic, and a policy
// that parses gives every principal it names a role.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("principals:\n  spiffe://tlogd.local/billing: [appender]\n  alice: [auditor, reader]\nanonymous: [reader]\n"))
	f.Add([]byte("roles:\n  custom: [read_payloads]\nprincipals:\n  bob: [custom]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if p == nil {
			t.Fatal("nil policy without an error")
		}
	})
}

// FuzzParseTokenLine: any line of a token file is parsed without a panic,
// and a line that parses names a principal and round-trips.
func FuzzParseTokenLine(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("ab", 32) + " spiffe://tlogd.local/billing")
	f.Add("sha256:" + strings.Repeat("0", 64) + " ")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseTokenLine(line)
		if err != nil {
			return
		}
		if e.Principal == "" {
			t.Fatalf("%q parsed with no principal", line)
		}
		again, err := ParseTokenLine(fmt.Sprintf("sha256:%x %s", e.hash, e.Principal))
		if err != nil || again != e {
			t.Fatalf("%q does not round-trip: %v", line, err)
		}
	})
}

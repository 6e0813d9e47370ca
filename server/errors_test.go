package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/storage"
)

func TestToStatus(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	wrap := func(err error) error { return fmt.Errorf("read node 3/7: %w", err) }
	for _, tc := range []struct {
		err      error
		code     codes.Code
		generic  bool // message must not leak the error's text
		loggedAs string
	}{
		{nil, codes.OK, false, ""},
		{status.Error(codes.InvalidArgument, "count: must be at least 1"), codes.InvalidArgument, false, ""},
		{context.Canceled, codes.Canceled, false, ""},
		{wrap(context.DeadlineExceeded), codes.DeadlineExceeded, false, ""},
		{wrap(storage.ErrBeyondTree), codes.OutOfRange, false, ""},
		{wrap(storage.ErrNotFound), codes.NotFound, false, ""},
		{errStopping, codes.Unavailable, false, ""},
		{wrap(storage.ErrClosed), codes.Unavailable, false, ""},
		{wrap(storage.ErrFailed), codes.Unavailable, false, ""},
		{fmt.Errorf("%w: write WAL: %w", storage.ErrFailed, syscall.ENOSPC), codes.ResourceExhausted, false, ""},
		{fmt.Errorf("%w: 5 MiB free", storage.ErrDiskFull), codes.ResourceExhausted, false, ""},
		{wrap(storage.ErrCorrupt), codes.Internal, true, "read node 3/7"},
		{errors.New("pebble: disk on fire at /var/lib/tlogd"), codes.Internal, true, "disk on fire"},
	} {
		logs.Reset()
		got := toStatus(context.Background(), log, tc.err)
		st, _ := status.FromError(got)
		if st.Code() != tc.code {
			t.Errorf("%v → %v, want %v", tc.err, st.Code(), tc.code)
		}
		if tc.generic && st.Message() != "internal error" {
			t.Errorf("%v → message %q leaks detail", tc.err, st.Message())
		}
		if tc.loggedAs != "" && !strings.Contains(logs.String(), tc.loggedAs) {
			t.Errorf("%v was not logged with its detail", tc.err)
		}
	}
}

package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/storage"
)

// toStatus maps an error from the layers below to a gRPC status. It is the
// only place where Go errors become codes. Errors that are already statuses
// (validation) pass through. Unexpected errors are logged with their detail
// and reach the client as a generic Internal.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, storage.ErrBeyondTree):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, storage.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, errStopping), errors.Is(err, storage.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down; retry on another replica or after restart")
	case errors.Is(err, storage.ErrDiskFull):
		return status.Error(codes.ResourceExhausted, strings.TrimPrefix(err.Error(), "storage: "))
	case errors.Is(err, storage.ErrFailed) && errors.Is(err, syscall.ENOSPC):
		return status.Error(codes.ResourceExhausted, "disk full: the log writer stopped after a write failed for lack of space; appends resume after space is freed and tlogd restarts")
	case errors.Is(err, storage.ErrFailed):
		return status.Error(codes.Unavailable, "log writer stopped after a storage error; appends resume after tlogd restarts")
	}
	log.ErrorContext(ctx, "internal error", slog.String("error", err.Error()))
	return status.Error(codes.Internal, "internal error")
}

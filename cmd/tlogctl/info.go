package main

import (
	"errors"
	"fmt"

	"github.com/tlogd/tlogd/client"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

func infoCmd(e env, args []string) error {
	c := newCommand("info", "", `Prints what the server says about its log: origin, verifier key and limits.
It needs no key: the key printed is the server's claim, not a check, so pin a
key you got from the log's operator through another channel. With -vkey or
-vkey-file, a server reporting another key is a verification failure.`)
	f := connFlags{keyOptional: true}
	f.register(c)
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	pinned := ""
	if f.vkey != "" || f.vkeyFile != "" {
		var err error
		if pinned, err = f.load(); err != nil {
			return err
		}
	}
	conn, err := f.connect()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := f.call(e.ctx)
	defer cancel()
	info, err := tlogv1.NewLogServiceClient(conn).GetLogInfo(ctx, &tlogv1.GetLogInfoRequest{})
	if err != nil {
		return fmt.Errorf("get log info: %w", err)
	}
	if f.json {
		printJSON(e.stdout, info)
	} else {
		fmt.Fprintf(e.stdout, "origin: %s\nverifier key: %s\nmax records per append: %d\nmax payload bytes: %d\nmax entries per call: %d\nmax request bytes: %d\nmax response bytes: %d\n",
			info.GetOrigin(), info.GetVerifierKey(), info.GetMaxRecordsPerAppend(), info.GetMaxPayloadBytes(),
			info.GetMaxEntriesPerCall(), info.GetMaxRequestBytes(), info.GetMaxResponseBytes())
	}
	if pinned != "" && info.GetVerifierKey() != pinned {
		return &client.VerificationError{What: "log info", Err: errors.New("the server reports a verifier key other than the pinned one")}
	}
	return nil
}

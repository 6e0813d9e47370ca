// Package tlog is the pure core of tlogd: the entry format, RFC 6962 hashing
// (RFC 6962 §2.1), inclusion and consistency proofs, and C2SP tlog-checkpoint
// signed notes (Ed25519 note keys from golang.org/x/mod/sumdb/note).
//
// It does no I/O and no logging. Proof construction reads stored hashes
// through a HashReader supplied by the caller.
package tlog

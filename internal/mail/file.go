package mail

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// FileSender is the embedded development transport, used when no SMTP
// server is configured: it writes each message as an RFC 5322 .eml file and
// logs where, with the links it contains, so that a newcomer can follow a
// verification link straight from the server log.
//
// Those links carry one-time tokens. Logging them is acceptable only for
// this development transport, and the log line says so; SMTPSender never
// logs a body or a link.
type FileSender struct {
	dir string
	log *slog.Logger

	mu   sync.Mutex
	last int64 // the last file's timestamp, so names never repeat
}

// NewFileSender writes messages under dir (created, mode 0700: the files
// hold live links) and logs each one to log.
func NewFileSender(dir string, log *slog.Logger) (*FileSender, error) {
	if dir == "" {
		return nil, fmt.Errorf("mail: empty mail directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail: create mail directory: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FileSender{dir: dir, log: log}, nil
}

// Dir is where messages are written.
func (f *FileSender) Dir() string { return f.dir }

var linkRE = regexp.MustCompile(`https?://[^\s<>"']+`)

// Links returns the http(s) URLs in text, in order, without trailing
// punctuation.
func Links(text string) []string {
	var out []string
	for _, l := range linkRE.FindAllString(text, -1) {
		l = strings.TrimRight(l, ".,;:!?)]}")
		out = append(out, l)
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// Send writes m to <dir>/<unix-nanos>-<template>.eml, atomically (a
// temporary file renamed into place), and logs it.
func (f *FileSender) Send(ctx context.Context, from string, m Message) error {
	now := time.Now()
	msg, err := build(from, m, now)
	if err != nil {
		return err
	}
	f.mu.Lock()
	n := now.UnixNano()
	if n <= f.last {
		n = f.last + 1
	}
	f.last = n
	f.mu.Unlock()
	name := fmt.Sprintf("%d-%s.eml", n, unsafeName.ReplaceAllString(strings.ToLower(m.Template), "_"))
	path := filepath.Join(f.dir, name)

	tmp, err := os.CreateTemp(f.dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("mail: write message: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := msg.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: write message: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: write message: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: write message: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mail: write message: %w", err)
	}
	f.log.LogAttrs(ctx, slog.LevelInfo,
		"development mail transport: email written to a file instead of sent (set --smtp-url to send); "+
			"its links carry one-time secrets, which only this development transport logs",
		slog.String("to", m.To), slog.String("subject", m.Subject), slog.String("file", path),
		slog.Any("links", Links(m.Text)))
	return nil
}

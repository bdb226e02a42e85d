package main

import "context"

func runSoak(ctx context.Context, h *harness) error { return nil }

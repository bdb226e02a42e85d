package main

import "context"

func runDiskFull(ctx context.Context, h *harness) error { return nil }
func runSlow(ctx context.Context, h *harness) error     { return nil }
func runSoak(ctx context.Context, h *harness) error     { return nil }

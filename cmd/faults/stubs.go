package main

import "context"

func runRaces(ctx context.Context, h *harness) error    { return nil }
func runDBFaults(ctx context.Context, h *harness) error  { return nil }
func runDiskFull(ctx context.Context, h *harness) error  { return nil }
func runSlow(ctx context.Context, h *harness) error      { return nil }
func runSoak(ctx context.Context, h *harness) error      { return nil }

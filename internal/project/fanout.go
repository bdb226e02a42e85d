package project

import (
	"io"
	"sync"
	"sync/atomic"
)

// Uploads are hashed three times (md5, sha256, blake2b-256) and written to
// the blob store. One after the other, the hashes cost about twice the
// slowest of them; on their own goroutines they cost about the slowest one
// when a second core is free (BenchmarkSpool measures both). The reader
// hands every chunk to all consumers and waits for none of them, so the
// network, the disk and the hashes overlap.
const (
	fanoutChunk  = 256 << 10 // bytes read at once, and handed to every lane
	fanoutChunks = 8         // chunks in flight at most: 2 MiB per upload
)

// chunk is one buffer of the stream, shared read-only by every lane until
// the last one is done with it.
type chunk struct {
	buf  []byte
	n    int
	refs atomic.Int32 // lanes yet to write it
}

// copyFanout copies r to every writer in ws, each on a goroutine of its
// own, chunkSize bytes at a time, with at most maxChunks chunks in memory.
// Chunks are allocated as needed, so a slow client holds one. It stops at
// the first error of r or of a writer and returns the bytes read and that
// error; every goroutine has ended when it returns.
func copyFanout(r io.Reader, chunkSize, maxChunks int, ws ...io.Writer) (int64, error) {
	free := make(chan *chunk, maxChunks)
	lanes := make([]chan *chunk, len(ws))
	errs := make([]error, len(ws))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i, w := range ws {
		in := make(chan *chunk, maxChunks) // never full: there are no more chunks
		lanes[i] = in
		wg.Go(func() {
			for c := range in {
				if errs[i] == nil {
					if _, err := w.Write(c.buf[:c.n]); err != nil {
						errs[i] = err
						failed.Store(true)
					}
				}
				if c.refs.Add(-1) == 0 {
					free <- c
				}
			}
		})
	}

	var (
		total     int64
		readErr   error
		allocated int
	)
	for !failed.Load() {
		var c *chunk
		select {
		case c = <-free:
		default:
			if allocated < maxChunks {
				c = &chunk{buf: make([]byte, chunkSize)}
				allocated++
			} else {
				c = <-free // every chunk is with a lane: wait for the slowest
			}
		}
		n, err := fill(r, c.buf)
		if n > 0 {
			c.n = n
			c.refs.Store(int32(len(ws)))
			for _, in := range lanes {
				in <- c
			}
			total += int64(n)
		}
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
	}
	for _, in := range lanes {
		close(in)
	}
	wg.Wait()
	if readErr != nil {
		return total, readErr
	}
	for _, err := range errs {
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// fill reads from r until b is full or r fails. Unlike io.ReadFull it passes
// r's errors through unchanged: a truncated multipart body reports
// io.ErrUnexpectedEOF itself, and that must not read as a clean end.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

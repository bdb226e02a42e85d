package web

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Pieces of one gzip stream, compressed apart and joined on the way out.
//
// Each piece is raw DEFLATE from a fresh compressor, ended by a sync flush:
// a sequence of non-final blocks that ends on a byte boundary and refers to
// no byte before its own start. Such pieces can be concatenated into one
// valid DEFLATE stream, closed with an empty final block, and wrapped in a
// gzip header and a trailer whose CRC-32 is combined from the pieces' CRCs
// (pigz builds its output the same way). So when one piece changes, only
// that piece is compressed again; the others are reused as they are.
type deflated struct {
	z     []byte   // raw DEFLATE, sync-flushed, not final
	crc   uint32   // CRC-32 of the uncompressed bytes
	size  int64    // uncompressed length
	shift uint32   // x^(8·size) mod the CRC polynomial, for combining
	sum   [16]byte // SHA-256 prefix of the uncompressed bytes, for ETags
}

// deflateLevel trades the one-off cost of compressing every project at the
// first request against the size of what is kept in memory and sent.
const deflateLevel = flate.DefaultCompression

var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, deflateLevel)
	return w
}}

func deflatePiece(b []byte) deflated {
	var buf bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	w.Reset(&buf)
	w.Write(b) // a bytes.Buffer does not fail
	w.Flush()  // sync flush: byte-aligned, not final
	deflaters.Put(w)
	return deflated{z: bytes.Clone(buf.Bytes()), crc: crc32.ChecksumIEEE(b), size: int64(len(b)), shift: crcShift(int64(len(b))), sum: sum16(b)}
}

func sum16(b []byte) (s [16]byte) {
	h := sha256.Sum256(b)
	copy(s[:], h[:16])
	return s
}

// finalBlock is an empty final DEFLATE block with fixed Huffman codes.
var finalBlock = []byte{0x03, 0x00}

// gzipHeader is a gzip member header: DEFLATE, no name, no mtime, OS unknown.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

func gzipTrailer(crc uint32, size int64) []byte {
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], crc)
	binary.LittleEndian.PutUint32(t[4:], uint32(size)) // ISIZE is the length mod 2^32
	return t[:]
}

var inflaters sync.Pool

// inflatePiece returns the uncompressed bytes of a piece, appended to dst.
func inflatePiece(dst []byte, d *deflated) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(d.z), bytes.NewReader(finalBlock))
	var r io.ReadCloser
	if v := inflaters.Get(); v != nil {
		r = v.(io.ReadCloser)
		r.(flate.Resetter).Reset(src, nil)
	} else {
		r = flate.NewReader(src)
	}
	defer inflaters.Put(r)
	buf := bytes.NewBuffer(dst)
	buf.Grow(int(d.size))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// CRC-32 combination (zlib's crc32_combine, in its multiply-mod-p form):
// crc(A‖B) = crc(A)·x^(8·len(B)) mod p ⊕ crc(B), with polynomials over GF(2)
// in the reflected bit order of the IEEE CRC.
const crcPoly = 0xedb88320

// multModP multiplies a and b modulo the CRC polynomial.
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nTable[k] is x^(2^k) mod p.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for k := 1; k < 32; k++ {
		p = multModP(p, p)
		t[k] = p
	}
	return t
}()

// crcShift is x^(8·n) mod p: what a CRC is multiplied by when n bytes follow.
func crcShift(n int64) uint32 {
	p := uint32(1) << 31 // x^0
	k := 3               // 8·n = n·2^3
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// crcCombine is the CRC of A‖B from crc(A), crc(B) and B's shift.
func crcCombine(crcA, crcB, shiftB uint32) uint32 {
	return multModP(shiftB, crcA) ^ crcB
}

// acceptsGzip reports whether an Accept-Encoding header (RFC 9110 §12.5.3)
// allows gzip: named with a non-zero quality, or covered by "*".
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		if k, v, ok := strings.Cut(params, "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

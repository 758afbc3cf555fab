package dropbox

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// BlockSize is the content hash's block: 4 MiB.
const BlockSize = 4 << 20

// ContentHasher computes Dropbox's content hash
// (dropbox.com/developers/reference/content-hash): the content is split in
// 4 MiB blocks, each block hashed with SHA-256, the block hashes
// concatenated and hashed with SHA-256 again; hex. It is a hash.Hash.
type ContentHasher struct {
	overall hash.Hash
	block   hash.Hash
	n       int // bytes in the current block
}

// NewContentHasher returns an empty hasher.
func NewContentHasher() *ContentHasher {
	return &ContentHasher{overall: sha256.New(), block: sha256.New()}
}

// Write adds p.
func (h *ContentHasher) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if h.n == BlockSize {
			h.overall.Write(h.block.Sum(nil))
			h.block.Reset()
			h.n = 0
		}
		k := min(len(p), BlockSize-h.n)
		h.block.Write(p[:k])
		h.n += k
		p = p[k:]
	}
	return total, nil
}

// Sum appends the hash to b.
func (h *ContentHasher) Sum(b []byte) []byte {
	o := sha256.New()
	// the overall state so far, cloned through its binary form
	if m, ok := h.overall.(interface{ MarshalBinary() ([]byte, error) }); ok {
		st, _ := m.MarshalBinary()
		_ = o.(interface{ UnmarshalBinary([]byte) error }).UnmarshalBinary(st)
	}
	if h.n > 0 {
		o.Write(h.block.Sum(nil))
	}
	return o.Sum(b)
}

// Reset empties the hasher.
func (h *ContentHasher) Reset() { h.overall.Reset(); h.block.Reset(); h.n = 0 }

// Size is 32.
func (h *ContentHasher) Size() int { return sha256.Size }

// BlockSize is SHA-256's.
func (h *ContentHasher) BlockSize() int { return sha256.BlockSize }

// Hex is the hash as Dropbox writes it.
func (h *ContentHasher) Hex() string { return hex.EncodeToString(h.Sum(nil)) }

// ContentHash is the content hash of b.
func ContentHash(b []byte) string {
	h := NewContentHasher()
	_, _ = h.Write(b)
	return h.Hex()
}

// Package ids generates application-side identifiers: a short type prefix
// and a time-ordered, 128-bit random-suffixed body (ULID layout, Crockford
// base32), so that sorting by id sorts by creation time.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var (
	mu     sync.Mutex
	lastMS uint64
	lastR  [10]byte
)

// New returns prefix + "_" + a 26-character time-ordered id. Within one
// process ids are strictly increasing, even inside one millisecond.
func New(prefix string) string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	mu.Lock()
	if ms <= lastMS {
		ms = lastMS
		// increment the random part so ids stay ordered
		for i := len(lastR) - 1; i >= 0; i-- {
			lastR[i]++
			if lastR[i] != 0 {
				break
			}
		}
	} else {
		lastMS = ms
		_, _ = rand.Read(lastR[:])
		lastR[0] &= 0x7f // leave room to increment
	}
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	copy(b[6:], lastR[:])
	mu.Unlock()
	return prefix + "_" + encode(b)
}

// encode renders 128 bits as 26 base32 characters, most significant first.
func encode(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Random returns n bytes from crypto/rand.
func Random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // the OS is broken; nothing safe to do
	}
	return b
}

// Time is the creation time (millisecond precision) an id made by New or
// Generation carries in its last 26 characters; ok is false when id does
// not end in such a body.
func Time(id string) (t time.Time, ok bool) {
	if len(id) < 26 {
		return time.Time{}, false
	}
	body := id[len(id)-26:]
	var ms uint64
	for i := 0; i < 26; i++ {
		n := strings.IndexByte(alphabet, body[i])
		if n < 0 {
			return time.Time{}, false
		}
		if i < 10 { // the first 50 bits: two zero bits, then the 48-bit time
			ms = ms<<5 | uint64(n)
		}
	}
	if ms>>48 != 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

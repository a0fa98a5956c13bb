package nettest

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
)

// DamageLeaf overwrites with garbage, as a failing SD card would, a leaf
// page in the middle of the journal (bbolt) file at path, closed, and
// returns its page number. With many events, the leaf pages are mostly
// those of the events bucket, so the events on it can no longer be read.
func DamageLeaf(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	var leaves []int64
	for id := int64(2); (id+1)*ps <= int64(len(b)); id++ {
		p := b[id*ps:]
		if binary.NativeEndian.Uint64(p) == uint64(id) && binary.NativeEndian.Uint16(p[8:]) == 0x02 && binary.NativeEndian.Uint16(p[10:]) > 8 {
			leaves = append(leaves, id)
		}
	}
	if len(leaves) < 3 {
		t.Fatalf("test setup: %d leaf pages in %s", len(leaves), path)
	}
	id := leaves[len(leaves)/2]
	junk := make([]byte, ps)
	r := rand.New(rand.NewPCG(ps, 9))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, id*ps); err != nil {
		t.Fatal(err)
	}
	return id
}

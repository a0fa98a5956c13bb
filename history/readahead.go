package history

import (
	"runtime"
	"sync"

	"imon/event"
)

// readAheadWindow bounds the chunks read but not yet folded in.
const readAheadWindow = 8

// readAhead reads the journal from seq from up to last in chunks of
// readChunk with up to two goroutines (decoding is most of a replay's
// cost) and hands the chunks to fn in order, until fn returns false or a
// read fails. The goroutines end before it returns.
func readAhead(j Journal, from, last uint64, fn func([]event.Event) bool) error {
	type chunk struct {
		evs []event.Event
		err error
	}
	n := int((last-from)/readChunk) + 1
	res := make([]chan chunk, n)
	for i := range res {
		res[i] = make(chan chunk, 1)
	}
	sem := make(chan struct{}, readAheadWindow)
	jobs := make(chan int)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // hands out chunk numbers, at most readAheadWindow ahead
		defer wg.Done()
		defer close(jobs)
		for i := range n {
			select {
			case sem <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	for range min(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				evs, err := j.Read(from+uint64(i)*readChunk, readChunk)
				res[i] <- chunk{evs, err} // buffered: never blocks
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for i := range n {
		c := <-res[i]
		<-sem
		if c.err != nil {
			return c.err
		}
		if !fn(c.evs) {
			return nil
		}
	}
	return nil
}

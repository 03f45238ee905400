package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is one path to the fake upstream: direct, proxy-only or Beaver.
type target struct {
	name   string
	url    string
	body   []byte
	key    string
	stream bool
	rec    *recorder // Beaver only: every answer is kept for the billing check
}

// with returns t sending body instead.
func (t target) with(body []byte) target { t.body = body; return t }

var client = &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}}

// result is what the client saw of one answer. Times are since the request
// was sent.
type result struct {
	id      string
	cost    int64
	hasCost bool
	total   time.Duration
	// Timed runs only (streams): arrival of every content chunk's data line.
	content []time.Duration
}

// do sends one request and reads the whole answer. The same reading is done
// for every target, so the client's own work is the same on each path; timed
// adds a clock read and a JSON decode per SSE line (1-connection runs only).
func (t target) do(timed bool) (result, error) {
	var r result
	req, _ := http.NewRequest("POST", t.url, bytes.NewReader(t.body))
	req.Header.Set("Content-Type", "application/json")
	if t.key != "" {
		req.Header.Set("Authorization", "Bearer "+t.key)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		t.rec.failed()
		return r, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, res.Body)
		t.rec.failed()
		return r, fmt.Errorf("status %d", res.StatusCode)
	}
	if t.stream {
		err = readStream(res.Body, start, timed, &r)
	} else {
		var b []byte
		if b, err = io.ReadAll(res.Body); err == nil {
			var v struct {
				ID string `json:"id"`
			}
			err = json.Unmarshal(b, &v)
			r.id = v.ID
			if c := res.Header.Get("X-Beaver-Cost-Micros"); c != "" {
				r.cost, err = strconv.ParseInt(c, 10, 64)
				r.hasCost = err == nil
			}
		}
	}
	r.total = time.Since(start)
	if err != nil {
		t.rec.failed()
		return r, err
	}
	t.rec.add(r)
	return r, nil
}

type chunk struct {
	ID      string `json:"id"`
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		CostMicros *int64 `json:"cost_micros"`
	} `json:"usage"`
}

// readStream reads an SSE body to its end. The id and cost come from the
// last data line before [DONE] (Beaver's final usage chunk).
func readStream(body io.Reader, start time.Time, timed bool, r *result) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 16<<10), 4<<20)
	var last []byte
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok || string(data) == "[DONE]" {
			continue
		}
		if timed {
			at := time.Since(start)
			var c chunk
			if json.Unmarshal(data, &c) == nil && len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
				r.content = append(r.content, at)
			}
		}
		last = append(last[:0], data...)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return lastEvent(last, r)
}

// lastEvent reads the id and cost of a stream's last data line.
func lastEvent(last []byte, r *result) error {
	var c chunk
	if err := json.Unmarshal(last, &c); err != nil {
		return fmt.Errorf("last stream event: %w", err)
	}
	r.id = c.ID
	if c.Usage != nil && c.Usage.CostMicros != nil {
		r.cost, r.hasCost = *c.Usage.CostMicros, true
	}
	return nil
}

// errOnce reports the first error of each target on stderr.
var errOnce sync.Map

func reportErr(t target, err error) {
	if _, seen := errOnce.LoadOrStore(t.name, true); !seen {
		fmt.Fprintf(os.Stderr, "bench: %s: first error: %v\n", t.name, err)
	}
}

// load runs conns workers for d and returns requests per second.
func load(t target, conns int, d time.Duration) (float64, int64) {
	var ok, bad atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := t.do(false); err != nil {
					reportErr(t, err)
					bad.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), bad.Load()
}

// seq is a 1-connection run: sorted latencies (whole answer) and, for
// streams, sorted times to the first content chunk, gaps between successive
// content chunks, and the tail from the last content chunk to the end.
type seq struct {
	total, first, gaps, tail []time.Duration
	errors                   int
}

// sequential sends n requests one after another.
func sequential(t target, n int) seq {
	var s seq
	for i := 0; i < n; i++ {
		r, err := t.do(t.stream)
		if err != nil {
			reportErr(t, err)
			s.errors++
			continue
		}
		s.total = append(s.total, r.total)
		if len(r.content) > 0 {
			s.first = append(s.first, r.content[0])
			for j := 1; j < len(r.content); j++ {
				s.gaps = append(s.gaps, r.content[j]-r.content[j-1])
			}
			s.tail = append(s.tail, r.total-r.content[len(r.content)-1])
		}
	}
	for _, l := range []*[]time.Duration{&s.total, &s.first, &s.gaps, &s.tail} {
		sort.Slice(*l, func(i, j int) bool { return (*l)[i] < (*l)[j] })
		if len(*l) == 0 {
			*l = append(*l, 0)
		}
	}
	return s
}

// q is the p-quantile of sorted l.
func q(l []time.Duration, p float64) time.Duration { return l[int(p*float64(len(l)-1))] }

func maxOf(l []time.Duration) time.Duration { return l[len(l)-1] }

// rd rounds d to microseconds for printing.
func rd(d time.Duration) string { return d.Round(time.Microsecond).String() }

// ms prints d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

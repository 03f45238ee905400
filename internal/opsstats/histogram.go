package opsstats

import (
	"math"
	"math/bits"
	"time"
)

// Buckets is the number of buckets of each latency histogram: fixed and
// log-scale, the same in every process and every row, so that histograms
// merge by adding them and percentiles over any range come from the
// merged counts (percentiles themselves cannot be averaged).
//
// Bucket 0 holds latencies under 100µs; bucket i ≥ 1 holds those in
// [100µs·2^((i−1)/2), 100µs·2^(i/2)): two buckets per doubling, so a
// percentile is known within a factor of √2. The last bucket also holds
// everything slower (from about 3.5 minutes on).
const Buckets = 44

// bucketBase is the upper bound of bucket 0.
const bucketBase = 100 * time.Microsecond

// BucketOf is the histogram bucket of latency d.
func BucketOf(d time.Duration) int {
	if d < bucketBase {
		return 0
	}
	// k = floor(log2(d/base)) from the bit length, then the half step:
	// whether d reaches base·2^k·√2.
	k := bits.Len64(uint64(d/bucketBase)) - 1
	i := 2*k + 1
	if float64(d) >= float64(bucketBase<<k)*math.Sqrt2 {
		i++
	}
	return min(i, Buckets-1)
}

// BucketUpper is the upper bound of bucket i: a percentile that falls in
// bucket i is reported as this (at most this much).
func BucketUpper(i int) time.Duration {
	return time.Duration(float64(bucketBase) * math.Pow(2, float64(i)/2))
}

// Histogram counts latencies by bucket.
type Histogram [Buckets]int64

// Add adds o's counts to h.
func (h *Histogram) Add(o *Histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// Count is the number of latencies counted.
func (h *Histogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Percentile is the nearest-rank k-th percentile (the latency at rank
// ceil(k/100 · N) of the sorted latencies), as the upper bound of the
// bucket it falls in; 0 when nothing was counted.
func (h *Histogram) Percentile(k int) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := max((int64(k)*n+99)/100, 1)
	var seen int64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return BucketUpper(i)
		}
	}
	return BucketUpper(Buckets - 1)
}

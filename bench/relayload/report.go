package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Markers around the generated section of the README.
const (
	beginMark = "<!-- relayload:begin -->"
	endMark   = "<!-- relayload:end -->"
)

// Goals the figures are held to.
const (
	goalVerifyPerCore = 12_000 // verified #commit events per CPU-second
	goalFanoutCPU     = 5 * time.Microsecond
	goalHostMemory    = 64 << 10
)

// results are the figures of one run.
type results struct {
	cpus      int
	started   time.Time
	generated time.Duration
	events    []int // generated events by phase

	ingest      span
	ingestParts breakdown

	consumers   int
	delivered   int64
	fanout      span
	fanoutParts breakdown

	idleHosts     int
	perHost       memory
	indigoPerHost *memory

	tracked       int
	trackedIngest span
	trackedParts  breakdown
	perAccount    memory

	compare *comparison
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func micros(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(n)
}

// num formats a count with thousands separators.
func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

func holds(ok bool) string {
	if ok {
		return "holds"
	}
	return "not met"
}

// cpuModel names the processor, from /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// markdown renders the figures as the README's section.
func (r *results) markdown(o options) string {
	var b strings.Builder
	w := o.w
	cmd := strings.Join(append([]string{"go run ./relayload"}, o.args...), " ")
	fmt.Fprintf(&b, "Measured %s on %s, %d cores (GOMAXPROCS), %s/%s, with `%s`", r.started.Format("2006-01-02"), cpuModel(), r.cpus, runtime.GOOS, runtime.GOARCH, cmd)
	fmt.Fprintf(&b, " (%d hosts x %d accounts of %d records, %d events each; %.0f%% P-256 keys).\n\n", w.hosts, w.accountsPerHost, w.records, w.events, w.p256Share*100)
	b.WriteString("| measure | Welkin | indigo | goal |\n|---|---:|---:|---|\n")
	row := func(measure, welkin, indigo, goal string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", measure, welkin, indigo, goal)
	}
	if c := r.compare; c != nil {
		n := int64(c.events)
		wps, ips := perSecond(n, c.welkin.cpu), perSecond(n, c.indigo.cpu)
		row(fmt.Sprintf("#commit verification alone (frame decode, signature, inversion), one goroutine, %d events: events per CPU-second", c.events),
			num(wps), num(ips), fmt.Sprintf("≥ %s per core: %s (Welkin/indigo %.2f)", num(goalVerifyPerCore), holds(wps >= goalVerifyPerCore), wps/ips))
		row("the same: CPU per event", fmt.Sprintf("%.1f µs", micros(c.welkin.cpu, n)), fmt.Sprintf("%.1f µs", micros(c.indigo.cpu, n)), "")
	}
	ing := int64(r.events[phaseIngest])
	ingPerCPU := perSecond(ing, r.ingest.cpu)
	row(fmt.Sprintf("relay ingesting %s events from %d hosts: verified events per second (wall)", num(float64(ing)), w.hosts),
		num(perSecond(ing, r.ingest.wall)), "—", "")
	row("the same: relay CPU per event (every step: WebSocket, checks, state, log, stream)", fmt.Sprintf("%.1f µs", micros(r.ingest.cpu, ing)), "—", "")
	row("the same: events per relay CPU-second", num(ingPerCPU), "—",
		fmt.Sprintf("≥ %s per core: %s", num(goalVerifyPerCore), holds(ingPerCPU >= goalVerifyPerCore)))
	row("the same: relay CPU by part (CPU profile)", strings.Join(r.ingestParts.rows(), "; "), "—", "")
	if r.consumers > 0 {
		per := micros(r.fanout.cpu, r.delivered)
		own := per * r.fanoutParts[fanoutPart]
		goal := goalFanoutCPU.Seconds() * 1e6
		row(fmt.Sprintf("fan-out of %s events to %d consumers: messages delivered per second", num(float64(r.events[phaseFanout])), r.consumers),
			num(perSecond(r.delivered, r.fanout.wall)), "—", "")
		row("the same: relay CPU per delivered message, the events' ingest included", fmt.Sprintf("%.2f µs", per), "—", "")
		if len(r.fanoutParts) > 0 {
			row("the same: the fan-out's own share of it (stream server, by CPU profile)", fmt.Sprintf("%.2f µs", own), "—",
				fmt.Sprintf("≤ %.0f µs: %s", goal, holds(own <= goal)))
		}
	}
	if r.idleHosts > 0 {
		hs := r.perHost.heap + r.perHost.stack
		ihs, istack, irss := "—", "—", "—"
		if m := r.indigoPerHost; m != nil {
			ihs, istack, irss = kib(m.heap+m.stack), kib(m.stack), kib(m.rss)
		}
		row(fmt.Sprintf("memory per connected idle host (%d hosts): Go heap and stacks (indigo: what its relay keeps per host, see above)", r.idleHosts), kib(hs), ihs,
			fmt.Sprintf("≤ 64 KiB: %s", holds(hs <= goalHostMemory && r.perHost.rss <= goalHostMemory)))
		row("the same: of which goroutine stacks", kib(r.perHost.stack), istack, "")
		row("the same: resident memory", kib(r.perHost.rss), irss, "")
	}
	if r.tracked > 0 {
		n := int64(r.tracked)
		row(fmt.Sprintf("first events of %s new accounts: events per second (wall)", num(float64(n))), num(perSecond(n, r.trackedIngest.wall)), "—", "")
		row("the same: relay CPU per event (identity resolved, account stored)", fmt.Sprintf("%.1f µs", micros(r.trackedIngest.cpu, n)), "—", "")
		row("the same: relay CPU by part (CPU profile)", strings.Join(r.trackedParts.rows(), "; "), "—", "")
		row("memory per tracked account: Go heap", fmt.Sprintf("%s B", num(float64(r.perAccount.heap))), "—", "")
		row("the same: resident memory", fmt.Sprintf("%s B", num(float64(r.perAccount.rss))), "—", "")
	}
	return b.String()
}

// updateReadme replaces the text between the relayload markers of path.
func updateReadme(path, section string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return errors.New(path + ": no relayload markers")
	}
	out := s[:i+len(beginMark)] + "\n" + section + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}

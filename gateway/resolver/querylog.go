package resolver

import (
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// QueryLogConfig: who asked for what is personal data, so the log is off
// unless enabled, bounded in size, and aged out.
type QueryLogConfig struct {
	Enabled bool `yaml:"enabled"`
	// Size is the ring buffer's capacity; default 10000.
	Size int `yaml:"size"`
	// Retention drops entries older than this; default 24h.
	Retention time.Duration `yaml:"retention"`
	// File, when set, also appends each entry as a JSON line (rotate it
	// with logrotate; retention applies to the ring only).
	File string `yaml:"file"`
}

// QueryLogEntry is one logged query.
type QueryLogEntry struct {
	Time     time.Time `json:"time"`
	Client   string    `json:"client"`
	Name     string    `json:"name"`
	Type     string    `json:"type"`
	Result   string    `json:"result"`
	Rule     string    `json:"rule,omitempty"`
	Duration float64   `json:"duration_ms"`
}

type queryLog struct {
	cfg  QueryLogConfig
	now  clock
	mu   sync.Mutex
	ring []QueryLogEntry
	next int
	full bool
	file *os.File
	enc  *json.Encoder
}

func newQueryLog(cfg QueryLogConfig, now clock) *queryLog {
	q := &queryLog{cfg: cfg, now: now}
	if !cfg.Enabled {
		return q
	}
	if q.cfg.Size <= 0 {
		q.cfg.Size = 10_000
	}
	if q.cfg.Retention <= 0 {
		q.cfg.Retention = 24 * time.Hour
	}
	q.ring = make([]QueryLogEntry, q.cfg.Size)
	if cfg.File != "" {
		if f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			q.file, q.enc = f, json.NewEncoder(f)
		}
	}
	return q
}

func (q *queryLog) add(req *Request, d time.Duration) {
	if !q.cfg.Enabled {
		return
	}
	e := QueryLogEntry{Time: q.now(), Name: req.Name, Type: dns.TypeToString[req.Qtype], Result: req.Result,
		Duration: float64(d.Microseconds()) / 1000}
	if req.Client.IsValid() {
		e.Client = req.Client.String()
	}
	if req.Decision.Blocked || req.Decision.Allowed {
		e.Rule = req.Decision.Rule
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ring[q.next] = e
	q.next = (q.next + 1) % len(q.ring)
	q.full = q.full || q.next == 0
	if q.enc != nil {
		_ = q.enc.Encode(e)
	}
}

func (q *queryLog) entries() []QueryLogEntry {
	if !q.cfg.Enabled {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []QueryLogEntry
	cut := q.now().Add(-q.cfg.Retention)
	add := func(es []QueryLogEntry) {
		for _, e := range es {
			if !e.Time.IsZero() && e.Time.After(cut) {
				out = append(out, e)
			}
		}
	}
	if q.full {
		add(q.ring[q.next:])
	}
	add(q.ring[:q.next])
	return out
}

func (q *queryLog) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.file != nil {
		q.file.Close()
		q.file, q.enc = nil, nil
	}
}

package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/version"
)

// The API's status handlers: liveness, readiness and who the gateway is.

// readyTimeout bounds the readiness checks: a load balancer polls often.
const readyTimeout = 2 * time.Second

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, gwapi.Health{Status: "ok"})
}

// handleReady answers 503 with the problems while anything keeps the
// gateway from serving clients.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if probs := s.problems(r.Context()); len(probs) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, gwapi.Health{Status: "unavailable", Problems: probs})
		return
	}
	writeJSON(w, http.StatusOK, gwapi.Health{Status: "ok"})
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, gwapi.Info{Name: s.cfg.Name, Version: version.Version, Started: started, Now: s.now()})
}

// problems lists what keeps the gateway from serving clients.
func (s *Server) problems(ctx context.Context) []string {
	select {
	case <-s.ready:
	default:
		return []string{"API not listening yet"}
	}
	var probs []string
	if s.wg != nil {
		ctx, cancel := context.WithTimeout(ctx, readyTimeout)
		defer cancel()
		if err := s.wg.store.Ping(ctx); err != nil {
			probs = append(probs, "peer store: "+err.Error())
		}
		if s.wg.dev.ListenPort() == 0 {
			probs = append(probs, "WireGuard is not listening")
		}
	}
	return probs
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/policy"
	"github.com/tetherwfh/tether/netdiag/report"
)

// maxRequest bounds a request's body: a few small fields.
const maxRequest = 16 << 10

// eventKeepalive: an idle event stream writes an empty line this often,
// so a watcher whose daemon died (or a half-open connection) notices.
const eventKeepalive = 15 * time.Second

// Handler is the local API, served through localapi.Handler: every
// answer carries the API's version and every error is a localapi.Error.
// Only root, the daemon's own user and the socket group's members may
// call it; the socket's mode says the same, this holds even where it is
// loosened.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+localapi.PathStatus, func(w http.ResponseWriter, r *http.Request) { localapi.WriteJSON(w, d.Status()) })
	mux.HandleFunc("POST "+localapi.PathUp, d.handleUp)
	mux.HandleFunc("POST "+localapi.PathDown, d.handleDown)
	mux.HandleFunc("POST "+localapi.PathEnroll, d.handleEnroll)
	mux.HandleFunc("POST "+localapi.PathDiagnose, d.handleDiagnose)
	mux.HandleFunc("GET "+localapi.PathReports, func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		reps := slices.Clone(d.reports)
		d.mu.Unlock()
		if reps == nil {
			reps = []report.Report{}
		}
		localapi.WriteJSON(w, reps)
	})
	mux.HandleFunc("GET "+localapi.PathReportLatest, func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.reports) == 0 {
			localapi.WriteError(w, &localapi.Error{Status: 404, Code: localapi.CodeNotFound, Message: "no report yet: `tether diag` runs one"})
			return
		}
		localapi.WriteJSON(w, d.reports[0])
	})
	mux.HandleFunc("GET "+localapi.PathSettings, func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		localapi.WriteJSON(w, d.settings)
	})
	mux.HandleFunc("PUT "+localapi.PathSettings, d.handleSettings)
	mux.HandleFunc("GET "+localapi.PathEvents, d.handleEvents)
	mux.HandleFunc("GET "+localapi.PathLine, d.handleLine)
	mux.HandleFunc("POST "+localapi.PathSnooze, d.handleSnooze)
	return localapi.Handler(d.authorize(mux))
}

// authorize refuses callers who are neither root, nor the daemon's user,
// nor in the socket's group.
func (d *Daemon) authorize(h http.Handler) http.Handler {
	gid, _ := lookupGroup(d.cfg.SocketGroup)
	self := uint32(os.Geteuid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := peerOf(r.Context()); ok && p.uid != 0 && p.uid != self && !inGroup(p, gid) {
			localapi.WriteError(w, &localapi.Error{Status: http.StatusForbidden, Code: localapi.CodePermission,
				Message: fmt.Sprintf("uid %d may not use tetherd: only root and members of the socket's group (socket_group) may", p.uid)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func inGroup(p peer, gid int) bool {
	if gid < 0 {
		return false
	}
	if int(p.gid) == gid {
		return true
	}
	u, err := user.LookupId(strconv.Itoa(int(p.uid)))
	if err != nil {
		return false
	}
	gids, err := u.GroupIds()
	return err == nil && slices.Contains(gids, strconv.Itoa(gid))
}

// lookupGroup resolves socket_group, a name or a number; -1 for none.
func lookupGroup(g string) (int, error) {
	if g == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(grp.Gid)
}

// readSecret reads a 0600 file holding one line.
func readSecret(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o; it must be 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// decode reads a request's JSON body into v, refusing unknown fields
// and bodies over maxRequest; an empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: "the request is not what " + r.URL.Path + " takes: " + err.Error()})
		return false
	}
	return true
}

// writeErr answers err: a *localapi.Error as it is, anything else as 500.
func writeErr(w http.ResponseWriter, err error) {
	var le *localapi.Error
	if errors.As(err, &le) {
		localapi.WriteError(w, le)
		return
	}
	localapi.WriteError(w, &localapi.Error{Status: http.StatusInternalServerError, Code: localapi.CodeInternal, Message: err.Error()})
}

func (d *Daemon) handleUp(w http.ResponseWriter, r *http.Request) {
	var req localapi.UpRequest
	if !decode(w, r, &req) {
		return
	}
	d.mu.Lock()
	rec := d.enr
	d.mu.Unlock()
	if rec == nil || rec.Revoked != "" {
		writeErr(w, &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeNotEnrolled, Message: "this device is not enrolled: `tether enroll URL --token T`"})
		return
	}
	if err := policy.Check(rec.Policy, req.Mode); err != nil {
		code := localapi.CodeBadRequest
		if errors.Is(err, policy.ErrModeNotAllowed) {
			code = localapi.CodeModeNotAllowed
		}
		writeErr(w, &localapi.Error{Status: http.StatusForbidden, Code: code, Message: err.Error()})
		return
	}
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	if req.Mode != "" {
		d.settings.Mode = req.Mode
	}
	d.settings.Connect = true
	err := d.st.save(fileSettings, d.settings)
	running := d.eng != nil && d.engMode != ""
	d.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	if running {
		d.takeDown(r.Context(), "up again, deciding anew")
	}
	dec, err := d.connect(r.Context(), "")
	if err != nil {
		writeErr(w, err)
		return
	}
	localapi.WriteJSON(w, dec)
}

func (d *Daemon) handleDown(w http.ResponseWriter, r *http.Request) {
	if !decode(w, r, &struct{}{}) {
		return
	}
	d.ops.Lock()
	d.mu.Lock()
	d.settings.Connect = false
	err := d.st.save(fileSettings, d.settings)
	d.mu.Unlock()
	d.takeDown(r.Context(), "the employee's down")
	d.ops.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	d.reconcile(context.WithoutCancel(r.Context()))
	localapi.WriteJSON(w, d.Status())
}

func (d *Daemon) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req localapi.EnrollRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Token == "" {
		writeErr(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: "enroll needs a token (`tether enroll URL --token T`; an admin creates one with `tether-gateway token create`)"})
		return
	}
	d.ops.Lock()
	err := d.enroll(r.Context(), req)
	d.ops.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	d.reconcile(context.WithoutCancel(r.Context()))
	localapi.WriteJSON(w, d.Status())
}

func (d *Daemon) handleDiagnose(w http.ResponseWriter, r *http.Request) {
	var req localapi.DiagnoseRequest
	if !decode(w, r, &req) {
		return
	}
	// Another operation (a connect's own diagnosis, say) may run: wait
	// for it rather than measuring the line twice at once.
	d.ops.Lock()
	d.mu.Lock()
	eng := d.eng
	d.mu.Unlock()
	var rep report.Report
	var err error
	switch {
	case req.Uplinks:
		rep, err = d.diagnoseUplinks(r.Context(), false)
	case req.CompareTunnel && eng == nil:
		err = &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeNotConnected,
			Message: "comparing the tunnel with the line needs the tunnel up: `tether up`, then `tether diag --compare-tunnel`"}
	case eng != nil && !req.Quick:
		// A full diagnosis while connected measures both paths, so it
		// can say whose a slowdown is.
		rep, err = d.diagnoseTunnel(r.Context(), eng)
	default:
		rep, err = d.diagnose(r.Context(), req.Quick, eng)
	}
	d.ops.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	localapi.WriteJSON(w, rep)
}

func (d *Daemon) handleSettings(w http.ResponseWriter, r *http.Request) {
	var s localapi.Settings
	if !decode(w, r, &s) {
		return
	}
	s = normalizeSettings(s)
	if _, err := chooseEngine(s.Engine); err != nil {
		writeErr(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: err.Error()})
		return
	}
	d.mu.Lock()
	rec := d.enr
	d.mu.Unlock()
	if s.Mode != localapi.ModeAuto && s.Mode != localapi.ModeFull && s.Mode != localapi.ModeSplit {
		writeErr(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: fmt.Sprintf("mode %q: want auto, full or split", s.Mode)})
		return
	}
	if rec != nil {
		if err := policy.Check(rec.Policy, s.Mode); err != nil {
			writeErr(w, &localapi.Error{Status: http.StatusForbidden, Code: localapi.CodeModeNotAllowed, Message: err.Error()})
			return
		}
		if s.FailClosed && rec.Policy.FailClosed == "off" {
			writeErr(w, &localapi.Error{Status: http.StatusForbidden, Code: localapi.CodeModeNotAllowed, Message: "company policy turns the kill switch off"})
			return
		}
	}
	d.mu.Lock()
	d.settings = s
	err := d.st.save(fileSettings, s)
	d.mu.Unlock()
	if err != nil {
		writeErr(w, err)
		return
	}
	d.wake()
	localapi.WriteJSON(w, s)
}

// handleEvents streams events as NDJSON until the caller goes away or
// falls too far behind.
func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	events, stop := d.bus.watch()
	defer stop()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	_ = rc.Flush()
	keep := time.NewTicker(eventKeepalive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			if _, err := io.WriteString(w, "\n"); err != nil {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return // dropped: too slow
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

package ui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tetherwfh/tether/client/localapi"
)

// View is what the tray shows, computed from the daemon's status alone so
// it can be tested without a display.
type View struct {
	Headline string // one line: the menu header and the window's title line
	Gateway  string // the gateway line
	Detail   string // what to do, when something is wrong
	OK       bool   // everything is as it should be
}

// Summarize turns a status (or the error fetching it) into a View.
func Summarize(st localapi.Status, err error) View {
	if err != nil {
		if errors.Is(err, localapi.ErrNotRunning) {
			return View{Headline: "Tether is not running", Detail: "The Tether service (tetherd) is not running. Start it, or ask the helpdesk."}
		}
		return View{Headline: "Tether is not responding", Detail: err.Error()}
	}
	gw := ""
	if n := gatewayName(st); n != "" {
		gw = "Gateway " + n
	}
	mode := ""
	if st.Mode != "" {
		mode = fmt.Sprintf(" (%s tunnel, %s engine)", st.Mode, st.Engine)
	}
	switch st.State {
	case localapi.StateConnected:
		v := View{Headline: "Connected" + mode, OK: true, Gateway: "Connected to the company gateway " + gatewayName(st)}
		if st.Decision != nil && len(st.Decision.Reasons) > 0 {
			v.Detail = "Why this mode: " + st.Decision.Reasons[0].Text
		}
		return v
	case localapi.StateDegraded:
		return View{Headline: "Connection unstable" + mode, Gateway: gw, Detail: sentence(st.Reason)}
	case localapi.StateConnecting:
		return View{Headline: "Connecting…", Gateway: gw, Detail: sentence(st.Reason)}
	case localapi.StateDiagnosing:
		return View{Headline: "Checking this network…", Gateway: gw, Detail: sentence(st.Reason)}
	case localapi.StateBlocked:
		return View{Headline: "Blocked: the kill switch holds", Gateway: gw, Detail: sentence(st.Reason)}
	case localapi.StateDisconnected:
		return View{Headline: "Disconnected", Gateway: gw, Detail: sentence(st.Reason)}
	case localapi.StateNeedsEnrollment:
		return View{Headline: "Not enrolled", Detail: sentence(st.Reason)}
	}
	return View{Headline: "Starting…", Gateway: gw}
}

// gatewayName is how the tray names the gateway: its name when known,
// else its URL.
func gatewayName(st localapi.Status) string {
	if st.Gateway.Name != "" {
		return st.Gateway.Name
	}
	if st.Enrollment != nil {
		return st.Enrollment.Gateway
	}
	return st.Gateway.URL
}

// sentence capitalizes a reason and ends it with a period.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

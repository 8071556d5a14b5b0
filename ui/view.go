package ui

import (
	"errors"
	"fmt"
	"time"

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
	g := st.Gateway
	name := g.URL
	if g.Name != "" {
		name = g.Name
	}
	switch st.State {
	case localapi.StateReady:
		return View{Headline: "Ready", OK: true,
			Gateway: fmt.Sprintf("Company gateway %s answers in %s", name, time.Duration(g.RTT).Round(10*time.Microsecond))}
	case localapi.StateGatewayUnreachable:
		return View{Headline: "Company gateway unreachable", Gateway: "Gateway " + name,
			Detail: "Tether cannot reach the company gateway. Check that this computer is online. Details: " + g.Error}
	}
	return View{Headline: "Starting…", Gateway: "Gateway " + name}
}

package ui

import (
	"context"
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/tetherwfh/tether/client/localapi"
)

// Backend is what the tray needs from the daemon. localapi.Client
// implements it, and the tests use one against localapitest's fake
// daemon.
type Backend interface {
	// Status returns the daemon's current status, or an error when the
	// daemon cannot be reached. The tray calls it from its poll loop and
	// its Refresh button at once, so it must be safe for concurrent use.
	Status(ctx context.Context) (localapi.Status, error)
}

// pollInterval paces the tray's status refresh: the daemon answers from
// memory, so this costs nothing, and a person never sees a stale icon for
// more than two seconds.
const pollInterval = 2 * time.Second

// Tray is the tray icon, its menu and the status window.
type Tray struct {
	app     fyne.App
	backend Backend

	window  fyne.Window
	state   *widget.Label
	gateway *widget.Label
	detail  *widget.Label
	menu    *fyne.Menu
	header  *fyne.MenuItem
}

// NewTray builds the tray's widgets on app; call Run to start it.
func NewTray(app fyne.App, backend Backend) *Tray {
	t := &Tray{app: app, backend: backend}
	t.state = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	t.gateway = widget.NewLabel("")
	t.detail = widget.NewLabel("")
	t.detail.Wrapping = fyne.TextWrapWord
	t.window = app.NewWindow("Tether")
	t.window.SetContent(container.NewVBox(t.state, t.gateway, t.detail,
		widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), func() { go t.refresh(context.Background()) })))
	t.window.Resize(fyne.NewSize(420, 160))
	t.window.SetCloseIntercept(t.window.Hide) // closing hides; the tray stays
	t.header = fyne.NewMenuItem("Tether: connecting to tetherd…", nil)
	t.header.Disabled = true
	t.menu = fyne.NewMenu("Tether", t.header,
		fyne.NewMenuItem("Show status…", func() { t.window.Show() }))
	if d, ok := app.(desktop.App); ok {
		d.SetSystemTrayMenu(t.menu)
	}
	t.apply(Summarize(localapi.Status{}, errNotYet))
	return t
}

// Window is the status window.
func (t *Tray) Window() fyne.Window { return t.window }

// Run refreshes the status until ctx is done.
func (t *Tray) Run(ctx context.Context) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		t.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *Tray) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, pollInterval)
	defer cancel()
	st, err := t.backend.Status(ctx)
	v := Summarize(st, err)
	fyne.Do(func() { t.apply(v) })
}

// apply shows a view; it runs on Fyne's goroutine.
func (t *Tray) apply(v View) {
	t.state.SetText(v.Headline)
	t.gateway.SetText(v.Gateway)
	t.detail.SetText(v.Detail)
	t.header.Label = "Tether: " + v.Headline
	t.menu.Refresh()
}

var errNotYet = fmt.Errorf("waiting for tetherd")

// Command tether-tray is the tray icon: a view of tetherd's status through
// its local API. It needs a display; without one it says so and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"

	"fyne.io/fyne/v2/app"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/ui"
)

func main() {
	socket := flag.String("socket", localapi.DefaultSocket, "the daemon's local API socket")
	show := flag.Bool("show", false, "open the status window at start")
	flag.Parse()
	if runtime.GOOS == "linux" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		fmt.Fprintln(os.Stderr, "tether-tray: no display (DISPLAY and WAYLAND_DISPLAY are unset); `tether status` shows the same from a terminal")
		os.Exit(1)
	}
	a := app.NewWithID("com.tetherwfh.tether")
	tray := ui.NewTray(a, &localapi.Client{Socket: *socket})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tray.Run(ctx)
	if *show {
		tray.Window().Show()
	}
	a.Run()
}

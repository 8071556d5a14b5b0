// Package version holds the build's version string.
package version

// Version is set at link time: -ldflags "-X github.com/tetherwfh/tether/internal/version.Version=v1.2.3".
var Version = "dev"

// Package gwapi is the gateway's HTTP API as its clients see it: the
// paths, the JSON types both sides read (the company's tunnel policy
// among them), the error envelope, certificate pinning, and Client, the
// one typed client of the API that the daemon, the admin CLI, the bench,
// the dev stack and the tests share.
//
// Boundaries: gwapi is a wire package. It imports the standard library
// and internal/... only, never the gateway that serves the API, so a
// client links no SQLite, resolver or metrics. Its sibling gwapi/wgconf
// turns an Enrollment into a tunnel configuration.
package gwapi

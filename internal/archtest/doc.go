// Package archtest holds TestArchitecture, which keeps Tether's import
// arrows to the table in ARCHITECTURE.md at the repository's root, and
// the dependency promises the binaries make (the CLI links no gateway,
// the tray no daemon).
//
// Boundaries: a test-only package; it imports nothing of the product and
// reads the module with `go list`.
package archtest

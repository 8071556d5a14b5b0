package localapi

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrNotRunning means nothing listens on the socket.
var ErrNotRunning = errors.New("tetherd is not running")

// ErrorCode says, for programs, what kind of error an Error is.
type ErrorCode string

// The error codes. A client that meets a code it does not know treats it
// by its HTTP status: a 4xx is its own mistake, a 5xx the daemon's.
const (
	// CodeBadRequest: the request is malformed.
	CodeBadRequest ErrorCode = "bad_request"
	// CodeAPIVersion: the request names another APIVersion.
	CodeAPIVersion ErrorCode = "api_version"
	// CodeNotFound: no such path in this APIVersion.
	CodeNotFound ErrorCode = "not_found"
	// CodeMethodNotAllowed: the path exists, not with this method.
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"
	// CodeInternal: the daemon failed.
	CodeInternal ErrorCode = "internal"
)

// Error is the body of every error answer, and the error Client returns
// for one.
type Error struct {
	// Code is the kind of error, one of the Code constants.
	Code ErrorCode `json:"code"`
	// Message says what went wrong, for a person.
	Message string `json:"error"`
	// Status is the answer's HTTP status. It is not in the body: Client
	// fills it in, and WriteError takes it apart.
	Status int `json:"-"`
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("tetherd: %s (%s)", e.Message, e.Code)
	}
	return fmt.Sprintf("tetherd answered %d: %s (%s)", e.Status, e.Message, e.Code)
}

// codeFor is the code of an error answer that did not come with one: an
// http.ServeMux's 404 and 405, http.Error, a daemon of another make.
func codeFor(status int) ErrorCode {
	switch {
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case status >= 500:
		return CodeInternal
	}
	return CodeBadRequest
}

// VersionError means the daemon speaks another version of the local API
// than this program, so its answers cannot be read.
type VersionError struct {
	// Socket is the daemon's socket.
	Socket string
	// Daemon is the version the daemon sent in HeaderAPIVersion; empty
	// if it sent none.
	Daemon string
}

func (e *VersionError) Error() string {
	if e.Daemon == "" {
		return fmt.Sprintf("the daemon at %s does not say which local API version it speaks (this program speaks version %d): it is not tetherd, or one older than this program; install tether and tetherd of the same release", e.Socket, APIVersion)
	}
	return fmt.Sprintf("tetherd at %s speaks local API version %s, this program version %d: install tether and tetherd of the same release", e.Socket, e.Daemon, APIVersion)
}

package wgprobe

import (
	"bytes"
	"errors"
)

// Size is the length of a request and of an answer.
const Size = 12

var (
	reqMagic = []byte{0xff, 'T', 'P', 'Q'}
	ackMagic = []byte{0xff, 'T', 'P', 'A'}
)

// Request builds a request carrying nonce.
func Request(nonce [8]byte) []byte { return append(append([]byte{}, reqMagic...), nonce[:]...) }

// IsRequest reports whether b is a probe request.
func IsRequest(b []byte) bool { return len(b) == Size && bytes.Equal(b[:4], reqMagic) }

// Answer turns a request into its answer, in place, and returns it.
func Answer(req []byte) []byte {
	copy(req[:4], ackMagic)
	return req
}

// ErrNotAnswer means a packet is not an answer to a probe.
var ErrNotAnswer = errors.New("wgprobe: not a probe answer")

// ParseAnswer returns an answer's nonce.
func ParseAnswer(b []byte) ([8]byte, error) {
	var n [8]byte
	if len(b) != Size || !bytes.Equal(b[:4], ackMagic) {
		return n, ErrNotAnswer
	}
	copy(n[:], b[4:])
	return n, nil
}

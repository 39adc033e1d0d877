package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/porthole/porthole/gateway"
)

// hashToken reads a bearer token on stdin and prints its SHA-256 in hex:
// what a route's tokens_sha256 lists, so the configuration file never holds
// the token. Surrounding white space is left out, as connect -token-file
// does, so a file with a trailing newline hashes as the token it holds.
func hashToken(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("porthole hash-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: porthole hash-token < TOKEN-FILE\n\nPrints the SHA-256 (hex) of the bearer token read on stdin, for a route's tokens_sha256 in porthole serve's -config file.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("hash-token reads the token on stdin, not as an argument (arguments show in ps and shell history)")
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
	if err != nil {
		return fmt.Errorf("reading the token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return errors.New("no token on stdin; as in: porthole hash-token < token.txt")
	}
	sum := gateway.HashToken(token)
	fmt.Fprintln(stdout, hex.EncodeToString(sum[:]))
	return nil
}

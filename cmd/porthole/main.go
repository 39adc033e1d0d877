// Command porthole runs a porthole gateway (porthole serve) or connects to
// one (porthole connect). Run "porthole help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `porthole: every TCP service reachable through one HTTP(S) port.

Usage:
  porthole serve [flags]          run a gateway (defaults: http://127.0.0.1:8080, route /echo)
  porthole connect [flags] URL    open a tunnel: stdin/stdout, or a local port with -listen
  porthole hash-token < FILE      print a bearer token's SHA-256, for a route's tokens_sha256

Run "porthole serve -h" or "porthole connect -h" for their flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "porthole: ") {
			msg = "porthole: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "connect":
		return connect(ctx, args[1:], stdin, stdout, slog.New(slog.NewTextHandler(stderr, nil)), stderr)
	case "hash-token":
		return hashToken(args[1:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

package service_test

import (
	"strings"
	"testing"

	"github.com/porthole/porthole/service"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   string // the service's String(), or a fragment of the error
		ok     bool
	}{
		{"echo", "echo", true},
		{"chat", "chat", true},
		{"tcp://127.0.0.1:22", "tcp://127.0.0.1:22", true},
		{"tcp://localhost:5900", "tcp://localhost:5900", true},
		{"tcp://[::1]:8080", "tcp://[::1]:8080", true},

		{"", "unknown service", false},
		{"Echo", "unknown service", false},
		{"udp://127.0.0.1:53", `unknown service "udp://127.0.0.1:53": use echo, chat or tcp://host:port`, false},
		{"127.0.0.1:22", "unknown service", false},
		{"tcp://127.0.0.1:22/path", "a tcp target is only tcp://host:port", false},
		{"tcp://127.0.0.1:22?q=1", "a tcp target is only tcp://host:port", false},
		{"tcp://user@127.0.0.1:22", "a tcp target is only tcp://host:port", false},
		{"tcp://127.0.0.1", "needs a host and a port", false},
		{"tcp://:22", "needs a host and a port", false},
		{"tcp://127.0.0.1:", "needs a host and a port", false},
		{"tcp://127.0.0.1:99999", "port 99999 is not a port", false},
		{"tcp://127.0.0.1:0", "port 0 is not a port", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			s, err := service.Parse(tc.target)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Parse(%q): %v", tc.target, err)
			case tc.ok && s.String() != tc.want:
				t.Fatalf("Parse(%q) = %s, want %s", tc.target, s, tc.want)
			case !tc.ok && err == nil:
				t.Fatalf("Parse(%q) = %s, want an error", tc.target, s)
			case !tc.ok && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.target)):
				t.Fatalf("Parse(%q): %q, want an error naming the target and saying %q", tc.target, err, tc.want)
			}
		})
	}
}

// Each chat target is its own room.
func TestParseChatRooms(t *testing.T) {
	a, _ := service.Parse("chat")
	b, _ := service.Parse("chat")
	if a.(*service.Chat) == b.(*service.Chat) {
		t.Error(`two Parse("chat") share one room`)
	}
}

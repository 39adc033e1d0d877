package gateway_test

import (
	"testing"

	"github.com/porthole/porthole/gateway"
	"github.com/porthole/porthole/service"
)

// TestRoutePathChecked: a route path that no request path can match is
// refused when the gateway is made.
func TestRoutePathChecked(t *testing.T) {
	for _, path := range []string{"", "/", "echo", "/echo?x=1", "/echo#top"} {
		if _, err := gateway.New(&gateway.Options{Routes: []gateway.Route{{Path: path, Service: service.Echo{}}}}); err == nil {
			t.Errorf("route path %q was accepted", path)
		}
	}
}

package apply

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// The healthz probe speaks plain HTTP to a real listener: 200 is healthy,
// anything else is reported with its status line.
func TestKubeletHealthy(t *testing.T) {
	ln, err := net.Listen("tcp", kubeletHealthz)
	if err != nil {
		t.Skipf("cannot listen on %s (a kubelet runs here?): %v", kubeletHealthz, err)
	}
	defer ln.Close()
	replies := []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 500 Internal Server Error\r\n\r\n[-]syncloop failed"}
	go func() {
		for _, r := range replies {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			n, _ := c.Read(buf)
			if !strings.HasPrefix(string(buf[:n]), "GET /healthz HTTP/1.0\r\n") {
				r = "HTTP/1.1 400 Bad Request\r\n\r\n"
			}
			c.Write([]byte(r))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kubeletHealthy(ctx); err != nil {
		t.Errorf("healthy kubelet: %v", err)
	}
	if err := kubeletHealthy(ctx); err == nil || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "syncloop") {
		t.Errorf("unhealthy kubelet: %v", err)
	}
}

package kubelet

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse: the parser never panics on any input.
func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/kubeadm.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("{\"kind\": \"KubeletConfiguration\", \"apiVersion\": \"kubelet.config.k8s.io/v1beta1\", \"maxPods\": 5}"))
	f.Add([]byte("kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\na: &x {b: *x}\nfeatureGates: {A: yes}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(bytes.NewReader(data), "config.yaml")
	})
}

// Package facts loads what the host is (program versions, parsed daemon
// configs, account files) once per check run, for every area package to
// judge. Loaders only read, through env.Host and env.Run.
package facts

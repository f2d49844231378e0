// Package facts loads what the host is (program versions, parsed daemon
// configs, account files) once per check run, for every area package to
// judge. Loaders only read, through env.Host and env.Run.
//
// One contract for every fact: type X, and XOf(env, …) that returns it,
// loaded at most once per run. A fact never returns an error of its own: X
// says in its Err field why it could not be established (a missing file is
// a fact about the host, not an error).
package facts

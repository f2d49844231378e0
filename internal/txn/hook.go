package txn

// hook is nil in the tool. The kill tests set it (from _test.go files
// only) to stop the process at each point named by at, where a crash must
// leave every file whole: old or new.
var hook func(point string)

func at(point string) {
	if hook != nil {
		hook(point)
	}
}

// Command usernsctl gets a Linux host ready for user-namespaced containers
// and proves that it worked.
package main

import (
	"os"

	"github.com/usernsctl/usernsctl/cmd"
)

func main() { os.Exit(cmd.Execute()) }

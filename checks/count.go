package checks

import "strconv"

// Count is n and the noun, plural unless n is 1: "1 line", "3 lines". For
// nouns that take a plain "s".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// Command gencards writes generated card numbers for benchmarks and load
// tests, one per line: distinct, valid for the Luhn check, over the issuer
// prefixes of tokenvaulttest.CardGenerator. They are not known accounts;
// use them only against test systems.
//
// Usage:
//
//	go run ./scripts/gencards [-n COUNT] [-seed SEED] > cards.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/tokenvault/tokenvault/tokenvaulttest"
)

func main() {
	count := flag.Int("n", 1000, "write `COUNT` numbers")
	seed := flag.Uint64("seed", 1, "generate the sequence of `SEED`; the same seed gives the same numbers")
	flag.Parse()
	if flag.NArg() > 0 || *count < 0 {
		fmt.Fprintln(os.Stderr, "usage: gencards [-n COUNT] [-seed SEED]")
		os.Exit(2)
	}

	gen := tokenvaulttest.NewCardGenerator(*seed)
	w := bufio.NewWriter(os.Stdout)
	for range *count {
		w.WriteString(gen.Next())
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "gencards: write standard output: %v\n", err)
		os.Exit(1)
	}
}

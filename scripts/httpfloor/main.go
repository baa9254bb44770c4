// Command httpfloor is the floor that scripts/bench-http.sh measures beside
// tokenvault serve: a net/http server whose handler reads the request body
// and responds 200 with a fixed token-sized JSON body, doing nothing else.
// Its rate is about the most that any handler reading each request and
// writing a response can reach with the same machine and client, so a
// tokenvault route's ratio to it shows what the route itself costs.
//
// It listens on a free port of 127.0.0.1 and prints the address on the first
// line of standard output.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

// body has the length of an opaque token response of tokenvault serve.
var body = []byte(`{"token":"tok_0123456789abcdefghijklmnopqrstuvwxyz"}`)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())

	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, "reading the body failed", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	if err := server.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

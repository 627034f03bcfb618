// Package srlsim serves a simulated SR Linux switch to tests over JSON-RPC, from
// the same files the stand-in sr_cli (lab/sim/sr_cli) reads: running.json (the
// running configuration) and commits.json (the "system configuration commit"
// list) in one folder. Both of cfgsnap's sources so read one switch, which the
// test changes by replacing those files.
package srlsim

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Options are the server's: its one user, and how long a read of the running
// configuration takes, as on a busy switch.
type Options struct {
	User, Password string
	ReadDelay      time.Duration
}

// ServeJSONRPC serves dir's switch on a unix socket, as `system json-rpc-server
// unix-socket` does, until the test ends, and returns the socket's path: basic
// auth; one "get" whose commands (path and datastore each) are answered in
// order, "/" from running with running.json and /system/configuration/commit
// from state with commits.json, as the server sends them (one compact line);
// any other path is refused as SR Linux refuses it (fixture
// jsonrpc-get-state-error.response.json).
func ServeJSONRPC(t testing.TB, dir string, o Options) string {
	t.Helper()
	// A socket's path has at most 108 bytes: t.TempDir's can be longer.
	sockDir, err := os.MkdirTemp("", "srl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "jsonrpc.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	files := map[[2]string]string{{"/", "running"}: "running.json", {"/system/configuration/commit", "state"}: "commits.json"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != o.User || p != o.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="jsonrpc"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		var req struct {
			Method string `json:"method"`
			Params struct {
				Commands []struct{ Path, Datastore string } `json:"commands"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "get" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var results []json.RawMessage
		for _, c := range req.Params.Commands {
			file, ok := files[[2]string{c.Path, c.Datastore}]
			if !ok {
				w.Write([]byte(`{"jsonrpc":"2.0","id":0,"error":{"code":-1,"message":"Path not valid"}}`))
				return
			}
			if file == "running.json" {
				time.Sleep(o.ReadDelay)
			}
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			results = append(results, b)
		}
		// Marshalled, a RawMessage is compacted: one long line, as the switch sends it.
		json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": 0, "result": results})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

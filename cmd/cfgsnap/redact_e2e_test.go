package main_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfgsnap/cfgsnap/handler/redact"
)

// TestRedactedSnapshotSimulated: a commit on the simulated switch, through the
// real event-handler script and binary, with redact default set in the
// instance: what lands on the SFTP server holds a marker where a planted
// password hash was, and neither it nor any other secret of the
// configuration; put each secret back in place of its marker and the file is
// the switch's, byte for byte. The status line says it is redacted.
func TestRedactedSnapshotSimulated(t *testing.T) {
	l := newLab(t, newSuite(t))
	keyFile := filepath.Join(l.spool, "redact.key")
	const key = "N3ITr7c2pV4o0bq8sZk1Xw9yDfGh5JmL"
	write(t, keyFile, []byte(key+"\n"), 0o600)
	const planted = "$y$j9T$0123456789abcdef$plantedPlantedPlantedPlantedPlanted/h4"
	running := l.setRunning("leaf11", func(cfg map[string]any) {
		aaa := cfg["srl_nokia-system:system"].(map[string]any)["srl_nokia-aaa:aaa"].(map[string]any)
		aaa["authentication"].(map[string]any)["user"] = []any{map[string]any{"username": "alice", "password": planted, "role": []any{"netops"}}}
	})
	secrets := []string{planted,
		"$y$j9T$959b590af74ac2c7$Wbl4RLBC22hFaen007orH99P0HaUoW9Hxz39.MaB/h4", // the fixture's admin-user
		"$y$j9T$1cfd55bb37790f58$JWY3yD437mHQEz0IZRHsDNTb6OQfH.xmUdAbFgEgl/9", // and linuxadmin-user
		"$aes1$AWC70cMM0X1sJm8=$zzqsbuGEnYwzrY2HONPcfA==",                     // an SNMP community
	}
	for _, s := range secrets {
		if !bytes.Contains(running, []byte(s)) {
			t.Fatalf("the running configuration does not hold %q: the test proves nothing", s)
		}
	}
	backups := filepath.Join(l.serverRoot, "srv", "backups")
	opts := l.options(l.targetURL("sftp", backups))
	opts["redact"] = "default"
	opts["redact-key-file"] = keyFile
	lc := l.commit("alice", "new user alice")
	l.fire(lc, opts, nil)

	rel := "leaf11/leaf11_" + lc.Format(tsLayout) + "_alice.json"
	got, err := os.ReadFile(filepath.Join(backups, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("the snapshot is not on the server: %v\n%s", err, l.diag())
	}
	restored := got
	for _, s := range secrets {
		if bytes.Contains(got, []byte(s)) {
			t.Errorf("the server holds the secret %q", s)
		}
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(s))
		marker := `"` + redact.Marker + hex.EncodeToString(mac.Sum(nil)) + `"`
		if !bytes.Contains(got, []byte(marker)) {
			t.Errorf("the server's snapshot has no marker %s for %.20q...", marker, s)
		}
		quoted, _ := json.Marshal(s)
		restored = bytes.ReplaceAll(restored, []byte(marker), quoted)
	}
	if !json.Valid(got) {
		t.Error("the redacted snapshot is not JSON")
	}
	// The fixture's TLS key is the fifth secret: put it back from the running file.
	var tls struct {
		System struct {
			TLS struct {
				Profiles []struct{ Key string } `json:"server-profile"`
			} `json:"srl_nokia-tls:tls"`
		} `json:"srl_nokia-system:system"`
	}
	if err := json.Unmarshal(running, &tls); err != nil || len(tls.System.TLS.Profiles) != 1 {
		t.Fatalf("the fixture's TLS server profile: %v", err)
	}
	tlsKey := tls.System.TLS.Profiles[0].Key
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(tlsKey))
	quoted, _ := json.Marshal(tlsKey)
	restored = bytes.ReplaceAll(restored, []byte(`"`+redact.Marker+hex.EncodeToString(mac.Sum(nil))+`"`), quoted)
	if bytes.Contains(got, []byte(tlsKey[:40])) || !bytes.Equal(restored, running) {
		t.Errorf("beside its five secrets, the snapshot on the server is not the switch's running configuration")
	}
	if st := l.status(); !strings.Contains(st, rel) || !strings.Contains(st, "redacted values: 5") || !strings.HasSuffix(st, "; 0 pending") {
		t.Errorf("status %q: want it to name %s, say redacted values: 5, and 0 pending", st, rel)
	}
}

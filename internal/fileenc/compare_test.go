package fileenc_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/coffertest"
)

// TestCompareWithSops times the coffer and sops binaries on the same files
// in the same run (docs/benchmarks.md): encrypt and decrypt a 10,000-value
// YAML file and a 5 MB JSON file, alternating the two tools. It measures,
// it does not assert: run it with
//
//	COFFER_BENCH_SOPS=1 go test -run TestCompareWithSops -v -timeout 60m ./internal/fileenc/
//
// COFFER_BENCH_RUNS sets the runs per cell (default 5); a cell stops
// early once it has used two minutes.
func TestCompareWithSops(t *testing.T) {
	if os.Getenv("COFFER_BENCH_SOPS") == "" {
		t.Skip("set COFFER_BENCH_SOPS=1 to time coffer against sops")
	}
	sops := sopsBin(t)
	coffer := coffertest.Binary(t)
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("COFFER_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	k := loadTestKey(t, 1)
	dir := t.TempDir()
	files := []struct{ name, plain string }{
		{"values10k.yaml", benchYAML()},
		{"users5mb.json", benchJSON()},
	}
	env := append(os.Environ(), "SOPS_AGE_KEY_FILE="+k.path, "SOPS_DISABLE_VERSION_CHECK=1")
	type tool struct {
		name    string
		encrypt func(in string) []string
		decrypt func(in string) []string
	}
	tools := []tool{
		{"coffer", func(in string) []string { return []string{coffer, "file", "encrypt", "--age", k.recipient, in} },
			func(in string) []string { return []string{coffer, "file", "decrypt", in} }},
		{"sops", func(in string) []string { return []string{sops, "encrypt", "--age", k.recipient, in} },
			func(in string) []string { return []string{sops, "decrypt", in} }},
	}
	run := func(argv []string) (time.Duration, time.Duration, []byte) {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = env
		c.Dir = dir
		var out strings.Builder
		c.Stdout = &out
		var errb strings.Builder
		c.Stderr = &errb
		start := time.Now()
		if err := c.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", argv[:3], err, errb.String())
		}
		wall := time.Since(start)
		return wall, c.ProcessState.UserTime() + c.ProcessState.SystemTime(), []byte(out.String())
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n| file | operation | coffer wall | sops wall | wall ratio | coffer CPU | sops CPU | CPU ratio | runs |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range files {
		in := writeFile(t, dir, f.name, []byte(f.plain))
		// Each tool decrypts a file it encrypted itself.
		encrypted := map[string]string{}
		for _, tl := range tools {
			_, _, out := run(tl.encrypt(in))
			encrypted[tl.name] = writeFile(t, dir, tl.name+".enc"+filepath.Ext(f.name), out)
		}
		for _, op := range []string{"encrypt", "decrypt"} {
			wall := map[string][]time.Duration{}
			cpu := map[string][]time.Duration{}
			spent := map[string]time.Duration{}
			for i := 0; i < runs; i++ {
				for _, tl := range tools {
					if i > 0 && spent[tl.name] > 2*time.Minute {
						continue
					}
					argv := tl.encrypt(in)
					if op == "decrypt" {
						argv = tl.decrypt(encrypted[tl.name])
					}
					w, c, _ := run(argv)
					wall[tl.name] = append(wall[tl.name], w)
					cpu[tl.name] = append(cpu[tl.name], c)
					spent[tl.name] += w
				}
			}
			cw, sw := median(wall["coffer"]), median(wall["sops"])
			cc, sc := median(cpu["coffer"]), median(cpu["sops"])
			fmt.Fprintf(&report, "| %s | %s | %v | %v | %.1fx | %v | %v | %.1fx | %d/%d |\n", f.name, op,
				cw.Round(time.Millisecond), sw.Round(time.Millisecond), float64(sw)/float64(cw),
				cc.Round(time.Millisecond), sc.Round(time.Millisecond), float64(sc)/float64(cc),
				len(wall["coffer"]), len(wall["sops"]))
		}
	}
	t.Log(report.String())
}

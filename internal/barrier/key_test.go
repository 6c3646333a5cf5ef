package barrier_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/barrier"
)

func TestKeyFromBytes(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		if _, err := barrier.KeyFromBytes(make([]byte, n)); !errors.Is(err, barrier.ErrInvalidKey) {
			t.Errorf("KeyFromBytes(%d bytes) = %v, want ErrInvalidKey", n, err)
		}
	}
	src := bytes.Repeat([]byte{7}, barrier.KeySize)
	k, err := barrier.KeyFromBytes(src)
	if err != nil {
		t.Fatal(err)
	}
	src[0] = 8 // the Key holds a copy
	if got := k.Bytes(); got[0] != 7 {
		t.Error("KeyFromBytes did not copy its input")
	}
	out := k.Bytes()
	out[1] = 9 // Bytes returns a copy
	if got := k.Bytes(); got[1] != 7 {
		t.Error("Bytes returned the Key's own slice")
	}
}

func TestKeyEqualAndZero(t *testing.T) {
	a, b := newKey(t), newKey(t)
	if len(a.Bytes()) != barrier.KeySize {
		t.Fatalf("NewKey gave %d bytes", len(a.Bytes()))
	}
	if a.Equal(b) || bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two NewKey results are equal")
	}
	a2, err := barrier.KeyFromBytes(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Equal(a2) || !a2.Equal(a) {
		t.Error("Equal(same bytes) = false")
	}
	if (barrier.Key{}).Equal(barrier.Key{}) {
		t.Error("zero Keys are Equal")
	}
	a2.Zero()
	if a2.Bytes() != nil || a2.Equal(a) || a.Equal(a2) {
		t.Error("a zeroed Key still holds or equals a key")
	}
	if reflect.TypeFor[barrier.Key]().Comparable() {
		t.Error("Key is comparable with ==")
	}
}

func TestKeyIsRedacted(t *testing.T) {
	k := newKey(t)
	raw := k.Bytes()
	leaks := []string{
		hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw),
		fmt.Sprint(raw), fmt.Sprintf("%v", raw[:8]), fmt.Sprintf("%d", raw[:4]), string(raw[:8]),
	}
	type wrapper struct {
		Name string
		Key  barrier.Key
		Ptr  *barrier.Key
	}
	w := wrapper{"w", k, &k}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, w), fmt.Sprintf(verb, []barrier.Key{k}))
	}
	outputs = append(outputs, fmt.Sprint(k), fmt.Sprintln(k, &k), k.String(), k.GoString(), fmt.Sprint(map[string]barrier.Key{"k": k}))
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))
	if want := `{"Name":"w","Key":"[REDACTED]","Ptr":"[REDACTED]"}`; string(js) != want {
		t.Errorf("json.Marshal = %s, want %s", js, want)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "key", k, "ptr", &k, "w", w)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "key", k, slog.Any("ptr", &k), "w", w)
	outputs = append(outputs, logs.String())
	for _, out := range outputs {
		for _, leak := range leaks {
			if strings.Contains(out, leak) {
				t.Errorf("output %q contains key bytes", out)
			}
		}
	}
	if got := fmt.Sprintf("%x", k); got != "[REDACTED]" {
		t.Errorf(`Sprintf("%%x", key) = %q, want [REDACTED]`, got)
	}
	if n := strings.Count(logs.String(), "[REDACTED]"); n < 6 {
		t.Errorf("slog output redacted %d times, want at least 6:\n%s", n, logs.String())
	}
}

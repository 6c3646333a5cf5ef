package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// serviceAccountTokenPath is where a pod finds its service account token.
const serviceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func newLoginCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var method, mount, field string
	var noStore bool
	cmd := &cobra.Command{
		Use:   "login [TOKEN | -method=userpass username=U [password=P] | -method=approle role_id=R secret_id=S]",
		Short: "Authenticate and store the token in ~/" + tokenFile,
		Long: `Authenticate to the server and save the resulting token in ~/` + tokenFile + `
(mode 0600), where every later command finds it.

  coffer login TOKEN                          check a token and store it
  coffer login -method=userpass username=alice  (password read from stdin)
  coffer login -method=approle role_id=... secret_id=...
  coffer login -method=kubernetes role=app   (in a pod: the service account token)

-path chooses the auth mount when it is not at the method's name.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			var resp *Response
			switch method {
			case "token", "":
				tok := ""
				if len(args) == 1 && !strings.Contains(args[0], "=") {
					tok = args[0]
				} else if len(args) == 0 {
					tok, err = promptSecret(env, "Token (will be hidden if typed on a terminal): ", true)
					if err != nil {
						return err
					}
				} else {
					return usagef("token login takes one TOKEN argument")
				}
				c.token = tok
				resp, err = c.Do(cmd.Context(), http.MethodGet, "auth/token/lookup-self", nil)
				if err != nil {
					return err
				}
				d := resp.Data()
				resp.Body["auth"] = map[string]any{
					"client_token": tok, "accessor": d["accessor"], "policies": d["policies"],
					"token_policies": d["policies"], "lease_duration": d["ttl"], "renewable": d["renewable"],
					"metadata": d["meta"],
				}
				resp.Body["data"] = nil
			case "userpass":
				kv, err := parseKVArgs(env, args)
				if err != nil {
					return err
				}
				for k := range kv {
					if k != "username" && k != "password" {
						return usagef("userpass login takes username=NAME and password=PASSWORD, not %q", k)
					}
				}
				user, _ := kv["username"].(string)
				if user == "" {
					return usagef("userpass login needs username=NAME")
				}
				if user == "." || user == ".." || strings.ContainsAny(user, "/?#%\\") {
					return usagef("invalid user name %q", user)
				}
				pw, _ := kv["password"].(string)
				if pw == "" {
					if pw, err = promptSecret(env, "Password (will be hidden if typed on a terminal): ", false); err != nil {
						return err
					}
				}
				if mount == "" {
					mount = "userpass"
				}
				resp, err = c.Do(cmd.Context(), http.MethodPost, "auth/"+strings.Trim(mount, "/")+"/login/"+user, map[string]any{"password": pw})
				if err != nil {
					return err
				}
			case "approle":
				kv, err := parseKVArgs(env, args)
				if err != nil {
					return err
				}
				if kv["role_id"] == nil {
					return usagef("approle login needs role_id=ID (and secret_id=ID unless the role does not bind one)")
				}
				if mount == "" {
					mount = "approle"
				}
				resp, err = c.Do(cmd.Context(), http.MethodPost, "auth/"+strings.Trim(mount, "/")+"/login", kv)
				if err != nil {
					return err
				}
			case "kubernetes":
				kv, err := parseKVArgs(env, args)
				if err != nil {
					return err
				}
				role, _ := kv["role"].(string)
				if role == "" {
					return usagef("kubernetes login needs role=NAME (and jwt=@FILE, default %s)", serviceAccountTokenPath)
				}
				for k := range kv {
					if k != "role" && k != "jwt" {
						return usagef("kubernetes login takes role=NAME and jwt=TOKEN|@FILE, not %q", k)
					}
				}
				if kv["jwt"] == nil {
					raw, err := os.ReadFile(serviceAccountTokenPath)
					if err != nil {
						return fmt.Errorf("read the service account token (give jwt=@FILE outside a pod): %w", err)
					}
					kv["jwt"] = strings.TrimSpace(string(raw))
				}
				if mount == "" {
					mount = "kubernetes"
				}
				resp, err = c.Do(cmd.Context(), http.MethodPost, "auth/"+strings.Trim(mount, "/")+"/login", kv)
				if err != nil {
					return err
				}
			default:
				return usagef("unknown -method %q (want token, userpass, approle or kubernetes)", method)
			}
			a, _ := resp.Body["auth"].(map[string]any)
			tok, _ := a["client_token"].(string)
			if tok == "" {
				return errors.New("the server answered without a token")
			}
			if !noStore {
				if err := storeToken(env, tok); err != nil {
					return err
				}
			}
			if field != "" || format != "table" {
				return printSecret(env, format, field, resp)
			}
			fmt.Fprintln(env.Stdout, "Success! You are now authenticated. The token information displayed below")
			if noStore {
				fmt.Fprintln(env.Stdout, "was not stored: set COFFER_TOKEN to use it.")
			} else {
				fmt.Fprintf(env.Stdout, "is stored in ~/%s; later commands use it automatically.\n", tokenFile)
			}
			fmt.Fprintln(env.Stdout)
			return printSecret(env, format, "", resp)
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.StringVar(&method, "method", "token", "token, userpass, approle or kubernetes")
	fl.StringVar(&mount, "path", "", "auth mount path (default: the method name)")
	fl.BoolVar(&noStore, "no-store", false, "do not store the token")
	fl.StringVar(&field, "field", "", "print only this field (e.g. token)")
	return cmd
}

// promptSecret reads a secret: without echo when standard input is a
// terminal, else the first line of standard input. Only the line ending is
// removed, unless trim asks for surrounding spaces to go too (tokens; a
// password may begin or end with a space).
func promptSecret(env *Env, prompt string, trim bool) (string, error) {
	fmt.Fprint(env.Stderr, prompt)
	var line string
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read from the terminal: %w", err)
		}
		line = string(b)
	} else {
		l, err := bufio.NewReader(env.Stdin).ReadString('\n')
		fmt.Fprintln(env.Stderr)
		if l == "" && err != nil {
			return "", errors.New("nothing read from standard input")
		}
		line = l
	}
	line = strings.TrimRight(line, "\r\n")
	if trim {
		line = strings.TrimSpace(line)
	}
	if line == "" {
		return "", usagef("empty input")
	}
	return line, nil
}

// storeToken writes the token helper file with mode 0600.
func storeToken(env *Env, tok string) error {
	if env.HomeDir == nil {
		return errors.New("no home directory to store the token in")
	}
	home, err := env.HomeDir()
	if err != nil {
		return fmt.Errorf("find home directory: %w", err)
	}
	p := filepath.Join(home, tokenFile)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("store token: %w", err)
	}
	if _, err := f.WriteString(tok); err != nil {
		f.Close()
		return fmt.Errorf("store token: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchboard-gw/switchboard/store"
)

// secretsFlags say which keys seal secrets at rest. A key is read from a
// file (--secrets-key-file) or from the environment (SWITCHBOARD_SECRETS_KEY,
// never a flag: flags show in process lists).
type secretsFlags struct {
	keyFile   string
	readFiles []string
}

func (f *secretsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.keyFile, "secrets-key-file", "",
		"file holding the key that seals access keys and signing secrets at rest (base64 of 32 bytes: switchboard secrets generate-key); "+
			"or the key itself in $SWITCHBOARD_SECRETS_KEY (default: secrets in clear)")
	fl.StringSliceVar(&f.readFiles, "secrets-read-key-file", nil,
		"file holding a further key that opens secrets sealed with it and never seals, for a rotation (repeatable; also $SWITCHBOARD_SECRETS_READ_KEY, comma-separated)")
}

// keys reads the keys the flags and the environment name.
func (f *secretsFlags) keys() (store.SecretsKeys, error) {
	var out store.SecretsKeys
	read := func(source, text string) (store.SecretsKey, error) {
		k, err := store.ParseSecretsKey(text)
		if err != nil {
			return k, fmt.Errorf("%s: not a secrets key: it is the base64 of 32 random bytes, as `switchboard secrets generate-key` or `openssl rand -base64 32` print", source)
		}
		return k, nil
	}
	fromFile := func(flag, path string) (store.SecretsKey, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return store.SecretsKey{}, fmt.Errorf("%s: %w", flag, err)
		}
		return read(flag+" "+path, string(b))
	}
	envKey := env("SECRETS_KEY", "")
	switch {
	case f.keyFile != "" && envKey != "":
		return out, errors.New("--secrets-key-file and SWITCHBOARD_SECRETS_KEY both give the secrets key: keep one")
	case f.keyFile != "":
		k, err := fromFile("--secrets-key-file", f.keyFile)
		if err != nil {
			return out, err
		}
		out.Current = &k
	case envKey != "":
		k, err := read("SWITCHBOARD_SECRETS_KEY", envKey)
		if err != nil {
			return out, err
		}
		out.Current = &k
	}
	for _, p := range f.readFiles {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := fromFile("--secrets-read-key-file", p)
		if err != nil {
			return out, err
		}
		out.Old = append(out.Old, k)
	}
	for _, text := range envList("SECRETS_READ_KEY") {
		k, err := read("SWITCHBOARD_SECRETS_READ_KEY", text)
		if err != nil {
			return out, err
		}
		out.Old = append(out.Old, k)
	}
	return out, nil
}

// secretsAdvice follows an error that says a sealed secret cannot be
// opened.
const secretsAdvice = "the store's secrets are sealed with a key this command was not given: pass the key they were sealed with " +
	"(--secrets-key-file FILE, or SWITCHBOARD_SECRETS_KEY); during a rotation, the previous key too (--secrets-read-key-file FILE)"

// explainSecrets adds secretsAdvice to an error about a sealed secret.
func explainSecrets(err error) error {
	if errors.Is(err, store.ErrSecretsKey) {
		return fmt.Errorf("%w\n%s", err, secretsAdvice)
	}
	return err
}

func secretsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Keys that seal secrets at rest"}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate-key",
		Short: "Print a new key for --secrets-key-file (the base64 of 32 random bytes), offline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), store.NewSecretsKey().Encode())
			return err
		},
	})
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Settings files for switchboard serve --config"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a settings file without starting anything: unknown keys, wrong types and refused values, each with its line",
		Long: "Reads FILE as switchboard serve --config would and runs serve's own checks on the result, the environment aside:\n" +
			"a key that is no serve flag, a value of the wrong type, or one serve would refuse is reported as FILE:LINE: key: problem.\n" +
			"Files named by the settings (--secrets-key-file) are read, so run it where the node runs.",
		Example: "  switchboard config check /etc/switchboard/switchboard.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := checkConfigFile(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d settings\n", args[0], n)
			return err
		},
	})
	return cmd
}

// checkConfigFile validates the settings file at path against the flags of
// switchboard serve, as serve would read it with an empty environment, and
// returns how many settings it gives.
func checkConfigFile(path string) (int, error) {
	file, err := readConfigFile(path)
	if err != nil {
		return 0, err
	}
	cmd, f := newServeCmd()
	noEnv := func(string) (string, bool) { return "", false }
	if err := applySettings(cmd.Flags(), file, noEnv); err != nil {
		return 0, err
	}
	if _, err := f.config(); err != nil {
		return 0, file.locate(err)
	}
	return len(file.entries), nil
}

// Package cli holds what the tlogd and tlogctl commands share: subcommand
// flag sets with help, usage errors, settings from the environment and a
// config file, and a progress bar.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// UsageError marks errors in the command line; commands exit with code 2.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Sprintf(format, args...)}
}

// Command is a subcommand's flag set with its help text.
type Command struct {
	*flag.FlagSet
	prog, name, args, synopsis string
	// Args holds the positional arguments after Parse.
	Args []string
	// fromEnv names the flags ApplyEnvAndConfig set.
	fromEnv map[string]bool
}

// New returns the command "prog name"; args describes its positional
// arguments for the usage line ("" for none).
func New(prog, name, args, synopsis string) *Command {
	fs := flag.NewFlagSet(prog+" "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse reports errors and help itself
	return &Command{FlagSet: fs, prog: prog, name: name, args: args, synopsis: synopsis}
}

// Usage writes the command's help.
func (c *Command) Usage(w io.Writer) {
	line := c.prog + " " + c.name + " [flags]"
	if c.args != "" {
		line += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", line, c.synopsis)
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// Parse parses args, flags and positional arguments in any order (after
// "--" everything is positional), printing help to stdout for -h/-help
// (then it returns flag.ErrHelp). It refuses fewer than minArgs or more
// than maxArgs positional arguments (maxArgs < 0: no limit).
func (c *Command) Parse(args []string, stdout io.Writer, minArgs, maxArgs int) error {
	var rest []string
	if i := indexOf(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	c.Args = nil
	for {
		if err := c.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.Usage(stdout)
				return err
			}
			return Usagef("%v (run with -help for usage)", err)
		}
		args = c.FlagSet.Args()
		if len(args) == 0 {
			break
		}
		c.Args = append(c.Args, args[0])
		args = args[1:]
	}
	c.Args = append(c.Args, rest...)
	switch {
	case len(c.Args) < minArgs:
		return Usagef("missing arguments: want %s (run with -help for usage)", c.args)
	case maxArgs >= 0 && len(c.Args) > maxArgs:
		return Usagef("unexpected argument %q (run with -help for usage)", c.Args[maxArgs])
	}
	return nil
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

// OnCommandLine reports whether the flag was given on the command line, as
// opposed to left at its default or set from the environment or a file.
func (c *Command) OnCommandLine(name string) bool {
	found := false
	c.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found && !c.fromEnv[name]
}

// ApplyEnvAndConfig gives every flag not set on the command line its value
// from the environment (prefix + the flag name in capitals, dashes as
// underscores) or, failing that, from the YAML config file (flag name →
// value, or a list of values for a repeatable flag) when configFile is not
// empty.
func (c *Command) ApplyEnvAndConfig(prefix, configFile string) error {
	set := map[string]bool{}
	c.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var file map[string]any
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("read -config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return Usagef("-config %s: %v", configFile, err)
		}
		for name := range file {
			if c.Lookup(name) == nil || name == "config" {
				return Usagef("-config %s: unknown setting %q (settings are flag names)", configFile, name)
			}
		}
	}
	var err error
	c.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || f.Name == "config" {
			return
		}
		env := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if ok {
			if e := c.Set(f.Name, v); e != nil {
				err = Usagef("%s=%q: %v", env, v, e)
			}
		} else if fv, inFile := file[f.Name]; inFile {
			ok = true
			// A list sets a repeatable flag once per item.
			vals, isList := fv.([]any)
			if !isList {
				vals = []any{fv}
			}
			for _, v := range vals {
				if e := c.Set(f.Name, fmt.Sprint(v)); e != nil {
					err = Usagef("-config %s: %s: %v", configFile, f.Name, e)
					break
				}
			}
		}
		if ok {
			if c.fromEnv == nil {
				c.fromEnv = map[string]bool{}
			}
			c.fromEnv[f.Name] = true
		}
	})
	return err
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/config"
)

// settings is a command's configuration together with where its values
// came from, so that messages can say why Gatehouse looked where it did.
type settings struct {
	*config.Config
	given  map[string]bool // flags given on the command line
	getenv func(string) string
}

// origin says where the value of a setting came from, for messages such as
// "Gatehouse looked in /srv/x (set by GATEHOUSE_DATA_DIR)".
func (s *settings) origin(flagName, envVar string) string {
	switch {
	case s.given[flagName]:
		return "set with --" + flagName
	case s.getenv(envVar) != "":
		return "set by " + envVar
	}
	return "the default"
}

// locationFlags are the shared settings that say where an index is: the
// only ones a command other than serve shows in its own help.
var locationFlags = []string{"data-dir", "database-url", "secret-key-file", "secret-key", "base-url"}

// loadConfig parses the shared server settings plus the command's own flags
// (extra). name is the command as typed after "gatehouse", e.g. "user create".
func loadConfig(e env, name, usage string, args []string, extra func(fs *flag.FlagSet)) (*settings, error) {
	cfg, _, err := loadConfigArg(e, name, usage, args, "", extra)
	return cfg, err
}

// loadConfigArg is loadConfig for a command that takes one argument
// besides its flags (backup DEST, restore SRC), before, after or between
// them; what names it for the message when it is missing ("" for a
// command that takes none).
func loadConfigArg(e env, name, usage string, args []string, what string, extra func(fs *flag.FlagSet)) (*settings, string, error) {
	fs := flag.NewFlagSet("gatehouse "+name, flag.ContinueOnError)
	build := config.ServeFlags(fs, e.getenv)
	if extra != nil {
		extra(fs)
	}
	var arg string
	if what != "" {
		// The flag package stops at the first argument that is not a
		// flag: set it aside and go on with the flags after it.
		// parseFlags then parses the flags alone again, and reports any
		// mistake in them.
		fs.SetOutput(io.Discard)
		fs.Usage = func() {}
		var flags, extraArgs []string
		for rest := args; len(rest) > 0; {
			if err := fs.Parse(rest); err != nil {
				flags = append(flags, rest...)
				break
			}
			flags = append(flags, rest[:len(rest)-fs.NArg()]...)
			if fs.NArg() == 0 {
				break
			}
			extraArgs = append(extraArgs, fs.Arg(0))
			rest = fs.Args()[1:]
		}
		if len(extraArgs) > 1 {
			return nil, "", usageErr(name, "Unexpected argument %q: give one %s", extraArgs[1], what)
		}
		if len(extraArgs) == 1 {
			arg = extraArgs[0]
		}
		args = flags
	}
	// serve has no flags of its own: its help is the list of settings.
	if err := parseFlags(fs, e, name, args, usage, name == "serve"); err != nil {
		return nil, "", err
	}
	if what != "" && arg == "" {
		return nil, "", usageErr(name, "No %s given", what)
	}
	cfg, err := build()
	if err != nil {
		return nil, "", usageErr(name, "%s", err)
	}
	s := &settings{Config: cfg, given: map[string]bool{}, getenv: e.getenv}
	fs.Visit(func(f *flag.Flag) { s.given[f.Name] = true })
	return s, arg, nil
}

// parseFlags parses args. --help prints the command's help on stdout and
// returns flag.ErrHelp (which callers turn into success with helpOK); a
// mistake returns a usage error and writes nothing to stdout, so that
// `TOKEN=$(gatehouse …)` captures nothing but a result.
func parseFlags(fs *flag.FlagSet, e env, name string, args []string, usage string, allSettings bool) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(e.stdout, fs, strings.ReplaceAll(usage, "<base-url>", baseURLFromEnv(e.getenv)), allSettings)
		return err
	}
	if err != nil {
		return usageErr(name, "%s", flagMessage(err))
	}
	if fs.NArg() > 0 {
		return usageErr(name, "Unexpected argument %q (every value goes with a flag, such as --username NAME)", fs.Arg(0))
	}
	return nil
}

// flagMessage rewrites the flag package's messages with the "--name"
// spelling the help and the docs use.
func flagMessage(err error) string {
	msg := err.Error()
	for _, p := range []struct{ from, to string }{
		{"flag provided but not defined: -", "there is no flag --"},
		{"flag needs an argument: -", "a value is missing after --"},
		{" for flag -", " for --"},
	} {
		msg = strings.Replace(msg, p.from, p.to, 1)
	}
	return msg
}

// helpOK turns --help into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// printHelp writes a command's usage, then its own flags, then the shared
// server settings: all of them for serve, and for the other commands only
// those that say where the index is, since the rest do not change what
// they do.
func printHelp(w io.Writer, fs *flag.FlagSet, usage string, allSettings bool) {
	fmt.Fprintln(w, usage)
	shared := map[string]bool{}
	for _, s := range config.Settings() {
		shared[s.Flag] = true
	}
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !shared[f.Name] {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		for _, f := range own {
			printFlag(w, f)
		}
	}
	if fs.Lookup("data-dir") == nil {
		return // a command that opens no index, such as version
	}
	if allSettings {
		fmt.Fprintln(w, "\nServer settings (every command takes them; a flag wins over its environment\nvariable):")
		fs.VisitAll(func(f *flag.Flag) {
			if shared[f.Name] {
				printFlag(w, f)
			}
		})
		fmt.Fprintln(w, "\nEach is described in docs/configuration.md.")
		return
	}
	fmt.Fprintln(w, "\nWhere the index is (the same settings as 'gatehouse serve'; a flag wins over\nits environment variable):")
	for _, name := range locationFlags {
		printFlag(w, fs.Lookup(name))
	}
	fmt.Fprintln(w, "\nThe other server settings are accepted too, so one environment serves every\ncommand: see 'gatehouse serve --help' or docs/configuration.md.")
}

// printFlag writes one flag as "  --name VALUE" and its help, wrapped.
func printFlag(w io.Writer, f *flag.Flag) {
	value, help := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if value != "" {
		line += " " + value
	}
	if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(help, "(default") {
		help += " (default " + f.DefValue + ")"
	}
	fmt.Fprintln(w, line)
	fmt.Fprint(w, wrap(help, "      ", 80))
}

// wrap breaks text into lines of at most width columns, each indented.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
	return b.String()
}

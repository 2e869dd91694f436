/*
 * options_load.c - the configuration load of a process started from the
 * command line (config_load), and the usage text.
 *
 * The command line is parsed first, since it names the file (-c) or only
 * asks for help; its values wait.  Then the defaults already in the
 * config are overlaid by 1) the file, 2) the PROMPTMQ_* environment and
 * 3) the waiting flag values, so that a flag beats a variable, which
 * beats the file.  Nothing stops at the first error: the user sees every
 * problem of a configuration at once.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options_internal.h"

#define ENV_PREFIX	"PROMPTMQ_"
#define ENV_CONFIG	"PROMPTMQ_CONFIG"

/* A flag's value, applied after the file and the environment. */
struct flag_value {
	enum option_id	 id;
	const char	*value;
	char		 flag[OPTION_NAME_MAX];	/* as written, for messages */
};

struct command_line {
	struct config_messages	*msgs;
	struct flag_value	*values;	/* one per argument at most */
	size_t			 nvalues;
	const char		*file;		/* -c FILE */
	int			 bare_bool;	/* argv index of --bool alone */
	int			 failed;
};

static void
argv_error(struct command_line *cl, const char *fmt, ...) LOG_PRINTF(2, 3);

static void
argv_error(struct command_line *cl, const char *fmt, ...)
{
	char	problem[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	option_error(cl->msgs, "%s", problem);
	cl->failed = 1;
}

static void
argv_value(struct command_line *cl, enum option_id id, const char *value,
    const char *flag)
{
	struct flag_value	*fv = &cl->values[cl->nvalues++];

	fv->id = id;
	fv->value = value;
	snprintf(fv->flag, sizeof(fv->flag), "%s", flag);
}

/* -c FILE, --config FILE: an empty name would read a directory. */
static void
argv_file(struct command_line *cl, const char *value, const char *flag)
{
	if (*value == '\0')
		argv_error(cl, "%s: needs a file name", flag);
	else
		cl->file = value;
}

static int
word_is(const char *word, size_t len, const char *name)
{
	return len == strlen(name) && strncmp(word, name, len) == 0;
}

/* "group-leaf" of len bytes -> id, or -1. */
static int
option_by_flag(const char *name, size_t len)
{
	size_t	i, glen;

	for (i = 0; i < OPT__COUNT; i++) {
		glen = strlen(option_table[i].group);
		if (len > glen &&
		    strncmp(name, option_table[i].group, glen) == 0 &&
		    name[glen] == '-' &&
		    word_is(name + glen + 1, len - glen - 1,
			option_table[i].leaf))
			return (int)i;
	}
	return -1;
}

static const struct option_alias *
alias_by_flag(const char *name, size_t len)
{
	size_t	i;

	for (i = 0; i < option_alias_count; i++)
		if (option_aliases[i].flag != NULL &&
		    word_is(name, len, option_aliases[i].flag))
			return &option_aliases[i];
	return NULL;
}

static const struct option_alias *
alias_by_letter(char letter)
{
	size_t	i;

	for (i = 0; i < option_alias_count; i++)
		if (option_aliases[i].letter != 0 &&
		    option_aliases[i].letter == letter)
			return &option_aliases[i];
	return NULL;
}

static const char *
flag_suggestion(const char *flag, char *buf, size_t len)
{
	static const char *const commands[] = { "--config", "--help",
		"--version" };
	struct option_suggest	 suggest;
	char			 name[OPTION_NAME_MAX];
	const char		*found;
	size_t			 i;

	option_suggest_init(&suggest, flag, strlen(flag));
	for (i = 0; i < OPT__COUNT; i++)
		option_suggest_try(&suggest,
		    option_flag_name((enum option_id)i, name, sizeof(name)));
	for (i = 0; i < option_alias_count; i++) {
		if (option_aliases[i].flag == NULL)
			continue;
		snprintf(name, sizeof(name), "--%s", option_aliases[i].flag);
		option_suggest_try(&suggest, name);
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		option_suggest_try(&suggest, commands[i]);
	found = option_suggest_result(&suggest);
	snprintf(buf, len, "%s%s%s", found ? " (did you mean " : "",
	    found ? found : "", found ? "?)" : "");
	return buf;
}

/* --NAME, --NAME=VALUE or --NAME VALUE at argv[i]; returns the last used. */
static int
parse_long(struct config *cfg, struct command_line *cl, int argc,
    char *const argv[], int i)
{
	const char			*name = argv[i] + 2, *eq, *value;
	const struct option_alias	*alias;
	char				 flag[OPTION_NAME_MAX], hint[128];
	size_t				 len;
	int				 id;

	eq = strchr(name, '=');
	value = eq ? eq + 1 : NULL;
	len = eq ? (size_t)(eq - name) : strlen(name);
	snprintf(flag, sizeof(flag), "--%.*s", (int)len, name);
	if (word_is(name, len, "help") || word_is(name, len, "version")) {
		if (value != NULL)
			argv_error(cl, "%s: takes no value", flag);
		else if (name[0] == 'h')
			cfg->show_help = 1;
		else
			cfg->show_version = 1;
		return i;
	}
	if ((alias = alias_by_flag(name, len)) != NULL)
		id = (int)alias->id;
	else
		id = option_by_flag(name, len);
	if (id == -1 && !word_is(name, len, "config")) {
		argv_error(cl, "unknown flag '%s'%s", flag,
		    flag_suggestion(flag, hint, sizeof(hint)));
		/* Its value, likely next, would only add a second error. */
		if (value == NULL && i + 1 < argc && argv[i + 1][0] != '-')
			i++;
		return i;
	}
	if (value == NULL) {
		if (alias != NULL && alias->value != NULL)
			value = alias->value;
		else if (id != -1 && option_table[id].type == OPTION_BOOL) {
			value = "true";
			cl->bare_bool = i;
		}
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			argv_error(cl, "%s: needs a value", flag);
			return i;
		}
	} else if (alias != NULL && alias->value != NULL) {
		argv_error(cl, "%s: takes no value", flag);
		return i;
	}
	if (id == -1)
		argv_file(cl, value, flag);
	else
		argv_value(cl, (enum option_id)id, value, flag);
	return i;
}

/* -x, -xVALUE, -x VALUE, or several letters (-td); returns the last used. */
static int
parse_short(struct config *cfg, struct command_line *cl, int argc,
    char *const argv[], int i)
{
	const struct option_alias	*alias;
	const char			*p, *value;
	char				 flag[3] = "-";

	for (p = argv[i] + 1; *p != '\0'; p++) {
		flag[1] = *p;
		if (*p == 't' || *p == 'h' || *p == 'V') {
			if (*p == 't')
				cfg->check_only = 1;
			else if (*p == 'h')
				cfg->show_help = 1;
			else
				cfg->show_version = 1;
			continue;
		}
		alias = alias_by_letter(*p);
		if (*p != 'c' && alias == NULL) {
			argv_error(cl, "unknown flag '%s'", flag);
			return i;
		}
		if (alias != NULL && alias->value != NULL) {
			argv_value(cl, alias->id, alias->value, flag);
			continue;
		}
		/* The rest of the word is the value, or else the next one. */
		if (p[1] != '\0')
			value = p + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			argv_error(cl, "%s: needs a value", flag);
			return i;
		}
		if (alias == NULL)
			argv_file(cl, value, flag);
		else
			argv_value(cl, alias->id, value, flag);
		return i;
	}
	return i;
}

static void
parse_argv(struct config *cfg, struct command_line *cl, int argc,
    char *const argv[])
{
	const char	*arg;
	int		 i;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			while (++i < argc)
				argv_error(cl, "unexpected argument '%s'",
				    argv[i]);
		} else if (arg[0] == '-' && arg[1] == '-') {
			i = parse_long(cfg, cl, argc, argv, i);
		} else if (arg[0] == '-' && arg[1] != '\0') {
			i = parse_short(cfg, cl, argc, argv, i);
		} else if (i > 1 && cl->bare_bool == i - 1) {
			argv_error(cl, "unexpected argument '%s' (a boolean "
			    "flag takes its value as %s=%s)", arg, argv[i - 1],
			    arg);
		} else {
			argv_error(cl, "unexpected argument '%s'", arg);
		}
	}
}

static int
apply_flags(struct config *cfg, const struct command_line *cl,
    struct config_messages *msgs)
{
	char	err[512];
	size_t	i;
	int	failed = 0;

	for (i = 0; i < cl->nvalues; i++) {
		if (config_set(cfg, cl->values[i].id, cl->values[i].value,
			ORIGIN_FLAG, err, sizeof(err)) == -1) {
			option_error(msgs, "%s: %s", cl->values[i].flag, err);
			failed = 1;
		}
	}
	return failed ? -1 : 0;
}

/* The value of variable `name` in envp, or NULL. */
static const char *
env_lookup(char *const envp[], const char *name)
{
	size_t	len = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

/* PROMPTMQ_GROUP_LEAF of len bytes -> id, or -1. */
static int
option_by_env(const char *name, size_t len)
{
	char	env[OPTION_NAME_MAX];
	size_t	i;

	for (i = 0; i < OPT__COUNT; i++)
		if (word_is(name, len,
			option_env_name((enum option_id)i, env, sizeof(env))))
			return (int)i;
	return -1;
}

static void
env_unknown(struct config_messages *msgs, const char *name, size_t len)
{
	struct option_suggest	 suggest;
	char			 env[OPTION_NAME_MAX];
	const char		*found;
	size_t			 i;

	option_suggest_init(&suggest, name, len);
	for (i = 0; i < OPT__COUNT; i++)
		option_suggest_try(&suggest,
		    option_env_name((enum option_id)i, env, sizeof(env)));
	found = option_suggest_result(&suggest);
	option_warning(msgs, "%.*s: unknown variable, ignored%s%s%s", (int)len,
	    name, found ? " (did you mean " : "", found ? found : "",
	    found ? "?)" : "");
}

static int
load_environment(struct config *cfg, char *const envp[],
    struct config_messages *msgs)
{
	const char	*eq;
	char		 err[512];
	size_t		 len;
	int		 id, failed = 0;

	for (; *envp != NULL; envp++) {
		if (strncmp(*envp, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 ||
		    (eq = strchr(*envp, '=')) == NULL)
			continue;
		len = (size_t)(eq - *envp);
		if (word_is(*envp, len, ENV_CONFIG))
			continue;
		if ((id = option_by_env(*envp, len)) == -1) {
			env_unknown(msgs, *envp, len);
			continue;
		}
		if (config_set(cfg, (enum option_id)id, eq + 1, ORIGIN_ENV, err,
			sizeof(err)) == -1) {
			option_error(msgs, "%.*s: %s", (int)len, *envp, err);
			failed = 1;
		}
	}
	return failed ? -1 : 0;
}

int
config_load(struct config *cfg, int argc, char *const argv[],
    char *const envp[], const char *default_file,
    struct config_messages *msgs)
{
	struct config_messages	 early = { 0 };
	struct command_line	 cl = { &early, NULL, 0, NULL, 0, 0 };
	const char		*file;
	int			 failed, must_exist = 1;

	if (envp == NULL)
		envp = environ;
	if ((cl.values = calloc(argc > 0 ? (size_t)argc : 1,
		 sizeof(*cl.values))) == NULL) {
		option_error(msgs, "out of memory");
		return -1;
	}
	parse_argv(cfg, &cl, argc, argv);
	/* Help and version answer whatever else the command line holds. */
	if (cfg->show_help || cfg->show_version) {
		config_messages_free(&early);
		free(cl.values);
		return 0;
	}
	failed = cl.failed;
	if (option_messages_move(msgs, &early) == -1)
		failed = 1;

	if ((file = cl.file) == NULL &&
	    (file = env_lookup(envp, ENV_CONFIG)) != NULL && *file == '\0')
		file = NULL;
	if (file == NULL) {
		file = default_file;
		must_exist = 0;
	}
	if (file != NULL && option_file_load(cfg, file, must_exist, msgs) == -1)
		failed = 1;
	if (load_environment(cfg, envp, msgs) == -1)
		failed = 1;
	if (apply_flags(cfg, &cl, msgs) == -1)
		failed = 1;
	free(cl.values);
	if (config_finish(cfg, msgs) == -1)
		failed = 1;
	return failed ? -1 : 0;
}

/* Usage. */

#define USAGE_WIDTH	79
#define USAGE_INDENT	8

/* text from column `indent`, broken between words before USAGE_WIDTH. */
static void
print_wrapped(FILE *out, const char *text, int indent)
{
	const char	*p = text;
	size_t		 word;
	int		 col = indent;

	fprintf(out, "%*s", indent, "");
	while (*p != '\0') {
		word = strcspn(p, " ");
		if (col > indent && col + 1 + (int)word > USAGE_WIDTH) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, word, out);
		col += (int)word;
		p += word;
		p += strspn(p, " ");
	}
	fputc('\n', out);
}

/* Choices longer than this go into the help text, not the flag line. */
#define USAGE_CHOICES_INLINE 30

static const char *
usage_metavar(const struct option_def *o)
{
	switch (o->type) {
	case OPTION_BOOL:
		return "[=BOOL]";
	case OPTION_INT:
		return " N";
	case OPTION_SIZE:
		return " SIZE";
	case OPTION_DURATION:
		return " TIME";
	case OPTION_PATH:
		return " PATH";
	case OPTION_ENUM:
		return strlen(o->choices) > USAGE_CHOICES_INLINE ? " WORD" :
								    NULL;
	case OPTION_LIST:
		return " LIST";
	default:
		return " TEXT";
	}
}

static void
usage_option(FILE *out, const struct option_def *o)
{
	const char	*metavar = usage_metavar(o);
	char		 flag[OPTION_NAME_MAX], *help = NULL;
	size_t		 i;

	fprintf(out, "  %s", option_flag_name(o->id, flag, sizeof(flag)));
	if (metavar != NULL)
		fputs(metavar, out);
	else
		fprintf(out, " %s", o->choices);
	for (i = 0; i < option_alias_count; i++) {
		if (option_aliases[i].id != o->id)
			continue;
		if (option_aliases[i].flag != NULL)
			fprintf(out, ", --%s", option_aliases[i].flag);
		if (option_aliases[i].letter != 0)
			fprintf(out, ", -%c", option_aliases[i].letter);
	}
	fputc('\n', out);
	if (asprintf(&help, "%s%s%s (default: %s%s%s)", o->help,
		o->type == OPTION_ENUM && metavar != NULL ? " One of: " : "",
		o->type == OPTION_ENUM && metavar != NULL ? o->choices : "",
		o->def[0] ? "" : "\"", o->def, o->def[0] ? "" : "\"") == -1)
		help = NULL;
	print_wrapped(out, help ? help : o->help, USAGE_INDENT);
	free(help);
}

void
config_usage(FILE *out, const char *progname)
{
	const char	*group = NULL;
	char		 letters[16] = "";
	size_t		 i, n = 0;

	for (i = 0; i < option_alias_count && n + 4 < sizeof(letters); i++)
		if (option_aliases[i].letter != 0 &&
		    option_aliases[i].value != NULL)
			letters[n++] = option_aliases[i].letter;
	memcpy(letters + n, "htV", 4);
	fprintf(out,
	    "usage: %s [-%s] [-c FILE] [--GROUP-LEAF[=VALUE] ...]\n"
	    "\n"
	    "  -c FILE, --config FILE\n"
	    "        Read this configuration file (default: $" ENV_CONFIG
	    ", else the\n"
	    "        installed one).\n"
	    "  -t    Check the configuration and exit.\n"
	    "  -h, --help\n"
	    "        Show this help and exit.\n"
	    "  -V, --version\n"
	    "        Show the version and exit.\n"
	    "\n"
	    "Every option of the configuration file is also a flag "
	    "--GROUP-LEAF and an\n"
	    "environment variable " ENV_PREFIX "GROUP_LEAF; a flag wins over "
	    "a variable, which\n"
	    "wins over the file.  Sizes take units (B, KB, MB, GB, TB), "
	    "durations too\n"
	    "(ms, s, m, h).\n",
	    progname, letters);
	for (i = 0; i < OPT__COUNT; i++) {
		if (group == NULL ||
		    strcmp(group, option_table[i].group) != 0) {
			group = option_table[i].group;
			fprintf(out, "\n%s:\n", group);
		}
		usage_option(out, &option_table[i]);
	}
}

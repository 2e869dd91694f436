/*
 * options_doc.c - optdoc: the configuration reference, generated from the
 * option table so that it cannot drift from the code.
 *
 *	optdoc markdown		docs/configuration.md (`make docs`)
 *
 * Each option is first described in words (struct doc_row: its default,
 * range, flags, variable), then handed to an output format, a table of
 * functions; the promptmq.conf(5) man page is meant to be one more.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

#define DOC_FIELD 256

/* One option in words, whatever the output format. */
struct doc_row {
	const struct option_def	*def;
	char			 name[DOC_FIELD];	/* group.leaf */
	char			 range[DOC_FIELD];	/* "0 to 256", a|b */
	char			 flags[DOC_FIELD];	/* "--x-y, --y" */
	char			 env[DOC_FIELD];
	const char		*reload;		/* yes, restart only */
};

struct doc_format {
	const char	*name;
	void		(*begin)(FILE *);
	void		(*group)(FILE *, const char *group);
	void		(*option)(FILE *, const struct doc_row *);
	void		(*end)(FILE *);
};

/* A sentence on each group; a group missing here simply has none. */
static const struct {
	const char	*group;
	const char	*about;
} group_about[] = {
	{ "server", "The supervisor process: listeners, children, "
		    "privileges, daemon." },
	{ "mqtt", "Limits and features of the MQTT protocol offered to "
		  "clients." },
	{ "storage", "The durable state: the message log (WAL) and its "
		     "index." },
	{ "metrics", "The Prometheus metrics and health endpoint." },
	{ "log", "Where log lines go and what they look like." },
};

static void
doc_row_fill(const struct option_def *o, struct doc_row *row)
{
	char	lo[32], hi[32], flag[64];
	size_t	i, off;

	memset(row, 0, sizeof(*row));
	row->def = o;
	config_name(o->id, row->name, sizeof(row->name));
	option_env_name(o->id, row->env, sizeof(row->env));
	row->reload = o->reload == OPTION_RELOAD ? "yes" : "restart only";
	if (o->type == OPTION_INT || o->type == OPTION_SIZE ||
	    o->type == OPTION_DURATION)
		snprintf(row->range, sizeof(row->range), "%s to %s",
		    option_format_num(o->type, o->min, lo, sizeof(lo)),
		    option_format_num(o->type, o->max, hi, sizeof(hi)));
	else if (o->type == OPTION_ENUM)
		snprintf(row->range, sizeof(row->range), "%s", o->choices);
	off = (size_t)snprintf(row->flags, sizeof(row->flags), "%s",
	    option_flag_name(o->id, flag, sizeof(flag)));
	for (i = 0; i < option_alias_count && off < sizeof(row->flags); i++) {
		if (option_aliases[i].id != o->id)
			continue;
		if (option_aliases[i].flag != NULL)
			snprintf(flag, sizeof(flag), "--%s",
			    option_aliases[i].flag);
		else
			snprintf(flag, sizeof(flag), "-%c",
			    option_aliases[i].letter);
		off += (size_t)snprintf(row->flags + off,
		    sizeof(row->flags) - off, ", %s", flag);
	}
}

/* Markdown. */

/* Text for a table cell: a | would end the cell. */
static void
md_cell(FILE *out, const char *text)
{
	for (; *text != '\0'; text++) {
		if (*text == '|')
			fputc('\\', out);
		fputc(*text, out);
	}
}

/* Comma-separated words (or a|b choices) as `a`, `b`. */
static void
md_codes(FILE *out, const char *words, const char *separators)
{
	size_t	len;
	int	first = 1;

	while (*words != '\0') {
		len = strcspn(words, separators);
		fprintf(out, "%s`%.*s`", first ? "" : ", ", (int)len, words);
		first = 0;
		words += len;
		words += strspn(words, separators);
	}
}

static void
md_begin(FILE *out)
{
	size_t	i;

	fputs("# PromptMQ configuration\n"
	      "\n"
	      "<!-- Generated from common/options.def by `make docs`; "
	      "do not edit. -->\n"
	      "\n"
	      "Every setting of the broker is an option of the table below. "
	      "An option is read\n"
	      "from four places; a later one wins over an earlier one:\n"
	      "\n"
	      "1. its default;\n"
	      "2. the configuration file: the one named by `-c FILE`, else "
	      "by the variable\n"
	      "   `PROMPTMQ_CONFIG`, else the installed one (which may be "
	      "missing: the defaults\n"
	      "   then apply; a file named by `-c` or `PROMPTMQ_CONFIG` "
	      "must exist);\n"
	      "3. the environment variable `PROMPTMQ_GROUP_LEAF` "
	      "(`PROMPTMQ_STORAGE_WAL_SYNC`);\n"
	      "   an unknown `PROMPTMQ_*` variable is reported as a "
	      "warning and ignored;\n"
	      "4. the command-line flag `--GROUP-LEAF VALUE` or "
	      "`--GROUP-LEAF=VALUE`\n"
	      "   (`--storage-wal-sync interval`, `--log-level=debug`).\n"
	      "\n"
	      "`promptmqd -t` checks the configuration and exits. Every "
	      "problem found is\n"
	      "reported, not only the first, each with where it comes from: "
	      "`FILE:LINE:`,\n"
	      "the variable or the flag.\n"
	      "\n"
	      "## The file\n"
	      "\n"
	      "The file uses the [libconfig](https://hyperrealm.github.io/"
	      "libconfig/) syntax,\n"
	      "one group per part of the broker:\n"
	      "\n"
	      "```\n"
	      "server:  { bind = \"127.0.0.1:1883\"; workers = 0; };\n"
	      "mqtt:    { max-packet-size = \"256MB\"; allow-anonymous = "
	      "false; };\n"
	      "storage: { data-dir = \"/var/lib/promptmq\"; wal-sync = "
	      "\"always\"; };\n"
	      "log:     { level = \"info\"; target = \"stderr\"; };\n"
	      "```\n"
	      "\n"
	      "- An unknown group or option is an error (with a suggestion "
	      "when a known name\n"
	      "  is close), so a misspelt option never goes unnoticed.\n"
	      "- Values have the libconfig type of their option: `true` or "
	      "`false` for a\n"
	      "  bool, a plain number for an integer, a string for everything "
	      "else (a list may\n"
	      "  also be a libconfig list `[\"a\", \"b\"]`).\n"
	      "- Sizes and durations are strings with a unit "
	      "(`\"256MB\"`, `\"100ms\"`): a bare\n"
	      "  number is an error. libconfig reads integers in 32 bits and "
	      "would silently\n"
	      "  wrap larger ones; PromptMQ checks every integer against the "
	      "file text and\n"
	      "  refuses one out of range.\n"
	      "- `@include \"FILE\"` is read from the directory of the "
	      "including file.\n"
	      "\n"
	      "## Values\n"
	      "\n"
	      "| type | written as |\n"
	      "| --- | --- |\n"
	      "| bool | `true` or `false`; flags and variables also take "
	      "`yes`/`no`, `on`/`off`, `1`/`0`; a bool flag alone means "
	      "true (`--server-daemon`), `--server-daemon=false` sets false "
	      "|\n"
	      "| integer | a decimal number within the option's range |\n"
	      "| size | a number and a unit: `B`, `KB`, `MB`, `GB`, `TB` "
	      "(powers of 1024: `1KB` is 1024 bytes), also `KiB`, `MiB`, "
	      "`GiB`, `TiB`; any case |\n"
	      "| duration | a number and a unit: `ms`, `s`, `m`, `h` |\n"
	      "| string | any text |\n"
	      "| path | a file or directory; a relative one is taken from the "
	      "directory the broker was started in and made absolute at once "
	      "(the daemon later works from `/`) |\n"
	      "| choice | one of the listed words |\n"
	      "| list | words separated by commas (`\"a,b\"`); blanks around "
	      "them are dropped |\n"
	      "\n"
	      "## Derived values\n"
	      "\n"
	      "- `storage.wal-dir` left empty is `DATA-DIR/wal`.\n"
	      "- `server.pidfile` left empty means no pidfile, except for a "
	      "daemon (`-d`):\n"
	      "  `RUNTIME-DIR/promptmqd.pid`.\n"
	      "- `server.workers` 0 starts one worker per online CPU.\n"
	      "- `server.respawn-delay` may not be longer than "
	      "`server.respawn-delay-max`.\n"
	      "\n"
	      "## Reloading\n"
	      "\n"
	      "SIGHUP reads the configuration again. A configuration with "
	      "errors is refused\n"
	      "and the running one kept. Options marked *yes* under "
	      "\"reload\" change without\n"
	      "dropping a client; the others (*restart only*) need a restart "
	      "of the broker,\n"
	      "because MQTT connections cannot be moved to new workers.\n"
	      "\n"
	      "## Command line\n"
	      "\n"
	      "| flag | meaning |\n"
	      "| --- | --- |\n"
	      "| `-c FILE`, `--config FILE` | read this configuration file |\n"
	      "| `-t` | check the configuration and exit |\n"
	      "| `-h`, `--help` | show the flags and exit |\n"
	      "| `-V`, `--version` | show the version and exit |\n",
	    out);
	for (i = 0; i < option_alias_count; i++) {
		const struct option_alias	*a = &option_aliases[i];
		char				 flag[64];

		option_flag_name(a->id, flag, sizeof(flag));
		if (a->flag != NULL)
			fprintf(out, "| `--%s` | `%s` |\n", a->flag, flag);
		else
			fprintf(out, "| `-%c` | `%s=%s` |\n", a->letter, flag,
			    a->value);
	}
}

static void
md_group(FILE *out, const char *group)
{
	size_t	i;

	fprintf(out, "\n## %s\n\n", group);
	for (i = 0; i < sizeof(group_about) / sizeof(group_about[0]); i++)
		if (strcmp(group_about[i].group, group) == 0)
			fprintf(out, "%s\n\n", group_about[i].about);
	fputs("| option | type | default | range | reload | flag "
	      "| environment | description |\n"
	      "| --- | --- | --- | --- | --- | --- | --- | --- |\n",
	    out);
}

static void
md_option(FILE *out, const struct doc_row *row)
{
	const struct option_def	*o = row->def;

	fprintf(out, "| `%s` | %s | `", row->name, option_type_name(o->type));
	md_cell(out, o->def[0] != '\0' ? o->def : "\"\"");
	fputs("` | ", out);
	if (o->type == OPTION_ENUM)
		md_codes(out, o->choices, "|");
	else
		md_cell(out, row->range);
	fprintf(out, " | %s | ", row->reload);
	md_codes(out, row->flags, ", ");
	fprintf(out, " | `%s` | ", row->env);
	md_cell(out, o->help);
	fputs(" |\n", out);
}

static void
md_end(FILE *out)
{
	(void)out;
}

static const struct doc_format formats[] = {
	{ "markdown", md_begin, md_group, md_option, md_end },
};

static void
doc_print(FILE *out, const struct doc_format *format)
{
	struct doc_row	 row;
	const char	*group = NULL;
	size_t		 i;

	format->begin(out);
	for (i = 0; i < OPT__COUNT; i++) {
		if (group == NULL ||
		    strcmp(group, option_table[i].group) != 0) {
			group = option_table[i].group;
			format->group(out, group);
		}
		doc_row_fill(&option_table[i], &row);
		format->option(out, &row);
	}
	format->end(out);
}

int
main(int argc, char *argv[])
{
	const char	*name = argc > 1 ? argv[1] : "markdown";
	size_t		 i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (strcmp(formats[i].name, name) != 0)
			continue;
		doc_print(stdout, &formats[i]);
		if (fflush(stdout) == EOF || ferror(stdout)) {
			fprintf(stderr, "optdoc: cannot write the output\n");
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: optdoc [markdown]\n");
	return 2;
}

/*
 * options_doc.c - optdoc: the configuration reference, generated from the
 * option table so that it cannot drift from the code.
 *
 *	optdoc markdown		docs/configuration.md (`make docs`)
 *	optdoc man		man/promptmq.conf.5 (`make docs`)
 *
 * Each option is first described in words (struct doc_row: its default,
 * range, flags, variable), then handed to an output format, a table of
 * functions.
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
	{ "auth", "Who may connect." },
	{ "storage", "The durable state: the message log (WAL) and its "
		     "index." },
	{ "sys", "The $SYS topics." },
	{ "metrics", "The Prometheus metrics and health endpoint." },
	{ "log", "Where log lines go and what they look like." },
};

/* The sentence on a group, or NULL. */
static const char *
group_sentence(const char *group)
{
	size_t	i;

	for (i = 0; i < sizeof(group_about) / sizeof(group_about[0]); i++)
		if (strcmp(group_about[i].group, group) == 0)
			return group_about[i].about;
	return NULL;
}

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

/*
 * The prose before the options, in Markdown.  configuration.md prints it
 * as it is and the man page converts it (roff_markdown), so the two say
 * the same.  Only what the converter knows may be used: "## " headings,
 * paragraphs, "- " and "1. " lists with indented continuation lines,
 * ``` blocks, two-column tables, `code`, *emphasis* and [text](url).
 */
static void
doc_intro(FILE *out)
{
	size_t	i;

	fputs("Every setting of the broker is one of the options below. An "
	      "option is read\n"
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
md_begin(FILE *out)
{
	fputs("# PromptMQ configuration\n"
	      "\n"
	      "<!-- Generated from common/options.def by `make docs`; "
	      "do not edit. -->\n"
	      "\n",
	    out);
	doc_intro(out);
}

static void
md_group(FILE *out, const char *group)
{
	const char	*about = group_sentence(group);

	fprintf(out, "\n## %s\n\n", group);
	if (about != NULL)
		fprintf(out, "%s\n\n", about);
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

/*
 * roff (man(7)): promptmq.conf(5).  The prose is doc_intro()'s Markdown,
 * converted; each option is a tagged paragraph with its properties in an
 * indented list under it.
 */

/*
 * Where the writer is: at the start of a line, inside `code` or *...*,
 * in an example.
 */
struct roff {
	FILE	*out;
	int	 bol;
	int	 code;
	int	 emphasis;
	int	 example;
};

/* One character, escaped so that roff prints it as it is. */
static void
roff_char(struct roff *r, char c)
{
	if (r->bol && (c == '.' || c == '\''))
		fputs("\\&", r->out);	/* it would start a request */
	if (c == '\\')
		fputs("\\e", r->out);
	else if (c == '-' && (r->code || r->example))
		fputs("\\-", r->out);	/* a minus: names paste as typed */
	else
		fputc(c, r->out);
	r->bol = c == '\n';
}

static void
roff_text(struct roff *r, const char *text, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		roff_char(r, text[i]);
}

/* Text that is typed as it is: names, values, flags. */
static void
roff_code(struct roff *r, const char *text)
{
	fputs("\\fB", r->out);
	r->bol = 0;
	r->code = 1;
	roff_text(r, text, strlen(text));
	r->code = 0;
	fputs("\\fR", r->out);
}

/* Start a request or macro line: ".TP", ".SS ". */
static void
roff_request(struct roff *r, const char *request)
{
	if (!r->bol)
		fputc('\n', r->out);
	fputs(request, r->out);
	r->bol = request[strlen(request) - 1] == '\n';
}

static void
roff_font(struct roff *r)
{
	fputs(r->code ? "\\fB" : r->emphasis ? "\\fI" : "\\fR", r->out);
	r->bol = 0;
}

/* Back to roman at the end of a block, whatever was left open. */
static void
roff_block_end(struct roff *r)
{
	if (r->code || r->emphasis) {
		r->code = r->emphasis = 0;
		roff_font(r);
	}
}

/* Markdown text: `code`, *emphasis*, [text](url), \|. */
static void
roff_span(struct roff *r, const char *s, size_t len)
{
	const char	*end = s + len, *close, *url_end;

	while (s < end) {
		if (*s == '`') {
			r->code = !r->code;
			roff_font(r);
			s++;
		} else if (r->code) {
			roff_char(r, *s++);
		} else if (*s == '*') {
			r->emphasis = !r->emphasis;
			roff_font(r);
			s++;
		} else if (*s == '\\' && s + 1 < end && s[1] == '|') {
			roff_char(r, '|');
			s += 2;
		} else if (*s == '[' &&
		    (close = memchr(s, ']', (size_t)(end - s))) != NULL &&
		    close + 1 < end && close[1] == '(' &&
		    (url_end = memchr(close, ')', (size_t)(end - close))) !=
		    NULL) {
			roff_span(r, s + 1, (size_t)(close - s - 1));
			fputs(" \\(la", r->out);
			r->bol = 0;
			roff_text(r, close + 2, (size_t)(url_end - close - 2));
			fputs("\\(ra", r->out);
			s = url_end + 1;
		} else {
			roff_char(r, *s++);
		}
	}
}

/* A line of Markdown text. */
static void
roff_inline(struct roff *r, const char *line, size_t len)
{
	roff_span(r, line, len);
	roff_char(r, '\n');
}

/* "| tag | text |" as a tagged paragraph. */
static void
roff_table_row(struct roff *r, const char *line, size_t len)
{
	const char	*cell = line + 2, *end = line + len, *sep;

	if (len >= 4 && memcmp(end - 2, " |", 2) == 0)
		end -= 2;
	for (sep = cell; sep + 3 <= end; sep++)
		if (memcmp(sep, " | ", 3) == 0 && sep[-1] != '\\')
			break;
	if (sep + 3 > end) {
		roff_inline(r, cell, (size_t)(end - cell));
		return;
	}
	roff_request(r, ".TP\n");
	roff_inline(r, cell, (size_t)(sep - cell));
	roff_inline(r, sep + 3, (size_t)(end - sep - 3));
}

static int
starts_with(const char *line, size_t len, const char *prefix)
{
	size_t	n = strlen(prefix);

	return len >= n && memcmp(line, prefix, n) == 0;
}

enum roff_block {
	BLOCK_NONE,
	BLOCK_HEADING,		/* starts a paragraph already */
	BLOCK_PARAGRAPH,
	BLOCK_ITEM,
	BLOCK_TABLE,
	BLOCK_CODE,
};

/* Markdown as doc_intro() writes it, as roff. */
static void
roff_markdown(struct roff *r, const char *text)
{
	enum roff_block	 block = BLOCK_NONE;
	const char	*line, *next;
	size_t		 len, n;

	for (line = text; *line != '\0'; line = next) {
		len = strcspn(line, "\n");
		next = line + len + (line[len] == '\n');
		n = strspn(line, "0123456789");
		if (block == BLOCK_CODE && starts_with(line, len, "```")) {
			roff_request(r, ".EE\n.RE\n");
			block = BLOCK_NONE;
		} else if (block == BLOCK_CODE) {
			r->example = 1;
			roff_text(r, line, len);
			roff_char(r, '\n');
			r->example = 0;
		} else if (len == 0) {
			roff_block_end(r);
			if (block != BLOCK_HEADING)
				block = BLOCK_NONE;
		} else if (starts_with(line, len, "```")) {
			roff_request(r, block == BLOCK_HEADING ? ".RS 4\n.EX\n" :
			    ".PP\n.RS 4\n.EX\n");
			block = BLOCK_CODE;
		} else if (starts_with(line, len, "## ")) {
			roff_request(r, ".SS ");
			roff_text(r, line + 3, len - 3);
			roff_char(r, '\n');
			block = BLOCK_HEADING;
		} else if (line[0] == '|') {
			/* the first row is the header, then "| --- |" */
			if (block == BLOCK_TABLE &&
			    !starts_with(line, len, "| ---"))
				roff_table_row(r, line, len);
			block = BLOCK_TABLE;
		} else if (starts_with(line, len, "- ")) {
			roff_request(r, ".IP \\(bu 2\n");
			roff_inline(r, line + 2, len - 2);
			block = BLOCK_ITEM;
		} else if (n > 0 && starts_with(line + n, len - n, ". ")) {
			roff_request(r, ".IP ");
			fprintf(r->out, "%.*s. 4\n", (int)n, line);
			r->bol = 1;
			roff_inline(r, line + n + 2, len - n - 2);
			block = BLOCK_ITEM;
		} else if (block == BLOCK_ITEM && line[0] == ' ') {
			n = strspn(line, " ");
			roff_inline(r, line + n, len - n);
		} else {
			if (block != BLOCK_PARAGRAPH && block != BLOCK_HEADING)
				roff_request(r, ".PP\n");
			roff_inline(r, line, len);
			block = BLOCK_PARAGRAPH;
		}
	}
	roff_block_end(r);
}

static void
man_begin(FILE *out)
{
	struct roff	 r = { out, 1, 0, 0, 0 };
	char		*intro = NULL;
	size_t		 len = 0;
	FILE		*mem;

	if ((mem = open_memstream(&intro, &len)) == NULL) {
		perror("optdoc");
		exit(1);
	}
	doc_intro(mem);
	if (fclose(mem) == EOF) {
		perror("optdoc");
		exit(1);
	}
	fputs(".\\\" Generated from common/options.def by `make docs`; "
	      "do not edit.\n"
	      ".TH PROMPTMQ.CONF 5 \"\" \"PromptMQ\" \"File Formats Manual\"\n"
	      ".\\\" Names and values must not be hyphenated: no word is (HY\n"
	      ".\\\" is what .EE restores).\n"
	      ".nr HY 0\n"
	      ".nh\n"
	      ".ad l\n"
	      ".SH NAME\n"
	      "promptmq.conf \\- configuration of the PromptMQ MQTT broker\n"
	      ".SH SYNOPSIS\n"
	      ".I /etc/promptmq/promptmq.conf\n"
	      ".SH DESCRIPTION\n"
	      ".BR promptmqd (8),\n"
	      "the PromptMQ MQTT broker, reads its settings from this file,\n"
	      "from the environment and from its command line.\n",
	    out);
	roff_markdown(&r, intro);
	free(intro);
	fputs(".SH OPTIONS\n"
	      "Every option is named\n"
	      ".IR group . leaf\n"
	      "and shown with its type, its default, its range or choices, "
	      "whether\n"
	      "SIGHUP applies it\n"
	      "(reload: yes) or it needs a restart of the broker\n"
	      "(reload: restart only), its command-line flags and its "
	      "environment\n"
	      "variable.\n",
	    out);
}

static void
man_group(FILE *out, const char *group)
{
	const char	*about = group_sentence(group);

	fprintf(out, ".SS %s\n", group);
	if (about != NULL)
		fprintf(out, "%s\n", about);
}

/* One property of an option in its list: ".TP" tag, then the value. */
static void
man_property(struct roff *r, const char *tag)
{
	roff_request(r, ".TP\n");
	fprintf(r->out, "%s\n", tag);
}

/* Comma-separated words (or a|b choices) as typed, separated by ", ". */
static void
man_codes(struct roff *r, const char *words, const char *separators)
{
	char	 word[DOC_FIELD];
	size_t	 len;
	int	 first = 1;

	while (*words != '\0') {
		len = strcspn(words, separators);
		snprintf(word, sizeof(word), "%.*s", (int)len, words);
		if (!first)
			fputs(", ", r->out);
		roff_code(r, word);
		first = 0;
		words += len;
		words += strspn(words, separators);
	}
	roff_char(r, '\n');
}

static void
man_option(FILE *out, const struct doc_row *row)
{
	const struct option_def	*o = row->def;
	struct roff		 r = { out, 1, 0, 0, 0 };

	roff_request(&r, ".TP\n");
	roff_code(&r, row->name);
	roff_char(&r, '\n');
	roff_text(&r, o->help, strlen(o->help));
	roff_char(&r, '\n');
	roff_request(&r, ".RS\n.PD 0\n");
	roff_request(&r, ".TP 13\n");
	fprintf(out, "type\n%s\n", option_type_name(o->type));
	man_property(&r, "default");
	roff_code(&r, o->def[0] != '\0' ? o->def : "\"\"");
	roff_char(&r, '\n');
	if (o->type == OPTION_ENUM) {
		man_property(&r, "choices");
		man_codes(&r, o->choices, "|");
	} else if (row->range[0] != '\0') {
		man_property(&r, "range");
		roff_text(&r, row->range, strlen(row->range));
		roff_char(&r, '\n');
	}
	man_property(&r, "reload");
	fprintf(out, "%s\n", row->reload);
	man_property(&r, "flag");
	man_codes(&r, row->flags, ", ");
	man_property(&r, "environment");
	roff_code(&r, row->env);
	roff_char(&r, '\n');
	roff_request(&r, ".PD\n.RE\n");
}

static void
man_end(FILE *out)
{
	fputs(".SH FILES\n"
	      ".TP\n"
	      ".I /etc/promptmq/promptmq.conf\n"
	      "The configuration read when neither\n"
	      ".B \\-c\n"
	      "nor\n"
	      ".B PROMPTMQ_CONFIG\n"
	      "names one\n"
	      "(\\fISYSCONFDIR\\fP/promptmq/promptmq.conf for a build from "
	      "source).\n"
	      ".SH SEE ALSO\n"
	      ".BR promptmqd (8)\n",
	    out);
}

static const struct doc_format formats[] = {
	{ "markdown", md_begin, md_group, md_option, md_end },
	{ "man", man_begin, man_group, man_option, man_end },
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
	fprintf(stderr, "usage: optdoc [markdown | man]\n");
	return 2;
}

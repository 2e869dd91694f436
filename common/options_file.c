/*
 * options_file.c - reading the configuration file with libconfig.
 *
 * The file has one libconfig group per option group:
 *
 *	server: { bind = "127.0.0.1:1883"; workers = 0; };
 *	storage: { wal-sync = "always"; memory-buffer = "256MB"; };
 *
 * Every setting is checked against the option table: an unknown group or
 * option, or a value of the wrong libconfig type, is an error naming the
 * file and line.  Sizes and durations must be strings with units, since
 * libconfig cannot hold large integers safely (below).
 *
 * libconfig 1.5 reads an integer literal with atoi() or strtoul(), so
 * past 32 bits it wraps without a word: "workers = 4294967297;" reads as
 * 1.  An integer setting is therefore read again from the file text at
 * the setting's line, and the literal, not libconfig's value, is what is
 * range-checked.  libconfig's value must equal the literal's low 32 bits;
 * when it does not, the literal found is not the one libconfig read, and
 * the setting is refused rather than guessed at.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "options_internal.h"

/* The text of a file read again to check integers (main or @include). */
struct source {
	char		*name;	/* as libconfig names it */
	char		*text;
	struct source	*next;
};

struct file_reader {
	struct config		*cfg;
	struct config_messages	*msgs;
	const char		*path;	/* absolute: names the file */
	char			*dir;	/* of the file: @include is relative */
	struct source		*sources;
	int			 failed;
};

/* An integer literal in the file text. */
struct literal {
	const char	*start;
	size_t		 len;
	int64_t		 value;
	int		 overflow;	/* does not fit in 64 bits */
};

/*
 * The absolute name of a file libconfig names: it gives an @include file
 * as written, relative to the directory of the including file.
 */
static const char *
file_display_name(struct file_reader *r, const char *file, char *buf,
    size_t len)
{
	char	*absolute;

	if (file == NULL || file[0] == '/')
		return file ? file : r->path;
	if ((absolute = option_path_absolute(r->dir, file)) == NULL)
		return file;
	snprintf(buf, len, "%s", absolute);
	free(absolute);
	return buf;
}

static void
file_error(struct file_reader *r, const config_setting_t *s, const char *fmt,
    ...) LOG_PRINTF(3, 4);

/* "FILE:LINE: problem", FILE being the one the setting is in. */
static void
file_error(struct file_reader *r, const config_setting_t *s, const char *fmt,
    ...)
{
	char	problem[1024], name[PATH_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	option_error(r->msgs, "%s:%u: %s",
	    file_display_name(r, config_setting_source_file(s), name,
		sizeof(name)),
	    config_setting_source_line(s), problem);
	r->failed = 1;
}

/* The whole file as a string; NULL with errno set. */
static char *
read_text(const char *path)
{
	struct buf	 b = BUF_INITIALIZER;
	char		 chunk[8192];
	size_t		 n;
	FILE		*f;
	int		 saved;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	if (ferror(f)) {
		saved = errno;
		fclose(f);
		buf_free(&b);
		errno = saved;
		return NULL;
	}
	fclose(f);
	buf_add_u8(&b, '\0');
	if (buf_failed(&b)) {
		buf_free(&b);
		errno = ENOMEM;
		return NULL;
	}
	return (char *)b.data;
}

static int
source_add(struct file_reader *r, const char *name, char *text)
{
	struct source	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->name = strdup(name)) == NULL) {
		free(s);
		free(text);
		return -1;
	}
	s->text = text;
	s->next = r->sources;
	r->sources = s;
	return 0;
}

/* The text of the file a setting is in, read once. */
static const char *
source_text(struct file_reader *r, const config_setting_t *setting)
{
	const char	*name = config_setting_source_file(setting);
	struct source	*s;
	char		*path, *text;

	if (name == NULL)
		name = r->path;
	for (s = r->sources; s != NULL; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s->text;
	/* libconfig names an @include file as written, from the file's dir. */
	if ((path = option_path_absolute(r->dir, name)) == NULL)
		return NULL;
	text = read_text(path);
	free(path);
	if (text == NULL || source_add(r, name, text) == -1)
		return NULL;
	return text;
}

static int
is_name_start(int c)
{
	return isalpha(c) || c == '*';
}

static int
is_name_char(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '*';
}

/* Past blanks, line ends and comments (#, //, slash-star). */
static const char *
skip_space(const char *p)
{
	const char	*end;

	for (;;) {
		if (isspace((unsigned char)*p)) {
			p++;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			end = strstr(p + 2, "*/");
			p = end ? end + 2 : p + strlen(p);
		} else {
			return p;
		}
	}
}

/*
 * An integer literal as libconfig's scanner takes it: [-+]DIGITS or
 * 0xHEX, then an optional L or LL.  Returns the end, or NULL when p
 * holds no integer.
 */
static const char *
parse_literal(const char *p, struct literal *lit)
{
	uint64_t	n = 0, limit = INT64_MAX;
	int		digit, negative = 0;

	lit->start = p;
	lit->overflow = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
	    isxdigit((unsigned char)p[2])) {
		for (p += 2; isxdigit((unsigned char)*p); p++) {
			digit = isdigit((unsigned char)*p) ?
			    *p - '0' :
			    tolower((unsigned char)*p) - 'a' + 10;
			if (n > (limit - (uint64_t)digit) / 16)
				lit->overflow = 1;
			else
				n = n * 16 + (uint64_t)digit;
		}
	} else {
		if (*p == '-' || *p == '+')
			negative = *p++ == '-';
		if (!isdigit((unsigned char)*p))
			return NULL;
		if (negative)
			limit = (uint64_t)INT64_MAX + 1;
		for (; isdigit((unsigned char)*p); p++) {
			digit = *p - '0';
			if (n > (limit - (uint64_t)digit) / 10)
				lit->overflow = 1;
			else
				n = n * 10 + (uint64_t)digit;
		}
	}
	if (*p == 'L' && *++p == 'L')
		p++;
	if (is_name_char((unsigned char)*p) || *p == '.')
		return NULL;
	if (!negative || n == 0)
		lit->value = (int64_t)n;
	else
		lit->value = -(int64_t)(n - 1) - 1;
	lit->len = (size_t)(p - lit->start);
	return p;
}

/*
 * Finds "leaf = INTEGER" from the start of line `line` on, skipping
 * strings and comments so that a name inside them is not taken for the
 * setting.  libconfig gives the line of the setting's name.
 */
static int
find_literal(const char *text, unsigned line, const char *leaf,
    struct literal *lit)
{
	const char	*p = text, *name, *q;
	size_t		 leaflen = strlen(leaf);
	unsigned	 at = 1;

	for (; at < line && *p != '\0'; p++)
		if (*p == '\n')
			at++;
	if (at < line)
		return -1;
	while (*p != '\0') {
		if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p != '\0')
				p++;
		} else if (*p == '#' ||
		    (*p == '/' && (p[1] == '/' || p[1] == '*'))) {
			p = skip_space(p);
		} else if (is_name_start((unsigned char)*p)) {
			for (name = p; is_name_char((unsigned char)*p);)
				p++;
			if ((size_t)(p - name) != leaflen ||
			    strncmp(name, leaf, leaflen) != 0)
				continue;
			q = skip_space(p);
			if ((*q == '=' || *q == ':') &&
			    parse_literal(skip_space(q + 1), lit) != NULL)
				return 0;
		} else {
			p++;
		}
	}
	return -1;
}

/* The integer of an INT setting, as written, into text. */
static int
file_integer(struct file_reader *r, const config_setting_t *s,
    const struct option_def *o, char *text, size_t len)
{
	const char	*source;
	struct literal	 lit;
	char		 lo[32], hi[32];
	int		 same;

	if ((source = source_text(r, s)) == NULL) {
		file_error(r, s, "%s.%s: cannot read the file again to check "
		    "the integer: %s", o->group, o->leaf, strerror(errno));
		return -1;
	}
	if (find_literal(source, config_setting_source_line(s), o->leaf,
		&lit) == -1)
		goto unsure;
	if (lit.overflow) {
		file_error(r, s, "%s.%s: %.*s is out of range (%s to %s)",
		    o->group, o->leaf, (int)lit.len, lit.start,
		    option_format_num(o->type, o->min, lo, sizeof(lo)),
		    option_format_num(o->type, o->max, hi, sizeof(hi)));
		return -1;
	}
	if (config_setting_type(s) == CONFIG_TYPE_INT64)
		same = config_setting_get_int64(s) == lit.value;
	else
		same = config_setting_get_int(s) ==
		    (int32_t)(uint32_t)(uint64_t)lit.value;
	if (!same)
		goto unsure;
	snprintf(text, len, "%lld", (long long)lit.value);
	return 0;
unsure:
	file_error(r, s, "%s.%s: cannot find this integer in the file text "
	    "to check its range; write it as %s = NUMBER;",
	    o->group, o->leaf, o->leaf);
	return -1;
}

static const char *
setting_kind(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a decimal number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/* The message for a setting of the wrong type, with the expected form. */
static void
file_wrong_type(struct file_reader *r, const config_setting_t *s,
    const struct option_def *o)
{
	static const char *const expected[] = {
		[OPTION_BOOL] = "true or false",
		[OPTION_INT] = "an integer",
		[OPTION_SIZE] = "a string with a size unit",
		[OPTION_DURATION] = "a string with a time unit",
		[OPTION_STRING] = "a string",
		[OPTION_PATH] = "a string",
		[OPTION_ENUM] = "a string",
		[OPTION_LIST] = "a string or a list of strings",
	};
	const char	*quote;

	quote = o->type == OPTION_BOOL || o->type == OPTION_INT ? "" : "\"";
	file_error(r, s, "%s.%s: expected %s, e.g. %s = %s%s%s; (got %s)",
	    o->group, o->leaf, expected[o->type], o->leaf, quote, o->def,
	    quote, setting_kind(s));
}

/* A libconfig list or array of strings as "a,b,c" into out. */
static int
file_list(struct file_reader *r, const config_setting_t *s,
    const struct option_def *o, struct buf *out)
{
	const config_setting_t	*e;
	const char		*str;
	int			 i, n = config_setting_length(s);

	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			file_error(r, s, "%s.%s: element %d is %s; expected "
			    "strings", o->group, o->leaf, i + 1,
			    setting_kind(e));
			return -1;
		}
		str = config_setting_get_string(e);
		if (strchr(str, ',') != NULL) {
			file_error(r, s, "%s.%s: element %d ('%s') has a comma",
			    o->group, o->leaf, i + 1, str);
			return -1;
		}
		if (i > 0)
			buf_add_u8(out, ',');
		buf_add(out, str, strlen(str));
	}
	return 0;
}

/* One setting of a known option: check its type, then config_set(). */
static void
file_setting(struct file_reader *r, const config_setting_t *s,
    enum option_id id)
{
	const struct option_def	*o = &option_table[id];
	struct buf		 list = BUF_INITIALIZER;
	const char		*text = NULL;
	char			 number[32], err[512];
	int			 type = config_setting_type(s);

	switch (o->type) {
	case OPTION_BOOL:
		if (type == CONFIG_TYPE_BOOL)
			text = config_setting_get_bool(s) ? "true" : "false";
		break;
	case OPTION_INT:
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
			if (file_integer(r, s, o, number, sizeof(number)) == -1)
				return;
			text = number;
		}
		break;
	case OPTION_LIST:
		if (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
			if (file_list(r, s, o, &list) == -1) {
				buf_free(&list);
				return;
			}
			buf_add_u8(&list, '\0');
			if (buf_failed(&list)) {
				file_error(r, s, "out of memory");
				buf_free(&list);
				return;
			}
			text = (const char *)list.data;
			break;
		}
		/* FALLTHROUGH */
	default:
		if (type == CONFIG_TYPE_STRING)
			text = config_setting_get_string(s);
		break;
	}
	if (text == NULL) {
		file_wrong_type(r, s, o);
	} else if (config_set(r->cfg, id, text, ORIGIN_FILE, err,
		       sizeof(err)) == -1) {
		file_error(r, s, "%s.%s: %s", o->group, o->leaf, err);
	} else {
		r->cfg->v[id].line = (int)config_setting_source_line(s);
	}
	buf_free(&list);
}

static int
group_known(const char *name)
{
	size_t	i;

	for (i = 0; i < OPT__COUNT; i++)
		if (strcmp(option_table[i].group, name) == 0)
			return 1;
	return 0;
}

/* " (did you mean 'x'?)" for an unknown name, or "". */
static const char *
file_suggestion(const char *group, const char *leaf, char *buf, size_t len)
{
	struct option_suggest	 suggest;
	char			 word[OPTION_NAME_MAX], name[OPTION_NAME_MAX];
	const char		*found = NULL;
	size_t			 i;

	if (leaf == NULL) {
		option_suggest_init(&suggest, group, strlen(group));
		for (i = 0; i < OPT__COUNT; i++)
			option_suggest_try(&suggest, option_table[i].group);
		found = option_suggest_result(&suggest);
	} else {
		/* The right option in the wrong group is the likeliest. */
		for (i = 0; i < OPT__COUNT && found == NULL; i++)
			if (strcmp(option_table[i].leaf, leaf) == 0)
				found = config_name((enum option_id)i, name,
				    sizeof(name));
		snprintf(word, sizeof(word), "%s.%s", group, leaf);
		option_suggest_init(&suggest, word, strlen(word));
		for (i = 0; i < OPT__COUNT && found == NULL; i++)
			option_suggest_try(&suggest,
			    config_name((enum option_id)i, name, sizeof(name)));
		if (found == NULL)
			found = option_suggest_result(&suggest);
	}
	if (found == NULL)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, " (did you mean '%s'?)", found);
	return buf;
}

static void
file_group(struct file_reader *r, const config_setting_t *group)
{
	const config_setting_t	*s;
	const char		*gname = config_setting_name(group), *leaf;
	char			 name[2 * OPTION_NAME_MAX], hint[128];
	int			 i, id;

	if (!group_known(gname)) {
		file_error(r, group, "unknown group '%s'%s", gname,
		    file_suggestion(gname, NULL, hint, sizeof(hint)));
		return;
	}
	if (!config_setting_is_group(group)) {
		file_error(r, group, "'%s' must be a group: %s: { ... };",
		    gname, gname);
		return;
	}
	for (i = 0; i < config_setting_length(group); i++) {
		s = config_setting_get_elem(group, (unsigned)i);
		leaf = config_setting_name(s);
		snprintf(name, sizeof(name), "%s.%s", gname, leaf);
		if ((id = config_find(name)) == -1)
			file_error(r, s, "unknown option '%s'%s", name,
			    file_suggestion(gname, leaf, hint, sizeof(hint)));
		else
			file_setting(r, s, (enum option_id)id);
	}
}

/* The directory of an absolute path: "/etc/promptmq" of ".../x.conf". */
static char *
directory_of(const char *path)
{
	const char	*slash = strrchr(path, '/');

	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int
option_file_load(struct config *cfg, const char *path, int must_exist,
    struct config_messages *msgs)
{
	struct file_reader	 r = { cfg, msgs, path, NULL, NULL, 0 };
	struct source		*s;
	config_setting_t	*root;
	config_t		 lc;
	char			*absolute, *cwd = NULL, *text, name[PATH_MAX];
	int			 i;

	/*
	 * Read by its absolute name, which is also the name in messages:
	 * the daemon reloads from / and logs where nobody knows where it
	 * was started from.
	 */
	if (cfg->base_dir == NULL && (cwd = getcwd(NULL, 0)) == NULL) {
		option_error(msgs, "%s: cannot find the current directory: %s",
		    path, strerror(errno));
		return -1;
	}
	absolute = option_path_absolute(cwd ? cwd : cfg->base_dir, path);
	free(cwd);
	if (absolute == NULL || (r.dir = directory_of(absolute)) == NULL) {
		free(absolute);
		option_error(msgs, "%s: out of memory", path);
		return -1;
	}
	r.path = absolute;
	if ((text = read_text(r.path)) == NULL) {
		if (errno == ENOENT && !must_exist) {
			free(absolute);
			free(r.dir);
			return 0;
		}
		option_error(msgs, "%s: cannot read: %s", r.path,
		    strerror(errno));
		free(absolute);
		free(r.dir);
		return -1;
	}
	if (source_add(&r, r.path, text) == -1) {
		option_error(msgs, "%s: out of memory", r.path);
		r.failed = 1;
	}
	free(cfg->file);
	cfg->file = absolute;

	config_init(&lc);
	config_set_include_dir(&lc, r.dir);
	if (config_read_file(&lc, r.path) == CONFIG_FALSE) {
		option_error(msgs, "%s:%d: %s",
		    file_display_name(&r, config_error_file(&lc), name,
			sizeof(name)),
		    config_error_line(&lc), config_error_text(&lc));
		r.failed = 1;
	} else {
		root = config_root_setting(&lc);
		for (i = 0; i < config_setting_length(root); i++)
			file_group(&r, config_setting_get_elem(root,
					   (unsigned)i));
	}
	config_destroy(&lc);
	while ((s = r.sources) != NULL) {
		r.sources = s->next;
		free(s->name);
		free(s->text);
		free(s);
	}
	free(r.dir);
	return r.failed ? -1 : 0;
}

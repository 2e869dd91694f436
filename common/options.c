/*
 * options.c - the option table (options.def), its typed values and the
 * values derived from several options.
 *
 * Every value has one canonical text: "true", "42", "256MB", "100ms",
 * the choice of an ENUM, a LIST as "a,b,c".  config_set() accepts every
 * spelling a person may write ("1024KB", "1MiB", "yes", "a, b") and
 * stores the canonical one, so a value sent to a child over the control
 * channel as text comes back as the same value, and two configurations
 * compare by text on reload.
 *
 * The loader that feeds config_set() from the file, the environment and
 * the command line is in options_file.c and options_load.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "options_internal.h"

#define OPTION(id, group, leaf, type, def, min, max, choices, reload, help) \
	{ OPT_##id, group, leaf, OPTION_##type, def, min, max, choices,      \
	    OPTION_##reload, help },
const struct option_def option_table[OPT__COUNT] = {
#include "options.def"
};
#undef OPTION

#define OPTION(...)
#define OPTION_ALIAS(id, flag, letter, value) { OPT_##id, flag, letter, value },
const struct option_alias option_aliases[] = {
#include "options.def"
};
#undef OPTION_ALIAS
#undef OPTION
const size_t option_alias_count =
    sizeof(option_aliases) / sizeof(option_aliases[0]);

static const char *const type_names[] = {
	[OPTION_BOOL] = "bool",
	[OPTION_INT] = "integer",
	[OPTION_SIZE] = "size",
	[OPTION_DURATION] = "duration",
	[OPTION_STRING] = "string",
	[OPTION_PATH] = "path",
	[OPTION_ENUM] = "choice",
	[OPTION_LIST] = "list",
};

struct unit {
	const char	*name;
	int64_t		 factor;
};

/*
 * Largest first: the canonical text uses the first unit that divides the
 * value exactly, so 268435456 is "256MB", 1536 is "1536B" and 90000 ms
 * is "90s".  Units are matched without regard to case.
 */
static const struct unit size_units[] = {
	{ "TB", 1LL << 40 }, { "GB", 1LL << 30 }, { "MB", 1LL << 20 },
	{ "KB", 1LL << 10 }, { "B", 1 },
	/* accepted, never written */
	{ "TiB", 1LL << 40 }, { "GiB", 1LL << 30 }, { "MiB", 1LL << 20 },
	{ "KiB", 1LL << 10 },
};

static const struct unit duration_units[] = {
	{ "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};

struct unit_family {
	const char		*what;
	const struct unit	*units;
	size_t			 count;
	size_t			 written;	/* the first are canonical */
	const char		*names;		/* for messages */
	const char		*example;
};

static const struct unit_family size_family = {
	"size", size_units, sizeof(size_units) / sizeof(size_units[0]), 5,
	"B, KB, MB, GB, TB or KiB, MiB, GiB, TiB", "256MB"
};

static const struct unit_family duration_family = {
	"duration", duration_units,
	sizeof(duration_units) / sizeof(duration_units[0]), 4,
	"ms, s, m, h", "30s"
};

static const struct {
	const char	*word;
	int		 value;
} bool_words[] = {
	{ "true", 1 }, { "false", 0 }, { "yes", 1 }, { "no", 0 },
	{ "on", 1 }, { "off", 0 }, { "1", 1 }, { "0", 0 },
};

/* Value parsing results besides 0: -1 bad text, -2 out of memory. */
#define PARSE_BAD	-1
#define PARSE_NOMEM	-2

static const struct unit_family *
unit_family(enum option_type type)
{
	return type == OPTION_SIZE ? &size_family : &duration_family;
}

static int
option_is_text(enum option_type type)
{
	return type == OPTION_STRING || type == OPTION_PATH ||
	    type == OPTION_LIST || type == OPTION_ENUM;
}

static int
option_is_numeric(enum option_type type)
{
	return type == OPTION_BOOL || type == OPTION_INT ||
	    type == OPTION_SIZE || type == OPTION_DURATION ||
	    type == OPTION_ENUM;
}

const char *
option_type_name(enum option_type type)
{
	if ((size_t)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "?";
	return type_names[type];
}

const char *
option_flag_name(enum option_id id, char *buf, size_t len)
{
	snprintf(buf, len, "--%s-%s", option_table[id].group,
	    option_table[id].leaf);
	return buf;
}

const char *
option_env_name(enum option_id id, char *buf, size_t len)
{
	char	*p;

	snprintf(buf, len, "PROMPTMQ_%s_%s", option_table[id].group,
	    option_table[id].leaf);
	for (p = buf; *p != '\0'; p++)
		*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	return buf;
}

const char *
option_format_num(enum option_type type, int64_t num, char *buf, size_t len)
{
	const struct unit_family	*family;
	size_t				 i;

	switch (type) {
	case OPTION_BOOL:
		snprintf(buf, len, "%s", num ? "true" : "false");
		break;
	case OPTION_SIZE:
	case OPTION_DURATION:
		family = unit_family(type);
		i = family->written - 1;	/* zero in the smallest unit */
		if (num != 0) {
			for (i = 0; i < family->written - 1; i++)
				if (num % family->units[i].factor == 0)
					break;
		}
		snprintf(buf, len, "%lld%s",
		    (long long)(num / family->units[i].factor),
		    family->units[i].name);
		break;
	default:
		snprintf(buf, len, "%lld", (long long)num);
		break;
	}
	return buf;
}

static int
parse_bool(const char *text, int64_t *out, char *err, size_t errlen)
{
	size_t	i;

	for (i = 0; i < sizeof(bool_words) / sizeof(bool_words[0]); i++) {
		if (strcasecmp(text, bool_words[i].word) == 0) {
			*out = bool_words[i].value;
			return 0;
		}
	}
	return seterr(err, errlen, "'%s' is not a boolean: use true or false",
	    text);
}

static int
parse_int(const char *text, int64_t *out, char *err, size_t errlen)
{
	long long	 n;
	char		*end;

	/* strtoll() would skip leading blanks; a value must not have any. */
	if (isspace((unsigned char)text[0]))
		return seterr(err, errlen, "'%s' is not an integer", text);
	errno = 0;
	n = strtoll(text, &end, 10);
	if (end == text || *end != '\0')
		return seterr(err, errlen, "'%s' is not an integer", text);
	if (errno == ERANGE)
		return seterr(err, errlen, "%s is too large", text);
	*out = n;
	return 0;
}

/* "NUMBER UNIT": digits, optional blanks, a unit of the family. */
static int
parse_units(const struct unit_family *family, const char *text, int64_t *out,
    char *err, size_t errlen)
{
	const char	*p = text;
	int64_t		 n = 0, factor = 0;
	size_t		 i;

	if (!isdigit((unsigned char)*p))
		return seterr(err, errlen,
		    "'%s' is not a %s: write a number and a unit (%s), "
		    "e.g. \"%s\"",
		    text, family->what, family->names, family->example);
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (INT64_MAX - (*p - '0')) / 10)
			return seterr(err, errlen, "'%s' is too large", text);
		n = n * 10 + (*p - '0');
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return seterr(err, errlen,
		    "'%s' needs a unit (%s), e.g. \"%s\"", text,
		    family->names, family->example);
	for (i = 0; i < family->count; i++) {
		if (strcasecmp(p, family->units[i].name) == 0) {
			factor = family->units[i].factor;
			break;
		}
	}
	if (factor == 0)
		return seterr(err, errlen, "'%s': unknown unit '%s' (use %s)",
		    text, p, family->names);
	if (n > INT64_MAX / factor)
		return seterr(err, errlen, "'%s' is too large", text);
	*out = n * factor;
	return 0;
}

static int
check_range(const struct option_def *o, int64_t n, const char *text,
    char *err, size_t errlen)
{
	char	lo[32], hi[32];

	if (n >= o->min && n <= o->max)
		return 0;
	return seterr(err, errlen, "%s is out of range (%s to %s)", text,
	    option_format_num(o->type, o->min, lo, sizeof(lo)),
	    option_format_num(o->type, o->max, hi, sizeof(hi)));
}

/* Choice number `index` of "a|b|c": its start, and its length. */
static size_t
choice_at(const char *choices, int64_t index, const char **start)
{
	const char	*p = choices;

	for (; index > 0 && p != NULL; index--)
		if ((p = strchr(p, '|')) != NULL)
			p++;
	if (p == NULL) {
		*start = "";
		return 0;
	}
	*start = p;
	return strcspn(p, "|");
}

static int
parse_choice(const struct option_def *o, const char *text, int64_t *out,
    char *err, size_t errlen)
{
	struct option_suggest	 suggest;
	char			 list[256], word[OPTION_NAME_MAX];
	const char		*start, *close;
	size_t			 len, off = 0;
	int64_t			 i;

	option_suggest_init(&suggest, text, strlen(text));
	for (i = 0; (len = choice_at(o->choices, i, &start)) > 0; i++) {
		if (len == strlen(text) && strncasecmp(start, text, len) == 0) {
			*out = i;
			return 0;
		}
		snprintf(word, sizeof(word), "%.*s", (int)len, start);
		option_suggest_try(&suggest, word);
		if (off < sizeof(list))
			off += (size_t)snprintf(list + off, sizeof(list) - off,
			    "%s%s", i > 0 ? ", " : "", word);
	}
	close = option_suggest_result(&suggest);
	return seterr(err, errlen, "'%s' is not one of %s%s%s%s", text, list,
	    close ? " (did you mean '" : "", close ? close : "",
	    close ? "'?)" : "");
}

/* "a, b ,c" -> "a,b,c"; blanks alone are the empty list. */
static int
list_normalise(const char *text, char **out, char *err, size_t errlen)
{
	const char	*p = text, *start, *end;
	char		*w, *list;

	if (text[strspn(text, " \t")] == '\0')
		return (*out = strdup("")) == NULL ? PARSE_NOMEM : 0;
	if ((list = malloc(strlen(text) + 1)) == NULL)
		return PARSE_NOMEM;
	w = list;
	for (;;) {
		p += strspn(p, " \t");
		start = p;
		p += strcspn(p, ",");
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start) {
			free(list);
			seterr(err, errlen, "'%s' has an empty element", text);
			return PARSE_BAD;
		}
		if (w != list)
			*w++ = ',';
		memcpy(w, start, (size_t)(end - start));
		w += end - start;
		if (*p == '\0')
			break;
		p++;
	}
	*w = '\0';
	*out = list;
	return 0;
}

/*
 * Parse text for option o into its number and its canonical text.
 * Returns 0, PARSE_BAD (err says why) or PARSE_NOMEM.
 */
static int
value_parse(const struct option_def *o, const char *text, int64_t *num,
    char **canon, char *err, size_t errlen)
{
	char		 buf[64];
	const char	*start;
	size_t		 len;

	*num = 0;
	switch (o->type) {
	case OPTION_BOOL:
		if (parse_bool(text, num, err, errlen) == -1)
			return PARSE_BAD;
		break;
	case OPTION_INT:
		if (parse_int(text, num, err, errlen) == -1 ||
		    check_range(o, *num, text, err, errlen) == -1)
			return PARSE_BAD;
		break;
	case OPTION_SIZE:
	case OPTION_DURATION:
		if (parse_units(unit_family(o->type), text, num, err,
			errlen) == -1 ||
		    check_range(o, *num, text, err, errlen) == -1)
			return PARSE_BAD;
		break;
	case OPTION_ENUM:
		if (parse_choice(o, text, num, err, errlen) == -1)
			return PARSE_BAD;
		len = choice_at(o->choices, *num, &start);
		return (*canon = strndup(start, len)) == NULL ? PARSE_NOMEM : 0;
	case OPTION_LIST:
		return list_normalise(text, canon, err, errlen);
	case OPTION_STRING:
	case OPTION_PATH:
		return (*canon = strdup(text)) == NULL ? PARSE_NOMEM : 0;
	}
	option_format_num(o->type, *num, buf, sizeof(buf));
	return (*canon = strdup(buf)) == NULL ? PARSE_NOMEM : 0;
}

/* Replace a value's text (taking ownership) and number; origin stays. */
static void
value_store(struct option_value *v, enum option_type type, int64_t num,
    char *text)
{
	free(v->text);
	v->text = text;
	v->num = num;
	v->str = option_is_text(type) ? text : NULL;
}

static int
option_id_valid(enum option_id id)
{
	return (int)id >= 0 && id < OPT__COUNT;
}

int
config_set(struct config *cfg, enum option_id id, const char *text,
    enum option_origin origin, char *err, size_t errlen)
{
	const struct option_def	*o;
	int64_t			 num;
	char			*canon = NULL;
	int			 rc;

	if (!option_id_valid(id))
		return seterr(err, errlen, "no option number %d", (int)id);
	if (text == NULL)
		return seterr(err, errlen, "no value");
	o = &option_table[id];
	if ((rc = value_parse(o, text, &num, &canon, err, errlen)) != 0) {
		if (rc == PARSE_NOMEM)
			seterr(err, errlen, "out of memory");
		return -1;
	}
	value_store(&cfg->v[id], o->type, num, canon);
	cfg->v[id].origin = origin;
	cfg->v[id].line = 0;
	return 0;
}

int
config_defaults(struct config *cfg)
{
	char	*canon, err[256];
	int64_t	 num;
	size_t	 i;
	int	 rc;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < OPT__COUNT; i++) {
		rc = value_parse(&option_table[i], option_table[i].def, &num,
		    &canon, err, sizeof(err));
		if (rc == PARSE_BAD)
			panic("options.def: %s.%s: default '%s': %s",
			    option_table[i].group, option_table[i].leaf,
			    option_table[i].def, err);
		if (rc == PARSE_NOMEM) {
			config_free(cfg);
			return -1;
		}
		value_store(&cfg->v[i], option_table[i].type, num, canon);
	}
	return 0;
}

void
config_free(struct config *cfg)
{
	size_t	i;

	for (i = 0; i < OPT__COUNT; i++)
		free(cfg->v[i].text);
	free(cfg->file);
	free(cfg->base_dir);
	memset(cfg, 0, sizeof(*cfg));
}

int
config_copy(struct config *dst, const struct config *src)
{
	size_t	 i;

	*dst = *src;
	for (i = 0; i < OPT__COUNT; i++)
		dst->v[i].text = dst->v[i].str = NULL;
	dst->file = dst->base_dir = NULL;
	for (i = 0; i < OPT__COUNT; i++) {
		if (src->v[i].text == NULL)
			continue;
		if ((dst->v[i].text = strdup(src->v[i].text)) == NULL)
			goto fail;
		if (src->v[i].str == src->v[i].text)
			dst->v[i].str = dst->v[i].text;
	}
	if ((src->file && (dst->file = strdup(src->file)) == NULL) ||
	    (src->base_dir && (dst->base_dir = strdup(src->base_dir)) == NULL))
		goto fail;
	return 0;
fail:
	config_free(dst);
	return -1;
}

int
config_set_base_dir(struct config *cfg, const char *dir)
{
	char	*copy;

	if ((copy = strdup(dir)) == NULL)
		return -1;
	free(cfg->base_dir);
	cfg->base_dir = copy;
	return 0;
}

int
option_find_name(const char *name, size_t n)
{
	size_t	i, glen;

	for (i = 0; i < OPT__COUNT; i++) {
		glen = strlen(option_table[i].group);
		if (n == glen + 1 + strlen(option_table[i].leaf) &&
		    strncmp(name, option_table[i].group, glen) == 0 &&
		    name[glen] == '.' &&
		    strncmp(name + glen + 1, option_table[i].leaf,
			n - glen - 1) == 0)
			return (int)i;
	}
	return -1;
}

int
config_find(const char *name)
{
	return option_find_name(name, strlen(name));
}

int64_t
config_num(const struct config *cfg, enum option_id id)
{
	if (!option_id_valid(id) || !option_is_numeric(option_table[id].type))
		panic("config_num: option %d has no number", (int)id);
	return cfg->v[id].num;
}

const char *
config_str(const struct config *cfg, enum option_id id)
{
	if (!option_id_valid(id) || !option_is_text(option_table[id].type))
		panic("config_str: option %d has no string", (int)id);
	return cfg->v[id].str;
}

const char *
config_text(const struct config *cfg, enum option_id id)
{
	if (!option_id_valid(id))
		panic("config_text: no option %d", (int)id);
	return cfg->v[id].text;
}

const char *
config_name(enum option_id id, char *buf, size_t len)
{
	if (!option_id_valid(id))
		snprintf(buf, len, "option-%d", (int)id);
	else
		snprintf(buf, len, "%s.%s", option_table[id].group,
		    option_table[id].leaf);
	return buf;
}

const char *
config_source(const struct config *cfg, enum option_id id, char *buf,
    size_t len)
{
	switch (cfg->v[id].origin) {
	case ORIGIN_FILE:
		snprintf(buf, len, "%s:%d", cfg->file ? cfg->file : "file",
		    cfg->v[id].line);
		break;
	case ORIGIN_ENV:
		option_env_name(id, buf, len);
		break;
	case ORIGIN_FLAG:
		option_flag_name(id, buf, len);
		break;
	case ORIGIN_SUPERVISOR:
		snprintf(buf, len, "supervisor");
		break;
	default:
		snprintf(buf, len, "default");
		break;
	}
	return buf;
}

size_t
config_diff(const struct config *a, const struct config *b,
    enum option_id *out, size_t max)
{
	size_t	i, n = 0;

	for (i = 0; i < OPT__COUNT; i++) {
		if (strcmp(a->v[i].text, b->v[i].text) == 0)
			continue;
		if (n < max)
			out[n] = (enum option_id)i;
		n++;
	}
	return n;
}

/* Messages. */

static int
messages_add(char ***list, size_t *n, const char *fmt, va_list ap)
    LOG_PRINTF(3, 0);

static int
messages_add(char ***list, size_t *n, const char *fmt, va_list ap)
{
	char	*text, **grown;

	if (vasprintf(&text, fmt, ap) == -1)
		return -1;
	if ((grown = reallocarray(*list, *n + 1, sizeof(**list))) == NULL) {
		free(text);
		return -1;
	}
	grown[(*n)++] = text;
	*list = grown;
	return 0;
}

int
option_error(struct config_messages *msgs, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = messages_add(&msgs->errors, &msgs->nerrors, fmt, ap);
	va_end(ap);
	return rc;
}

int
option_warning(struct config_messages *msgs, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = messages_add(&msgs->warnings, &msgs->nwarnings, fmt, ap);
	va_end(ap);
	return rc;
}

static int
messages_append(char ***dst, size_t *ndst, char ***src, size_t *nsrc)
{
	char	**grown;
	size_t	  i;

	if (*nsrc == 0)
		return 0;
	grown = reallocarray(*dst, *ndst + *nsrc, sizeof(**dst));
	if (grown == NULL) {
		for (i = 0; i < *nsrc; i++)
			free((*src)[i]);
	} else {
		memcpy(grown + *ndst, *src, *nsrc * sizeof(**src));
		*ndst += *nsrc;
		*dst = grown;
	}
	free(*src);
	*src = NULL;
	*nsrc = 0;
	return grown == NULL ? -1 : 0;
}

int
option_messages_move(struct config_messages *dst, struct config_messages *src)
{
	int	rc;

	rc = messages_append(&dst->errors, &dst->nerrors, &src->errors,
	    &src->nerrors);
	if (messages_append(&dst->warnings, &dst->nwarnings, &src->warnings,
		&src->nwarnings) == -1)
		rc = -1;
	return rc;
}

void
config_messages_free(struct config_messages *msgs)
{
	size_t	i;

	for (i = 0; i < msgs->nerrors; i++)
		free(msgs->errors[i]);
	for (i = 0; i < msgs->nwarnings; i++)
		free(msgs->warnings[i]);
	free(msgs->errors);
	free(msgs->warnings);
	memset(msgs, 0, sizeof(*msgs));
}

/* Suggestions. */

static int
same_letter(char a, char b)
{
	return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/*
 * Edits (insert, delete, substitute, swap two neighbours) from a to b,
 * ignoring case: "wal-snyc" is one swap from "wal-sync".
 */
static size_t
edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t	rows[3][OPTION_NAME_MAX + 1], *cur, *prev, *prev2;
	size_t	i, j, d;

	if (alen > OPTION_NAME_MAX || blen > OPTION_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= blen; j++)
		rows[0][j] = j;
	for (i = 1; i <= alen; i++) {
		cur = rows[i % 3];
		prev = rows[(i - 1) % 3];
		prev2 = rows[(i + 1) % 3];
		cur[0] = i;
		for (j = 1; j <= blen; j++) {
			d = prev[j - 1] + !same_letter(a[i - 1], b[j - 1]);
			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && same_letter(a[i - 1], b[j - 2]) &&
			    same_letter(a[i - 2], b[j - 1]) &&
			    prev2[j - 2] + 1 < d)
				d = prev2[j - 2] + 1;
			cur[j] = d;
		}
	}
	return rows[alen % 3][blen];
}

void
option_suggest_init(struct option_suggest *s, const char *word, size_t len)
{
	s->word = word;
	s->wordlen = len;
	/* A few edits, fewer for short words where everything is close. */
	s->best_distance = (len < 4 ? 1 : len < 12 ? 2 : 3) + 1;
	s->best[0] = '\0';
}

void
option_suggest_try(struct option_suggest *s, const char *candidate)
{
	size_t	d;

	d = edit_distance(s->word, s->wordlen, candidate, strlen(candidate));
	if (d > 0 && d < s->best_distance) {
		s->best_distance = d;
		snprintf(s->best, sizeof(s->best), "%s", candidate);
	}
}

const char *
option_suggest_result(const struct option_suggest *s)
{
	return s->best[0] != '\0' ? s->best : NULL;
}

/* Derived values and checks across options (config_finish). */

char *
option_path_absolute(const char *base, const char *path)
{
	struct buf	 out = BUF_INITIALIZER;
	const char	*parts[2] = { base, path }, *p, *start;
	size_t		 i, len;

	/* An absolute path ignores the base. */
	for (i = path[0] == '/' ? 1 : 0; i < 2; i++) {
		for (p = parts[i]; p != NULL && *p != '\0';) {
			p += strspn(p, "/");
			start = p;
			len = strcspn(p, "/");
			p += len;
			if (len == 0 || (len == 1 && start[0] == '.'))
				continue;
			buf_add_u8(&out, '/');
			buf_add(&out, start, len);
		}
	}
	if (out.len == 0)
		buf_add_u8(&out, '/');
	buf_add_u8(&out, '\0');
	if (buf_failed(&out)) {
		buf_free(&out);
		return NULL;
	}
	return (char *)out.data;
}

/* What an error about a value starts with: where it was set, its name. */
static const char *
problem_prefix(const struct config *cfg, enum option_id id, char *buf,
    size_t len)
{
	char	name[OPTION_NAME_MAX];

	config_name(id, name, sizeof(name));
	switch (cfg->v[id].origin) {
	case ORIGIN_FILE:
		snprintf(buf, len, "%s:%d: %s", cfg->file ? cfg->file : "file",
		    cfg->v[id].line, name);
		break;
	case ORIGIN_ENV:
	case ORIGIN_FLAG:
		config_source(cfg, id, buf, len);
		break;
	default:
		snprintf(buf, len, "%s", name);
		break;
	}
	return buf;
}

struct finish {
	struct config		*cfg;
	struct config_messages	*msgs;
	int			 failed;
};

static void
finish_problem(struct finish *f, enum option_id id, const char *fmt, ...)
    LOG_PRINTF(3, 4);

static void
finish_problem(struct finish *f, enum option_id id, const char *fmt, ...)
{
	char	prefix[PATH_MAX + 2 * OPTION_NAME_MAX], problem[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	option_error(f->msgs, "%s: %s",
	    problem_prefix(f->cfg, id, prefix, sizeof(prefix)), problem);
	f->failed = 1;
}

static void
finish_nomem(struct finish *f)
{
	option_error(f->msgs, "out of memory");
	f->failed = 1;
}

/* A derived text replaces the value; where it came from stays. */
static void
finish_replace(struct finish *f, enum option_id id, char *text)
{
	if (text == NULL) {
		finish_nomem(f);
		return;
	}
	value_store(&f->cfg->v[id], option_table[id].type, f->cfg->v[id].num,
	    text);
}

static void
finish_paths(struct finish *f)
{
	struct config	*cfg = f->cfg;
	char		*path;
	size_t		 i;

	for (i = 0; i < OPT__COUNT; i++) {
		if (option_table[i].type != OPTION_PATH ||
		    cfg->v[i].text[0] == '\0')
			continue;
		finish_replace(f, (enum option_id)i,
		    option_path_absolute(cfg->base_dir, cfg->v[i].text));
	}
	if (config_text(cfg, OPT_storage_wal_dir)[0] == '\0' &&
	    config_text(cfg, OPT_storage_data_dir)[0] != '\0') {
		path = NULL;
		if (asprintf(&path, "%s/wal",
			config_text(cfg, OPT_storage_data_dir)) == -1)
			path = NULL;
		finish_replace(f, OPT_storage_wal_dir, path);
	}
	/* A daemon always gets a pidfile, so init scripts can find it. */
	if (config_num(cfg, OPT_server_daemon) &&
	    config_text(cfg, OPT_server_pidfile)[0] == '\0' &&
	    config_text(cfg, OPT_server_runtime_dir)[0] != '\0') {
		path = NULL;
		if (asprintf(&path, "%s/promptmqd.pid",
			config_text(cfg, OPT_server_runtime_dir)) == -1)
			path = NULL;
		finish_replace(f, OPT_server_pidfile, path);
	}
	if (config_text(cfg, OPT_storage_data_dir)[0] == '\0')
		finish_problem(f, OPT_storage_data_dir, "must not be empty");
	if (config_text(cfg, OPT_server_runtime_dir)[0] == '\0')
		finish_problem(f, OPT_server_runtime_dir, "must not be empty");
}

/*
 * log.target: stderr, syslog, or a file path.  A bare word is refused
 * rather than taken for a file in the current directory: "stdrr" is a
 * typo far more often than a file name.
 */
static void
finish_log_target(struct finish *f)
{
	struct buf	 out = BUF_INITIALIZER;
	const char	*p, *word;
	char		*relative, *path;
	size_t		 len;

	for (p = config_text(f->cfg, OPT_log_target); *p != '\0';
	     p += len + (p[len] == ',')) {
		word = p;
		len = strcspn(p, ",");
		if (out.len > 0)
			buf_add_u8(&out, ',');
		if ((len == 6 && strncmp(word, "stderr", len) == 0) ||
		    (len == 6 && strncmp(word, "syslog", len) == 0)) {
			buf_add(&out, word, len);
		} else if (memchr(word, '/', len) != NULL) {
			path = NULL;
			relative = strndup(word, len);
			if (relative != NULL)
				path = option_path_absolute(f->cfg->base_dir,
				    relative);
			if (path == NULL)
				out.failed = 1;
			else
				buf_add(&out, path, strlen(path));
			free(relative);
			free(path);
		} else {
			finish_problem(f, OPT_log_target,
			    "'%.*s' is neither stderr, syslog nor a file path "
			    "(write ./%.*s for a file here)",
			    (int)len, word, (int)len, word);
		}
	}
	buf_add_u8(&out, '\0');
	if (buf_failed(&out)) {
		buf_free(&out);
		finish_nomem(f);
		return;
	}
	finish_replace(f, OPT_log_target, (char *)out.data);
}

/* "HOST:PORT" or "[IPV6]:PORT", port 0 to 65535. */
static int
check_address(const char *addr, size_t len, char *err, size_t errlen)
{
	const char	*end = addr + len, *host = addr, *host_end, *colon, *p;
	long		 port = 0;
	int		 n = (int)len;

	if (len > 0 && addr[0] == '[') {
		host = addr + 1;
		if ((host_end = memchr(addr, ']', len)) == NULL)
			return seterr(err, errlen,
			    "'%.*s': no ']' after the IPv6 address", n, addr);
		colon = host_end + 1;
		if (colon == end || *colon != ':')
			return seterr(err, errlen,
			    "'%.*s' has no port: use [ADDRESS]:PORT", n, addr);
	} else {
		if ((colon = memrchr(addr, ':', len)) == NULL)
			return seterr(err, errlen,
			    "'%.*s' has no port: use HOST:PORT, "
			    "e.g. 127.0.0.1:1883",
			    n, addr);
		host_end = colon;
		if (memchr(addr, ':', (size_t)(colon - addr)) != NULL)
			return seterr(err, errlen,
			    "'%.*s': put an IPv6 address in brackets, "
			    "e.g. [::1]:1883",
			    n, addr);
	}
	if (host_end == host)
		return seterr(err, errlen,
		    "'%.*s' has no host: 0.0.0.0 or [::] listen everywhere", n,
		    addr);
	for (p = colon + 1; p < end && isdigit((unsigned char)*p); p++)
		if ((port = port * 10 + (*p - '0')) > 65535)
			break;
	if (p == colon + 1 || p != end)
		return seterr(err, errlen,
		    "'%.*s': the port must be a number from 0 to 65535", n,
		    addr);
	return 0;
}

static void
finish_addresses(struct finish *f)
{
	const char	*p;
	char		 err[256];
	size_t		 len;

	p = config_text(f->cfg, OPT_server_bind);
	if (*p == '\0')
		finish_problem(f, OPT_server_bind,
		    "needs at least one address");
	for (; *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (check_address(p, len, err, sizeof(err)) == -1)
			finish_problem(f, OPT_server_bind, "%s", err);
	}
	for (p = config_text(f->cfg, OPT_tls_bind); *p != '\0';
	     p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (check_address(p, len, err, sizeof(err)) == -1)
			finish_problem(f, OPT_tls_bind, "%s", err);
	}
	for (p = config_text(f->cfg, OPT_websocket_bind); *p != '\0';
	     p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (check_address(p, len, err, sizeof(err)) == -1)
			finish_problem(f, OPT_websocket_bind, "%s", err);
	}
	if (strlen(config_text(f->cfg, OPT_websocket_origins)) >= 2048)
		finish_problem(f, OPT_websocket_origins, "longer than 2047 "
		    "bytes");
	if (config_text(f->cfg, OPT_websocket_path)[0] != '/' ||
	    strpbrk(config_text(f->cfg, OPT_websocket_path), "?# ") != NULL)
		finish_problem(f, OPT_websocket_path, "'%s' must start with / "
		    "and hold no '?', '#' or space",
		    config_text(f->cfg, OPT_websocket_path));
	p = config_text(f->cfg, OPT_metrics_bind);
	if (check_address(p, strlen(p), err, sizeof(err)) == -1)
		finish_problem(f, OPT_metrics_bind, "%s", err);
	if (config_text(f->cfg, OPT_metrics_path)[0] != '/')
		finish_problem(f, OPT_metrics_path, "'%s' must start with /",
		    config_text(f->cfg, OPT_metrics_path));
}

/* TLS options that make no sense without others are refused. */
static void
finish_tls(struct finish *f)
{
	struct config	*cfg = f->cfg;
	int		 listening = config_text(cfg, OPT_tls_bind)[0] != '\0' ||
			    (config_num(cfg, OPT_websocket_tls) &&
			    config_text(cfg, OPT_websocket_bind)[0] != '\0');
	int		 cert = config_text(cfg, OPT_tls_cert_file)[0] != '\0';
	int		 key = config_text(cfg, OPT_tls_key_file)[0] != '\0';
	int		 psk = config_text(cfg, OPT_tls_psk_file)[0] != '\0';

	/* a certificate with its key, or pre-shared keys, or both */
	if (listening && !cert && !psk)
		finish_problem(f, OPT_tls_cert_file, "needed by tls.bind and "
		    "websocket.tls: the server's certificate (or tls.psk-file: pre-shared keys "
		    "only)");
	else if (key && !cert)
		finish_problem(f, OPT_tls_cert_file, "needed by tls.key-file: "
		    "the certificate of that key");
	if (cert && !key)
		finish_problem(f, OPT_tls_key_file, "needed by tls.cert-file: "
		    "its private key");
	if (config_num(cfg, OPT_tls_require_certificate) &&
	    config_text(cfg, OPT_tls_ca_file)[0] == '\0' &&
	    config_text(cfg, OPT_tls_ca_dir)[0] == '\0')
		finish_problem(f, OPT_tls_require_certificate, "needs "
		    "tls.ca-file or tls.ca-dir to verify client certificates "
		    "against");
	if (config_num(cfg, OPT_tls_use_identity_as_username) &&
	    !config_num(cfg, OPT_tls_require_certificate) && !psk)
		finish_problem(f, OPT_tls_use_identity_as_username, "needs "
		    "tls.require-certificate or tls.psk-file: without a "
		    "certificate or a key there is no identity");
}

int
config_finish(struct config *cfg, struct config_messages *msgs)
{
	struct finish	f = { cfg, msgs, 0 };
	char		max[32];

	if (cfg->base_dir == NULL &&
	    (cfg->base_dir = getcwd(NULL, 0)) == NULL) {
		option_error(msgs, "cannot find the current directory: %s",
		    strerror(errno));
		return -1;
	}
	finish_paths(&f);
	finish_log_target(&f);
	finish_addresses(&f);
	finish_tls(&f);
	if (config_num(cfg, OPT_server_respawn_delay) >
	    config_num(cfg, OPT_server_respawn_delay_max))
		finish_problem(&f, OPT_server_respawn_delay,
		    "%s is longer than server.respawn-delay-max (%s)",
		    config_text(cfg, OPT_server_respawn_delay),
		    option_format_num(OPTION_DURATION,
			config_num(cfg, OPT_server_respawn_delay_max), max,
			sizeof(max)));
	return f.failed ? -1 : 0;
}

/* Apply the log group to the logging of this process (all of it or none). */
int
config_apply_logging(const struct config *cfg, char *err, size_t errlen)
{
	return log_configure(config_text(cfg, OPT_log_level),
	    config_text(cfg, OPT_log_format), config_text(cfg, OPT_log_target),
	    config_text(cfg, OPT_log_syslog_facility), err, errlen);
}

/*
 * adm.c - rows and parameters of promptmqctl's requests (see adm.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adm.h"
#include "ctl.h"

void
adm_rows_init(struct adm_rows *r)
{
	buf_init(&r->b);
	r->start = 0;
}

void
adm_rows_free(struct adm_rows *r)
{
	buf_free(&r->b);
	r->start = 0;
}

void
adm_row_begin(struct adm_rows *r, const char *section)
{
	r->start = r->b.len;
	buf_add_u16(&r->b, 0);
	buf_add(&r->b, section, strlen(section) + 1);
}

static void
field(struct adm_rows *r, const char *name, char type, const void *v,
    size_t len)
{
	buf_add(&r->b, name, strlen(name) + 1);
	buf_add_u8(&r->b, (uint8_t)type);
	buf_add(&r->b, v, len);
	buf_add_u8(&r->b, 0);
}

void
adm_str(struct adm_rows *r, const char *name, const char *value)
{
	adm_bytes(r, name, value, strlen(value));
}

void
adm_bytes(struct adm_rows *r, const char *name, const void *v, size_t len)
{
	const uint8_t	*p = v;
	size_t		 at, i;

	at = r->b.len + strlen(name) + 2;
	field(r, name, 's', v, len);
	if (buf_failed(&r->b))
		return;
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			r->b.data[at + i] = '?';
}

void
adm_num(struct adm_rows *r, const char *name, int64_t value)
{
	char	 text[24];
	int	 n;

	n = snprintf(text, sizeof(text), "%" PRId64, value);
	field(r, name, 'n', text, (size_t)n);
}

void
adm_milli(struct adm_rows *r, const char *name, int64_t value)
{
	char	 text[32];
	int	 n;

	n = snprintf(text, sizeof(text), "%s%" PRId64 ".%03" PRId64,
	    value < 0 ? "-" : "", (value < 0 ? -value : value) / 1000,
	    (value < 0 ? -value : value) % 1000);
	field(r, name, 'n', text, (size_t)n);
}

void
adm_row_end(struct adm_rows *r)
{
	size_t	 len = r->b.len - r->start - 2;

	if (buf_failed(&r->b))
		return;
	if (len > UINT16_MAX) {
		/* a row that cannot be sent is left out */
		buf_truncate(&r->b, r->start);
		return;
	}
	buf_set_u16(&r->b, r->start, (uint16_t)len);
}

int
adm_rows_due(const struct adm_rows *r, int force)
{
	return r->b.len >= ADM_ROWS_FLUSH || (force && r->b.len > 0);
}

void
adm_send_rows(struct ctl_channel *ch, uint64_t corr, struct adm_rows *r)
{
	ctl_send(ch, IPC_ADM_ROWS, corr, r->b.data, r->b.len, -1);
	buf_reset(&r->b);
}

void
adm_send_done(struct ctl_channel *ch, uint64_t corr, uint8_t result,
    const char *fmt, ...)
{
	uint8_t	 body[1024];
	va_list	 ap;
	int	 n;

	body[0] = result;
	va_start(ap, fmt);
	n = vsnprintf((char *)body + 1, sizeof(body) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body) - 1)
		n = sizeof(body) - 2;
	ctl_send(ch, IPC_ADM_DONE, corr, body, 1 + (size_t)n, -1);
}

int
adm_pairs_valid(const uint8_t *body, size_t len)
{
	struct buf_reader	 rd;
	const char		*name, *value;
	int			 rv;

	buf_reader_init(&rd, body, len);
	while ((rv = ipc_pairs_next(&rd, &name, &value)) == 1)
		;
	return rv;
}

const char *
adm_param(const uint8_t *body, size_t len, const char *name)
{
	struct buf_reader	 rd;
	const char		*n, *value;

	if (adm_pairs_valid(body, len) == -1)
		return NULL;
	buf_reader_init(&rd, body, len);
	while (ipc_pairs_next(&rd, &n, &value) == 1)
		if (strcmp(n, name) == 0)
			return value;
	return NULL;
}

void
adm_reader_init(struct adm_reader *rd, const uint8_t *body, size_t len)
{
	rd->p = body;
	rd->end = body + len;
}

/* A NUL-terminated string within [p, end), or NULL. */
static const char *
string_at(const uint8_t **p, const uint8_t *end)
{
	const uint8_t	*nul;
	const char	*s = (const char *)*p;

	if (*p >= end || (nul = memchr(*p, 0, (size_t)(end - *p))) == NULL)
		return NULL;
	*p = nul + 1;
	return s;
}

int
adm_next_row(struct adm_reader *rd, const char **section,
    struct adm_field *f, size_t max, size_t *nfields)
{
	const uint8_t	*p, *end;
	const char	*name, *value;
	size_t		 len, n = 0;

	*nfields = 0;
	if (rd->p == rd->end)
		return 0;
	if (rd->end - rd->p < 2)
		return -1;
	len = buf_load_u16(rd->p);
	p = rd->p + 2;
	if ((size_t)(rd->end - p) < len)
		return -1;
	end = p + len;
	if ((*section = string_at(&p, end)) == NULL)
		return -1;
	while (p < end) {
		if ((name = string_at(&p, end)) == NULL || p >= end ||
		    (*p != 's' && *p != 'n'))
			return -1;
		p++;
		if ((value = string_at(&p, end)) == NULL)
			return -1;
		if (n < max) {
			f[n].name = name;
			f[n].type = (char)value[-1];
			f[n].value = value;
			n++;
		}
	}
	rd->p = end;
	*nfields = n;
	return 1;
}

/*
 * walrec.c - encoders and decoders of log record payloads (walrec.h,
 * docs/wal-format.md).
 */
#include "config.h"

#include <string.h>

#include "walrec.h"

/* publish v4, the flags at offset 22 */
#define WALREC_PICKS_ONLY	1

#define FORMAT_1		1
#define ACK_HEADER		18
#define ACK_COUNT_AT		16

#define SUB_NO_LOCAL		0x01
#define SUB_RETAIN_AS_PUB	0x02

int
walrec_publish_encode(struct buf *b, const struct walrec_publish *p)
{
	buf_add_u8(b, p->format);
	buf_add_u8(b, p->level);
	if (p->format == WALREC_PUBLISH_V2 || p->format == WALREC_PUBLISH_V3 ||
	    p->format == WALREC_PUBLISH_V4) {
		buf_add_u16(b, 0);
		buf_add_u16(b, p->node);
		buf_add_u16(b, 0);
		buf_add_u64(b, p->sid);
		buf_add_u32(b, p->epoch);
		buf_add_u16(b, p->packet_id);
		buf_add_u16(b, p->format == WALREC_PUBLISH_V4 &&
		    p->picks_only ? WALREC_PICKS_ONLY : 0);
		buf_add_u64(b, (uint64_t)p->received);
		if (p->format == WALREC_PUBLISH_V3) {
			if (p->will == 0)
				return -1;
			buf_add_u64(b, p->will);
		}
		if (p->format == WALREC_PUBLISH_V4) {
			if (p->npicks == 0)
				return -1;
			buf_add_u16(b, p->npicks);
			buf_add(b, p->picks, p->picks_len);
		}
	} else if (p->format != WALREC_PUBLISH_V1)
		return -1;
	buf_add(b, p->packet, p->len);
	return buf_failed(b) ? -1 : 0;
}

void
walrec_pick_add(struct buf *b, uint32_t ticket, const uint8_t *filter,
    size_t len)
{
	buf_add_u32(b, ticket);
	buf_add_u16(b, (uint16_t)len);
	buf_add(b, filter, len);
}

int
walrec_pick_next(struct buf_reader *rd, uint32_t *ticket,
    const uint8_t **filter, size_t *len)
{
	if (buf_read_left(rd) == 0)
		return 0;
	*ticket = buf_read_u32(rd);
	*len = buf_read_u16(rd);
	*filter = buf_read_ptr(rd, *len);
	return rd->failed || *len == 0 ? -1 : 1;
}

/* v4's list: u16 n, then n picks, each checked. */
static int
picks_decode(struct buf_reader *rd, struct walrec_publish *p)
{
	struct buf_reader	 list;
	const uint8_t		*start, *f;
	size_t			 flen;
	uint32_t		 ticket;
	uint16_t		 i;

	if ((p->npicks = buf_read_u16(rd)) == 0 || rd->failed)
		return -1;
	start = buf_read_ptr(rd, 0);
	buf_reader_init(&list, start, buf_read_left(rd));
	for (i = 0; i < p->npicks; i++)
		if (walrec_pick_next(&list, &ticket, &f, &flen) != 1)
			return -1;
	p->picks = start;
	p->picks_len = list.off;
	return buf_read_skip(rd, list.off);
}

int
walrec_publish_decode(const uint8_t *data, size_t len, struct walrec_publish *p)
{
	struct buf_reader	 rd;
	uint16_t		 flags;

	memset(p, 0, sizeof(*p));
	buf_reader_init(&rd, data, len);
	p->format = buf_read_u8(&rd);
	p->level = buf_read_u8(&rd);
	if (p->format == WALREC_PUBLISH_V2 || p->format == WALREC_PUBLISH_V3 ||
	    p->format == WALREC_PUBLISH_V4) {
		if (buf_read_u16(&rd) != 0)
			return -1;
		p->node = buf_read_u16(&rd);
		if (buf_read_u16(&rd) != 0)
			return -1;
		p->sid = buf_read_u64(&rd);
		p->epoch = buf_read_u32(&rd);
		p->packet_id = buf_read_u16(&rd);
		flags = buf_read_u16(&rd);
		if (p->format == WALREC_PUBLISH_V4 && flags == WALREC_PICKS_ONLY)
			p->picks_only = 1;
		else if (flags != 0)
			return -1;
		p->received = (int64_t)buf_read_u64(&rd);
		if (p->format == WALREC_PUBLISH_V3 &&
		    (p->will = buf_read_u64(&rd)) == 0)
			return -1;
		if (p->format == WALREC_PUBLISH_V4 &&
		    picks_decode(&rd, p) == -1)
			return -1;
	} else if (p->format != WALREC_PUBLISH_V1)
		return -1;
	if (rd.failed || buf_read_left(&rd) < 2)
		return -1;
	p->len = buf_read_left(&rd);
	p->packet = buf_read_ptr(&rd, p->len);
	return 0;
}

int
walrec_session_encode(struct buf *b, const struct walrec_session *s)
{
	buf_add_u8(b, FORMAT_1);
	buf_add_u8(b, s->op);
	buf_add_u16(b, s->node);
	buf_add_u32(b, s->epoch);
	buf_add_u64(b, s->sid);
	buf_add_u64(b, (uint64_t)s->time);
	buf_add_u32(b, s->expiry);
	buf_add_u8(b, s->level);
	buf_add_u8(b, s->why);
	buf_add_u16(b, s->idlen);
	buf_add(b, s->client_id, s->idlen);
	return buf_failed(b) ? -1 : 0;
}

int
walrec_session_decode(const uint8_t *data, size_t len, struct walrec_session *s)
{
	struct buf_reader	 rd;

	memset(s, 0, sizeof(*s));
	buf_reader_init(&rd, data, len);
	if (buf_read_u8(&rd) != FORMAT_1)
		return -1;
	s->op = buf_read_u8(&rd);
	s->node = buf_read_u16(&rd);
	s->epoch = buf_read_u32(&rd);
	s->sid = buf_read_u64(&rd);
	s->time = (int64_t)buf_read_u64(&rd);
	s->expiry = buf_read_u32(&rd);
	s->level = buf_read_u8(&rd);
	s->why = buf_read_u8(&rd);
	s->idlen = buf_read_u16(&rd);
	s->client_id = buf_read_ptr(&rd, s->idlen);
	if (buf_read_end(&rd) == -1)
		return -1;
	switch (s->op) {
	case WALREC_SESSION_OPEN:
		return s->idlen > 0 ? 0 : -1;
	case WALREC_SESSION_OFFLINE:
	case WALREC_SESSION_END:
		return s->sid != 0 ? 0 : -1;
	default:
		return -1;
	}
}

uint8_t
walrec_sub_flags(const struct sub_options *o)
{
	return (o->no_local ? SUB_NO_LOCAL : 0) |
	    (o->retain_as_published ? SUB_RETAIN_AS_PUB : 0);
}

/* 0, or -1 for a flag that does not exist (nothing is set then). */
int
walrec_sub_flags_set(struct sub_options *o, uint8_t flags)
{
	if ((flags & ~(SUB_NO_LOCAL | SUB_RETAIN_AS_PUB)) != 0)
		return -1;
	o->no_local = (flags & SUB_NO_LOCAL) != 0;
	o->retain_as_published = (flags & SUB_RETAIN_AS_PUB) != 0;
	return 0;
}

int
walrec_subscription_encode(struct buf *b, const struct walrec_subscription *s)
{
	buf_add_u8(b, FORMAT_1);
	buf_add_u8(b, s->op);
	buf_add_u16(b, s->node);
	buf_add_u32(b, s->epoch);
	buf_add_u64(b, s->sid);
	buf_add_u8(b, s->options.qos);
	buf_add_u8(b, walrec_sub_flags(&s->options));
	buf_add_u8(b, s->options.retain_handling);
	buf_add_u8(b, 0);
	buf_add_u32(b, s->options.sub_id);
	buf_add_u16(b, s->len);
	buf_add(b, s->filter, s->len);
	return buf_failed(b) ? -1 : 0;
}

int
walrec_subscription_decode(const uint8_t *data, size_t len,
    struct walrec_subscription *s)
{
	struct buf_reader	 rd;
	uint8_t			 flags;

	memset(s, 0, sizeof(*s));
	buf_reader_init(&rd, data, len);
	if (buf_read_u8(&rd) != FORMAT_1)
		return -1;
	s->op = buf_read_u8(&rd);
	s->node = buf_read_u16(&rd);
	s->epoch = buf_read_u32(&rd);
	s->sid = buf_read_u64(&rd);
	s->options.qos = buf_read_u8(&rd);
	flags = buf_read_u8(&rd);
	s->options.retain_handling = buf_read_u8(&rd);
	if (buf_read_u8(&rd) != 0)
		return -1;
	s->options.sub_id = buf_read_u32(&rd);
	s->len = buf_read_u16(&rd);
	s->filter = buf_read_ptr(&rd, s->len);
	if (buf_read_end(&rd) == -1 || s->len == 0 || s->sid == 0 ||
	    (s->op != WALREC_SUB_ADD && s->op != WALREC_SUB_REMOVE) ||
	    s->options.qos > 2 || s->options.retain_handling > 2)
		return -1;
	return walrec_sub_flags_set(&s->options, flags);
}

int
walrec_ack_begin(struct buf *b, uint16_t node, uint64_t sid, uint32_t epoch)
{
	buf_reset(b);
	buf_add_u8(b, FORMAT_1);
	buf_add_u8(b, 0);
	buf_add_u16(b, node);
	buf_add_u32(b, epoch);
	buf_add_u64(b, sid);
	buf_add_u16(b, 0);
	return buf_failed(b) ? -1 : 0;
}

int
walrec_ack_add(struct buf *b, uint64_t seq, uint8_t state)
{
	buf_add_u64(b, seq);
	buf_add_u8(b, state);
	return buf_failed(b) ? -1 : 0;
}

int
walrec_ack_end(struct buf *b)
{
	size_t	 n;

	if (buf_failed(b) || b->len < ACK_HEADER)
		return -1;
	n = (b->len - ACK_HEADER) / WALREC_ACK_ENTRY;
	if (n == 0 || n > WALREC_ACK_MAX)
		return -1;
	buf_set_u16(b, ACK_COUNT_AT, (uint16_t)n);
	return 0;
}

int
walrec_ack_decode(const uint8_t *data, size_t len, struct walrec_ack *a)
{
	struct buf_reader	 rd;

	memset(a, 0, sizeof(*a));
	buf_reader_init(&rd, data, len);
	if (buf_read_u8(&rd) != FORMAT_1 || buf_read_u8(&rd) != 0)
		return -1;
	a->node = buf_read_u16(&rd);
	a->epoch = buf_read_u32(&rd);
	a->sid = buf_read_u64(&rd);
	a->count = buf_read_u16(&rd);
	a->entries = buf_read_ptr(&rd, (size_t)a->count * WALREC_ACK_ENTRY);
	if (buf_read_end(&rd) == -1 || a->count == 0 || a->sid == 0)
		return -1;
	return 0;
}

void
walrec_ack_entry(const struct walrec_ack *a, uint16_t i, uint64_t *seq,
    uint8_t *state)
{
	const uint8_t	*p = a->entries + (size_t)i * WALREC_ACK_ENTRY;

	*seq = buf_load_u64(p);
	*state = p[8];
}

int
walrec_will_encode(struct buf *b, const struct walrec_will *w)
{
	if (w->idlen == 0 || (w->op == WALREC_WILL_SET) != (w->id == 0) ||
	    (w->op == WALREC_WILL_SET) != (w->len > 0))
		return -1;
	buf_add_u8(b, FORMAT_1);
	buf_add_u8(b, w->op);
	buf_add_u16(b, w->node);
	buf_add_u32(b, w->arg);
	buf_add_u64(b, w->id);
	buf_add_u64(b, (uint64_t)w->time);
	buf_add_u8(b, w->level);
	buf_add_u8(b, 0);
	buf_add_u16(b, w->idlen);
	buf_add(b, w->client_id, w->idlen);
	buf_add(b, w->packet, w->len);
	return buf_failed(b) ? -1 : 0;
}

int
walrec_will_decode(const uint8_t *data, size_t len, struct walrec_will *w)
{
	struct buf_reader	 rd;

	memset(w, 0, sizeof(*w));
	buf_reader_init(&rd, data, len);
	if (buf_read_u8(&rd) != FORMAT_1)
		return -1;
	w->op = buf_read_u8(&rd);
	w->node = buf_read_u16(&rd);
	w->arg = buf_read_u32(&rd);
	w->id = buf_read_u64(&rd);
	w->time = (int64_t)buf_read_u64(&rd);
	w->level = buf_read_u8(&rd);
	if (buf_read_u8(&rd) != 0)
		return -1;
	w->idlen = buf_read_u16(&rd);
	w->client_id = buf_read_ptr(&rd, w->idlen);
	if (rd.failed || w->idlen == 0)
		return -1;
	w->len = buf_read_left(&rd);
	w->packet = buf_read_ptr(&rd, w->len);
	switch (w->op) {
	case WALREC_WILL_SET:
		return w->id == 0 && w->len >= 2 ? 0 : -1;
	case WALREC_WILL_CLEAR:
	case WALREC_WILL_END:
		return w->id != 0 && w->len == 0 ? 0 : -1;
	default:
		return -1;
	}
}

int
walrec_copy_encode(struct buf *b, uint64_t original,
    const struct walrec_publish *p)
{
	buf_add_u8(b, FORMAT_1);
	buf_add_u8(b, 0);
	buf_add_u16(b, 0);
	buf_add_u32(b, 0);
	buf_add_u64(b, original);
	if (buf_failed(b))
		return -1;
	return walrec_publish_encode(b, p);
}

int
walrec_copy_decode(const uint8_t *data, size_t len, struct walrec_copy *c)
{
	struct walrec_publish	 p;

	memset(c, 0, sizeof(*c));
	if (len < WALREC_COPY_HEADER || data[0] != FORMAT_1 || data[1] != 0 ||
	    buf_load_u16(data + 2) != 0 || buf_load_u32(data + 4) != 0)
		return -1;
	c->original = buf_load_u64(data + 8);
	c->publish = data + WALREC_COPY_HEADER;
	c->len = len - WALREC_COPY_HEADER;
	if (c->original == 0 || walrec_publish_decode(c->publish, c->len,
	    &p) == -1)
		return -1;
	return 0;
}

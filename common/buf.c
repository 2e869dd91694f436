/*
 * buf.c - growable byte buffer and bounds-checked reader (see buf.h).
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

/* Forget the contents but keep the memory for the next use. */
void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = 0;
}

/* Make room for at least `extra` more bytes. */
int
buf_reserve(struct buf *b, size_t extra)
{
	size_t	 want, cap;
	uint8_t	*p;

	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		goto fail;
	want = b->len + extra;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL)
		goto fail;
	b->data = p;
	b->cap = cap;
	return 0;
fail:
	b->failed = 1;
	errno = ENOMEM;
	return -1;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int
buf_add_zero(struct buf *b, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	memset(b->data + b->len, 0, n);
	b->len += n;
	return 0;
}

int
buf_add_u8(struct buf *b, uint8_t v)
{
	return buf_add(b, &v, 1);
}

int
buf_add_u16(struct buf *b, uint16_t v)
{
	uint8_t	 p[2];

	buf_store_u16(p, v);
	return buf_add(b, p, sizeof(p));
}

int
buf_add_u32(struct buf *b, uint32_t v)
{
	uint8_t	 p[4];

	buf_store_u32(p, v);
	return buf_add(b, p, sizeof(p));
}

int
buf_add_u64(struct buf *b, uint64_t v)
{
	uint8_t	 p[8];

	buf_store_u64(p, v);
	return buf_add(b, p, sizeof(p));
}

size_t
buf_vbi_size(uint32_t v)
{
	if (v < 128)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 2097152)
		return 3;
	if (v <= BUF_VBI_MAX)
		return 4;
	return 0;
}

/* MQTT variable byte integer: 7 bits a byte, least significant first. */
int
buf_add_vbi(struct buf *b, uint32_t v)
{
	uint8_t	 p[4];
	size_t	 n = 0;

	if (v > BUF_VBI_MAX) {
		/* latched like ENOMEM: the encoding is unusable either way */
		b->failed = 1;
		errno = ERANGE;
		return -1;
	}
	do {
		p[n] = v & 0x7f;
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return buf_add(b, p, n);
}

/* Overwrite a field written earlier (a length known only at the end). */
void
buf_set_u16(struct buf *b, size_t off, uint16_t v)
{
	/* off + 2 could wrap around and pass for a small offset */
	if (!b->failed && off <= b->len && b->len - off >= 2)
		buf_store_u16(b->data + off, v);
}

void
buf_set_u32(struct buf *b, size_t off, uint32_t v)
{
	if (!b->failed && off <= b->len && b->len - off >= 4)
		buf_store_u32(b->data + off, v);
}

/* Drop n bytes from the front. */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Cut back to n bytes (undo a partly written record). */
void
buf_truncate(struct buf *b, size_t n)
{
	if (n < b->len)
		b->len = n;
}

/*
 * Read straight into the buffer, sized from fstat() when the descriptor
 * says: a key read this way leaves no copy on the stack or in a buffer
 * outgrown on the way.
 */
int
buf_load_fd(struct buf *b, int fd)
{
	struct stat	 st;
	size_t		 start = b->len, room;
	ssize_t		 n;
	int		 saved;

	room = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 :
	    8192;
	if (buf_reserve(b, room) == -1) {
		saved = ENOMEM;
		goto fail;
	}
	for (;;) {
		/* grown only when full: a file of the size fstat gave ends
		 * with a read of 0 into the byte left over */
		if (b->len == b->cap && buf_reserve(b, 8192) == -1) {
			saved = ENOMEM;
			goto fail;
		}
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			goto fail;
		}
		b->len += (size_t)n;
	}
fail:
	buf_truncate(b, start);
	b->failed = 0;
	errno = saved;
	return -1;
}

int
buf_load_file(struct buf *b, const char *path)
{
	int	 fd, rv, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	rv = buf_load_fd(b, fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

int
buf_failed(const struct buf *b)
{
	return b->failed;
}

void
buf_reader_init(struct buf_reader *r, const void *p, size_t n)
{
	r->data = p;
	r->len = n;
	r->off = 0;
	r->failed = 0;
}

const uint8_t *
buf_read_ptr(struct buf_reader *r, size_t n)
{
	const uint8_t	*p;

	if (r->failed || n > r->len - r->off) {
		r->failed = 1;
		return NULL;
	}
	p = r->data + r->off;
	r->off += n;
	return p;
}

int
buf_read(struct buf_reader *r, void *out, size_t n)
{
	const uint8_t	*p;

	if ((p = buf_read_ptr(r, n)) == NULL)
		return -1;
	if (n)
		memcpy(out, p, n);
	return 0;
}

int
buf_read_skip(struct buf_reader *r, size_t n)
{
	return buf_read_ptr(r, n) == NULL ? -1 : 0;
}

uint8_t
buf_read_u8(struct buf_reader *r)
{
	const uint8_t	*p = buf_read_ptr(r, 1);

	return p ? p[0] : 0;
}

uint16_t
buf_read_u16(struct buf_reader *r)
{
	const uint8_t	*p = buf_read_ptr(r, 2);

	return p ? buf_load_u16(p) : 0;
}

uint32_t
buf_read_u32(struct buf_reader *r)
{
	const uint8_t	*p = buf_read_ptr(r, 4);

	return p ? buf_load_u32(p) : 0;
}

uint64_t
buf_read_u64(struct buf_reader *r)
{
	const uint8_t	*p = buf_read_ptr(r, 8);

	return p ? buf_load_u64(p) : 0;
}

size_t
buf_read_left(const struct buf_reader *r)
{
	return r->failed ? 0 : r->len - r->off;
}

/* 0 when every byte was read and no read failed, -1 otherwise. */
int
buf_read_end(const struct buf_reader *r)
{
	return (!r->failed && r->off == r->len) ? 0 : -1;
}

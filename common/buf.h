/*
 * buf.h - the one byte buffer of the project, and its reader.
 *
 * struct buf is a growable byte array that encoders append to: the MQTT
 * codec, the IPC envelope, the log record format and the connection
 * output queues all use it.  Multi-byte integers are big-endian (network
 * order) everywhere: on the wire, between processes and on disk.
 *
 * Appends never fail silently: when they cannot append (no memory, a
 * variable byte integer out of range) they return -1 and latch
 * buf->failed, so an encoder may append many fields and check once with
 * buf_failed().
 *
 * struct buf_reader is a bounds-checked cursor over bytes that someone
 * else owns.  Reads past the end return zero and latch reader->failed;
 * buf_read_end() tells whether everything was consumed, nothing more and
 * nothing less (the OpenBSD m_end() idea).
 */
#ifndef PMQ_BUF_H
#define PMQ_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*data;
	size_t	 len;		/* bytes in use, from data[0] */
	size_t	 cap;		/* bytes allocated */
	int	 failed;	/* an append could not allocate */
};

#define BUF_INITIALIZER { NULL, 0, 0, 0 }

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);
int	 buf_reserve(struct buf *, size_t);
int	 buf_add(struct buf *, const void *, size_t);
int	 buf_add_u8(struct buf *, uint8_t);
int	 buf_add_u16(struct buf *, uint16_t);
int	 buf_add_u32(struct buf *, uint32_t);
int	 buf_add_u64(struct buf *, uint64_t);
int	 buf_add_vbi(struct buf *, uint32_t);
int	 buf_add_zero(struct buf *, size_t);
void	 buf_set_u16(struct buf *, size_t, uint16_t);
void	 buf_set_u32(struct buf *, size_t, uint32_t);
void	 buf_consume(struct buf *, size_t);
void	 buf_truncate(struct buf *, size_t);
int	 buf_failed(const struct buf *);
/* Append the whole of a file; 0, or -1 with errno (nothing appended). */
int	 buf_load_file(struct buf *, const char *path);
/* The same from an open descriptor, to its end (it stays open). */
int	 buf_load_fd(struct buf *, int fd);

/* Number of bytes buf_add_vbi() uses for a value (1..4), 0 if too large. */
size_t	 buf_vbi_size(uint32_t);
#define BUF_VBI_MAX 268435455u	/* largest MQTT variable byte integer */

struct buf_reader {
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	int		 failed;	/* a read ran past the end */
};

void		 buf_reader_init(struct buf_reader *, const void *, size_t);
uint8_t		 buf_read_u8(struct buf_reader *);
uint16_t	 buf_read_u16(struct buf_reader *);
uint32_t	 buf_read_u32(struct buf_reader *);
uint64_t	 buf_read_u64(struct buf_reader *);
int		 buf_read(struct buf_reader *, void *, size_t);
const uint8_t	*buf_read_ptr(struct buf_reader *, size_t);
int		 buf_read_skip(struct buf_reader *, size_t);
size_t		 buf_read_left(const struct buf_reader *);
int		 buf_read_end(const struct buf_reader *);

/* Big-endian load/store on raw memory, for fixed-layout headers. */
static inline uint16_t
buf_load_u16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t
buf_load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
buf_load_u64(const uint8_t *p)
{
	return (uint64_t)buf_load_u32(p) << 32 | buf_load_u32(p + 4);
}

static inline void
buf_store_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
buf_store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
buf_store_u64(uint8_t *p, uint64_t v)
{
	buf_store_u32(p, (uint32_t)(v >> 32));
	buf_store_u32(p + 4, (uint32_t)v);
}

#endif /* PMQ_BUF_H */

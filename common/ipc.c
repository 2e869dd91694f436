/*
 * ipc.c - encoding and checked decoding of the IPC envelope (see ipc.h).
 *
 * A batch always starts at offset 0 of its struct buf; the record count
 * in the header is kept current as records are added, so a batch is
 * complete after every ipc_record_add() and ipc_batch_end() only checks.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "ipc.h"

#define OFF_COUNT	6
#define OFF_REC_LEN	4

const char *
ipc_role_name(uint8_t role)
{
	switch (role) {
	case IPC_ROLE_SUPERVISOR:
		return "supervisor";
	case IPC_ROLE_WORKER:
		return "worker";
	case IPC_ROLE_WALSVC:
		return "walsvc";
	case IPC_ROLE_TOOL:
		return "tool";
	case IPC_ROLE_METRICS:
		return "metrics";
	default:
		return "unknown";
	}
}

const char *
ipc_type_name(uint16_t type)
{
	switch (type) {
	case IPC_CTL_HELLO:
		return "CTL_HELLO";
	case IPC_CTL_CONFIG:
		return "CTL_CONFIG";
	case IPC_CTL_PEERS:
		return "CTL_PEERS";
	case IPC_CTL_STOP:
		return "CTL_STOP";
	case IPC_CTL_RELOAD:
		return "CTL_RELOAD";
	case IPC_CTL_REOPEN_LOGS:
		return "CTL_REOPEN_LOGS";
	case IPC_CTL_LISTEN_ADD:
		return "CTL_LISTEN_ADD";
	case IPC_CTL_LISTEN_REMOVE:
		return "CTL_LISTEN_REMOVE";
	case IPC_CTL_ADOPT:
		return "CTL_ADOPT";
	case IPC_CTL_AUTH:
		return "CTL_AUTH";
	case IPC_CTL_FAILURES:
		return "CTL_FAILURES";
	case IPC_CTL_METRICS:
		return "CTL_METRICS";
	case IPC_CTL_READY:
		return "CTL_READY";
	case IPC_CTL_STATUS:
		return "CTL_STATUS";
	case IPC_CTL_FATAL:
		return "CTL_FATAL";
	case IPC_WAL_APPEND:
		return "WAL_APPEND";
	case IPC_WAL_SYNC:
		return "WAL_SYNC";
	case IPC_WAL_DURABLE:
		return "WAL_DURABLE";
	case IPC_WAL_RESEND:
		return "WAL_RESEND";
	case IPC_WAL_FULL:
		return "WAL_FULL";
	case IPC_WAL_REFUSED:
		return "WAL_REFUSED";
	case IPC_REG_CLAIM:
		return "REG_CLAIM";
	case IPC_REG_RELEASE:
		return "REG_RELEASE";
	case IPC_REG_SYNC:
		return "REG_SYNC";
	case IPC_REG_GRANTED:
		return "REG_GRANTED";
	case IPC_REG_KICK:
		return "REG_KICK";
	case IPC_SESS_SUB:
		return "SESS_SUB";
	case IPC_SESS_MSG:
		return "SESS_MSG";
	case IPC_SESS_QOS2:
		return "SESS_QOS2";
	case IPC_RET_LOOKUP:
		return "RET_LOOKUP";
	case IPC_RET_MSG:
		return "RET_MSG";
	case IPC_RET_DONE:
		return "RET_DONE";
	case IPC_WILL_PUBLISH:
		return "WILL_PUBLISH";
	case IPC_REG_SYNC_ASK:
		return "REG_SYNC_ASK";
	case IPC_STORED_SET:
		return "STORED_SET";
	case IPC_STORED_RESET:
		return "STORED_RESET";
	case IPC_SHARE_PUBLISH:
		return "SHARE_PUBLISH";
	case IPC_STORED_ASK:
		return "STORED_ASK";
	case IPC_REG_REFUSED:
		return "REG_REFUSED";
	case IPC_ROUTE_SET:
		return "ROUTE_SET";
	case IPC_ROUTE_ACK:
		return "ROUTE_ACK";
	case IPC_ROUTE_RESET:
		return "ROUTE_RESET";
	case IPC_ROUTE_SYNCED:
		return "ROUTE_SYNCED";
	case IPC_FWD_PUBLISH:
		return "FWD_PUBLISH";
	case IPC_ADM_REQUEST:
		return "ADM_REQUEST";
	case IPC_ADM_ROWS:
		return "ADM_ROWS";
	case IPC_ADM_DONE:
		return "ADM_DONE";
	default:
		return "unknown";
	}
}

const char *
ipc_strerror(int e)
{
	switch (e) {
	case IPC_OK:
		return "ok";
	case IPC_ESHORT:
		return "truncated batch";
	case IPC_EMAGIC:
		return "bad magic";
	case IPC_EVERSION:
		return "envelope version mismatch";
	case IPC_ELONG:
		return "trailing bytes after the last record";
	case IPC_EROLE:
		return "unknown sender role";
	default:
		return "unknown error";
	}
}

int
ipc_batch_begin(struct buf *b, const struct ipc_identity *self,
    uint64_t target_gen)
{
	buf_reset(b);
	buf_add_u32(b, IPC_MAGIC);
	buf_add_u16(b, IPC_VERSION);
	buf_add_u16(b, 0);
	buf_add_u8(b, self->role);
	buf_add_u8(b, 0);
	buf_add_u16(b, self->slot);
	buf_add_u32(b, 0);
	buf_add_u64(b, self->gen);
	buf_add_u64(b, target_gen);
	return buf_failed(b) ? -1 : 0;
}

int
ipc_batch_count(const struct buf *b)
{
	if (b->len < IPC_BATCH_HEADER_SIZE)
		return 0;
	return buf_load_u16(b->data + OFF_COUNT);
}

/*
 * Start a record whose body the caller appends directly to the buffer;
 * returns the record's offset for ipc_record_end().
 */
size_t
ipc_record_begin(struct buf *b, uint16_t type, uint64_t seq, uint64_t corr)
{
	size_t	 start = b->len;

	buf_add_u16(b, type);
	buf_add_u16(b, 0);
	buf_add_u32(b, 0);
	buf_add_u64(b, seq);
	buf_add_u64(b, corr);
	return start;
}

/* Fix the body length of the record at `start` and count it. */
int
ipc_record_end(struct buf *b, size_t start)
{
	size_t	 body;
	int	 count;

	if (buf_failed(b) || b->len < IPC_BATCH_HEADER_SIZE ||
	    start + IPC_RECORD_HEADER_SIZE > b->len)
		return -1;
	count = ipc_batch_count(b);
	body = b->len - start - IPC_RECORD_HEADER_SIZE;
	if (body > UINT32_MAX || count >= IPC_BATCH_MAX_RECORDS) {
		buf_truncate(b, start);
		errno = E2BIG;
		return -1;
	}
	buf_set_u32(b, start + OFF_REC_LEN, (uint32_t)body);
	buf_set_u16(b, OFF_COUNT, (uint16_t)(count + 1));
	return 0;
}

int
ipc_record_add(struct buf *b, uint16_t type, uint64_t seq, uint64_t corr,
    const void *body, size_t len)
{
	size_t	 start;

	start = ipc_record_begin(b, type, seq, corr);
	buf_add(b, body, len);
	if (buf_failed(b)) {
		buf_truncate(b, start);
		return -1;
	}
	return ipc_record_end(b, start);
}

int
ipc_batch_end(struct buf *b)
{
	return (buf_failed(b) || b->len < IPC_BATCH_HEADER_SIZE) ? -1 : 0;
}

int
ipc_batch_open(struct ipc_batch *bt, const void *data, size_t len)
{
	struct buf_reader	*rd = &bt->rd;

	memset(bt, 0, sizeof(*bt));
	buf_reader_init(rd, data, len);
	if (len < 6)
		return len >= 4 && buf_load_u32(data) != IPC_MAGIC ?
		    IPC_EMAGIC : IPC_ESHORT;
	if (buf_read_u32(rd) != IPC_MAGIC)
		return IPC_EMAGIC;
	if (buf_read_u16(rd) != IPC_VERSION)
		return IPC_EVERSION;
	if (len < IPC_BATCH_HEADER_SIZE)
		return IPC_ESHORT;
	bt->count = buf_read_u16(rd);
	bt->sender.role = buf_read_u8(rd);
	(void)buf_read_u8(rd);
	bt->sender.slot = buf_read_u16(rd);
	(void)buf_read_u32(rd);
	bt->sender.gen = buf_read_u64(rd);
	bt->target_gen = buf_read_u64(rd);
	if (bt->sender.role == IPC_ROLE_NONE || bt->sender.role > IPC_ROLE_MAX)
		return IPC_EROLE;
	if (bt->count == 0 && buf_read_left(rd) != 0)
		return IPC_ELONG;
	return IPC_OK;
}

/*
 * The next record, or 0 after the last.  A record whose declared length
 * runs past the batch, or bytes after the last counted record, make the
 * whole batch malformed: records already returned were well-formed, the
 * caller decides whether to keep their effects (a peer that sends a
 * malformed batch is broken either way).
 */
int
ipc_batch_next(struct ipc_batch *bt, struct ipc_record *rec)
{
	struct buf_reader	*rd = &bt->rd;
	uint32_t		 len;

	if (bt->next == bt->count)
		return buf_read_left(rd) == 0 ? 0 : IPC_ELONG;
	if (buf_read_left(rd) < IPC_RECORD_HEADER_SIZE)
		return IPC_ESHORT;
	rec->type = buf_read_u16(rd);
	(void)buf_read_u16(rd);
	len = buf_read_u32(rd);
	rec->seq = buf_read_u64(rd);
	rec->corr = buf_read_u64(rd);
	if (len > buf_read_left(rd))
		return IPC_ESHORT;
	rec->len = len;
	rec->body = buf_read_ptr(rd, len);
	bt->next++;
	return 1;
}

/*
 * Walk a (name\0value\0)* list.  Returns 1 with the next pair, 0 at the
 * end, -1 if the list is not well-formed.
 */
int
ipc_pairs_next(struct buf_reader *rd, const char **name, const char **value)
{
	const uint8_t	*p, *end;
	size_t		 left = buf_read_left(rd);

	if (left == 0)
		return rd->failed ? -1 : 0;
	p = rd->data + rd->off;
	if ((end = memchr(p, '\0', left)) == NULL)
		return -1;
	*name = (const char *)p;
	p = end + 1;
	left -= (size_t)(p - (rd->data + rd->off));
	if ((end = memchr(p, '\0', left)) == NULL)
		return -1;
	*value = (const char *)p;
	buf_read_skip(rd, (size_t)(end + 1 - (rd->data + rd->off)));
	return 1;
}

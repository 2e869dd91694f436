/*
 * adm.h - the requests of promptmqctl and their answers (ADM_*).
 *
 * A request (ADM_REQUEST) is (name\0value\0)*: "cmd" and its parameters.
 * An answer is rows (ADM_ROWS), then ADM_DONE.  One ADM_ROWS record holds
 * one or more rows, each a u16 length and then
 *
 *	section\0 (name\0 T value\0)*		T: 's' text, 'n' number
 *
 * The same records travel from promptmqctl to the supervisor and from
 * the supervisor to the children that answer (docs/architecture.md,
 * "Control socket and promptmqctl").
 */
#ifndef PMQ_ADM_H
#define PMQ_ADM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

/* ADM_DONE's result */
#define ADM_DONE_OK		0
#define ADM_DONE_NOT_FOUND	1	/* nothing by that name, or refused */
#define ADM_DONE_FAILED		2

/* Rows are sent once this many bytes are waiting. */
#define ADM_ROWS_FLUSH		32768
/* The largest body of one record on a control channel. */
#define ADM_BODY_MAX	(IPC_CTL_MAX - IPC_BATCH_HEADER_SIZE - \
			    IPC_RECORD_HEADER_SIZE)

struct adm_rows {
	struct buf	 b;
	size_t		 start;		/* of the row being written */
};

void	 adm_rows_init(struct adm_rows *);
void	 adm_rows_free(struct adm_rows *);
/* A row of `section`; its fields follow, then adm_row_end(). */
void	 adm_row_begin(struct adm_rows *, const char *section);
void	 adm_str(struct adm_rows *, const char *name, const char *value);
/* Bytes that may hold anything: a NUL or a control character is shown
 * as '?', so a row stays parseable and a terminal safe. */
void	 adm_bytes(struct adm_rows *, const char *name, const void *, size_t);
void	 adm_num(struct adm_rows *, const char *name, int64_t value);
/* value / 1000, with three decimals */
void	 adm_milli(struct adm_rows *, const char *name, int64_t value);
void	 adm_row_end(struct adm_rows *);
/* 1 when the rows waiting should be sent (or `force` and any wait). */
int	 adm_rows_due(const struct adm_rows *, int force);

/* Over a control channel: the rows waiting (then none wait), and the
 * answer's end with its result and message. */
struct ctl_channel;
void	 adm_send_rows(struct ctl_channel *, uint64_t corr, struct adm_rows *);
void	 adm_send_done(struct ctl_channel *, uint64_t corr, uint8_t result,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A parameter of a request, or NULL; -1 from adm_pairs_valid() when
 * the body is not (name\0value\0)* (ipc_pairs_next()). */
int	 adm_pairs_valid(const uint8_t *body, size_t len);
const char *adm_param(const uint8_t *body, size_t len, const char *name);

/* Walking the rows of an ADM_ROWS body. */
struct adm_field {
	const char	*name;
	const char	*value;
	char		 type;		/* 's' or 'n' */
};

struct adm_reader {
	const uint8_t	*p, *end;
};

void	 adm_reader_init(struct adm_reader *, const uint8_t *, size_t);
/*
 * The next row: its section and up to `max` fields.  1 with a row, 0 at
 * the end, -1 when the body is malformed.
 */
int	 adm_next_row(struct adm_reader *, const char **section,
	    struct adm_field *, size_t max, size_t *nfields);

#endif /* PMQ_ADM_H */

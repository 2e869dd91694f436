/*
 * waldump.c - promptmq-waldump: print the records of a message log.
 *
 * For operators and tests, in the spirit of PostgreSQL's pg_waldump: one
 * key=value line per record, or per-type totals with --stats, then one
 * summary line.  The log is opened read-only through the same recovery
 * code walsvc uses, so damage is reported exactly as walsvc would find
 * it ("would be truncated"), but nothing is ever truncated, renamed or
 * synced: the tool is safe to run beside a live walsvc.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "mqtt.h"
#include "wal.h"
#include "wal_format.h"
#include "walrec.h"

#define WALDUMP_PREVIEW		32	/* payload bytes shown per record */

#define WALDUMP_EXIT_OK		0
#define WALDUMP_EXIT_ERROR	1
#define WALDUMP_EXIT_USAGE	2
#define WALDUMP_EXIT_DAMAGED	3

static const char waldump_manual[] =
"NAME\n"
"    promptmq-waldump - print the records of a PromptMQ message log\n"
"\n"
"SYNOPSIS\n"
"    promptmq-waldump [-s] [--from LSN] [--to LSN] [--type TYPE] WALDIR\n"
"    promptmq-waldump -h\n"
"\n"
"DESCRIPTION\n"
"    Reads the segment files in WALDIR (storage.wal-dir, by default\n"
"    DATA-DIR/wal) and prints one line per record:\n"
"\n"
"      lsn=12 type=publish role=worker slot=3 gen=7 seq=42 len=64 payload=...\n"
"\n"
"    payload is the first 32 bytes, quoted when they are printable text\n"
"    and in hex otherwise, followed by ... when there is more.  Records\n"
"    whose payload format is known are decoded first: a publish shows\n"
"    its publisher's session (sid=, epoch=), packet_id=, received= (ms\n"
"    since 1970), qos=, retain=, topic_len= and, as payload, the\n"
"    message's own bytes;\n"
"    session, subscription and ack records show their fields.  flags=\n"
"    appears when a record has flags.  A final line starting with\n"
"    \"summary\" counts segments, records and bytes and says what walsvc's\n"
"    recovery would do with the log: recovery=clean, truncated-tail (a\n"
"    crash tore the last records, which were never acknowledged) or\n"
"    set-aside (damage before the last segment).\n"
"\n"
"    The log is only read: nothing is truncated, renamed or synced, so the\n"
"    tool may run while walsvc is using the log.\n"
"\n"
"OPTIONS\n"
"    -s, --stats     per record type: records, payload and record bytes,\n"
"                    instead of one line per record\n"
"    --from LSN      start at this log sequence number\n"
"    --to LSN        stop after this log sequence number\n"
"    --type TYPE     only records of TYPE: publish, session, subscription,\n"
"                    retained, ack, or a number 1-255\n"
"    -h, --help      this text\n"
"\n"
"EXIT STATUS\n"
"    0  the log was read; a torn tail is reported but is normal after a\n"
"       crash\n"
"    1  the log could not be read (missing or unreadable directory, I/O\n"
"       error, a format version this build does not know)\n"
"    2  bad usage\n"
"    3  the log is damaged beyond a torn tail: records walsvc once synced\n"
"       are unreadable, and recovery would set segments aside\n"
"\n"
"EXAMPLES\n"
"    promptmq-waldump /var/lib/promptmq/wal | tail -n 20\n"
"    promptmq-waldump --type retained --from 1000 /var/lib/promptmq/wal\n"
"    promptmq-waldump -s /var/lib/promptmq/wal\n";

struct waldump_options {
	const char	*dir;
	uint64_t	 from;
	uint64_t	 to;
	int		 type;		/* 0: all */
	int		 stats;
};

struct waldump_type_stats {
	uint64_t	records;
	uint64_t	payload_bytes;
	uint64_t	record_bytes;
};

static void
waldump_usage(void)
{
	fprintf(stderr, "usage: promptmq-waldump [-s] [--from LSN] [--to LSN] "
	    "[--type TYPE] WALDIR\n       promptmq-waldump -h for the "
	    "manual\n");
	exit(WALDUMP_EXIT_USAGE);
}

static uint64_t
waldump_parse_lsn(const char *option, const char *s)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0) {
		fprintf(stderr, "promptmq-waldump: %s: '%s' is not a log "
		    "sequence number\n", option, s);
		waldump_usage();
	}
	return (uint64_t)v;
}

static void
waldump_parse(int argc, char **argv, struct waldump_options *o)
{
	static const struct option longopts[] = {
		{ "stats", no_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "type", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int	 c;

	memset(o, 0, sizeof(*o));
	o->to = UINT64_MAX;
	while ((c = getopt_long(argc, argv, "sh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->stats = 1;
			break;
		case 'f':
			o->from = waldump_parse_lsn("--from", optarg);
			break;
		case 't':
			o->to = waldump_parse_lsn("--to", optarg);
			break;
		case 'T':
			if ((o->type = wal_type_parse(optarg)) == -1) {
				fprintf(stderr, "promptmq-waldump: --type: "
				    "unknown record type '%s'\n", optarg);
				waldump_usage();
			}
			break;
		case 'h':
			fputs(waldump_manual, stdout);
			exit(WALDUMP_EXIT_OK);
		default:
			waldump_usage();
		}
	}
	if (optind != argc - 1)
		waldump_usage();
	o->dir = argv[optind];
}

static void
waldump_payload(const uint8_t *p, uint32_t len)
{
	uint32_t	 i, n = len < WALDUMP_PREVIEW ? len : WALDUMP_PREVIEW;
	int		 text = n > 0;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			text = 0;
	fputs(" payload=", stdout);
	if (text) {
		putchar('"');
		for (i = 0; i < n; i++) {
			if (p[i] == '"' || p[i] == '\\')
				putchar('\\');
			putchar(p[i]);
		}
		putchar('"');
	} else
		for (i = 0; i < n; i++)
			printf("%02x", p[i]);
	if (len > n)
		fputs("...", stdout);
}

/* A format 4 publish: the shared groups walsvc places it with. */
static void
waldump_picks(const struct walrec_publish *pub)
{
	struct buf_reader	 rd;
	const uint8_t		*f;
	size_t			 flen;
	uint32_t		 k;

	printf(" picks_only=%u picks=", pub->picks_only);
	buf_reader_init(&rd, pub->picks, pub->picks_len);
	while (walrec_pick_next(&rd, &k, &f, &flen) == 1)
		printf("%s%" PRIu32 ":%.*s", rd.off == 6 + flen ? "" : ",", k,
		    (int)flen, (const char *)f);
}

/*
 * The fields of a payload in a known format; 1 if it was one, with the
 * bytes to preview in *p, *len (the message for a publish, nothing for
 * the others).
 */
static int
waldump_decoded(const struct wal_record *rec, const uint8_t **p, size_t *len)
{
	struct walrec_publish		 pub;
	struct walrec_session		 ses;
	struct walrec_subscription	 sub;
	struct walrec_ack		 ack;
	struct walrec_copy		 copy;
	struct walrec_will		 will;
	struct mqtt_packet		 pkt;

	static const char *const	 will_ops[] = { "?", "set", "clear",
					    "end" };

	*p = NULL;
	*len = 0;
	switch (rec->type) {
	case WAL_TYPE_PUBLISH:
	case WAL_TYPE_COPY:
		if (rec->type == WAL_TYPE_COPY) {
			if (walrec_copy_decode(rec->payload, rec->length,
			    &copy) == -1 || walrec_publish_decode(copy.publish,
			    copy.len, &pub) == -1)
				return 0;
			printf(" original=%" PRIu64, copy.original);
		} else if (walrec_publish_decode(rec->payload, rec->length,
		    &pub) == -1)
			return 0;
		if (mqtt_decode_stored_publish(pub.packet, pub.len, pub.level,
		    &pkt) == -1)
			return 0;
		printf(" format=%u level=%u", pub.format, pub.level);
		if (pub.format >= WALREC_PUBLISH_V2)
			printf(" node=%u sid=%" PRIu64 " epoch=%" PRIu32
			    " packet_id=%u received=%" PRId64, pub.node,
			    pub.sid, pub.epoch, pub.packet_id, pub.received);
		if (pub.format == WALREC_PUBLISH_V3)
			printf(" will=%" PRIu64, pub.will);
		if (pub.format == WALREC_PUBLISH_V4)
			waldump_picks(&pub);
		printf(" qos=%u retain=%u topic_len=%zu", pkt.publish.qos,
		    pkt.publish.retain, pkt.publish.topic.len);
		*p = pkt.publish.payload.data;
		*len = pkt.publish.payload.len;
		return 1;
	case WAL_TYPE_SESSION:
		if (walrec_session_decode(rec->payload, rec->length, &ses) ==
		    -1)
			return 0;
		printf(" op=%s node=%u sid=%" PRIu64 " epoch=%" PRIu32
		    " time=%" PRId64 " expiry=%" PRIu32, ses.op ==
		    WALREC_SESSION_OPEN ? "open" : ses.op ==
		    WALREC_SESSION_OFFLINE ? "offline" : "end", ses.node,
		    ses.sid, ses.epoch, ses.time, ses.expiry);
		if (ses.op == WALREC_SESSION_END)
			printf(" why=%u", ses.why);
		*p = ses.client_id;
		*len = ses.idlen;
		return 1;
	case WAL_TYPE_SUBSCRIPTION:
		if (walrec_subscription_decode(rec->payload, rec->length,
		    &sub) == -1)
			return 0;
		printf(" op=%s node=%u sid=%" PRIu64 " epoch=%" PRIu32
		    " qos=%u", sub.op == WALREC_SUB_ADD ? "add" : "remove",
		    sub.node, sub.sid, sub.epoch, sub.options.qos);
		*p = sub.filter;
		*len = sub.len;
		return 1;
	case WAL_TYPE_ACK:
		if (walrec_ack_decode(rec->payload, rec->length, &ack) == -1)
			return 0;
		printf(" node=%u sid=%" PRIu64 " epoch=%" PRIu32 " count=%u",
		    ack.node, ack.sid, ack.epoch, ack.count);
		*p = ack.entries;
		*len = (size_t)ack.count * WALREC_ACK_ENTRY;
		return 1;
	case WAL_TYPE_WILL:
		if (walrec_will_decode(rec->payload, rec->length, &will) == -1)
			return 0;
		printf(" op=%s node=%u", will_ops[will.op], will.node);
		if (will.op == WALREC_WILL_SET)
			printf(" delay=%" PRIu32 " level=%u will_len=%zu", will.arg,
			    will.level, will.len);
		else
			printf(" will=%" PRIu64 " %s=%" PRIu32, will.id,
			    will.op == WALREC_WILL_END ? "expiry" : "why",
			    will.arg);
		if (will.op == WALREC_WILL_END)
			printf(" time=%" PRId64, will.time);
		*p = will.client_id;
		*len = will.idlen;
		return 1;
	default:
		return 0;
	}
}

static void
waldump_record(const struct wal_record *rec)
{
	const uint8_t	*p;
	size_t		 len;

	const char	*type = wal_type_name(rec->type);
	const char	*role = ipc_role_name(rec->origin.role);

	printf("lsn=%" PRIu64, rec->lsn);
	if (type != NULL)
		printf(" type=%s", type);
	else
		printf(" type=%u", rec->type);
	if (strcmp(role, "unknown") != 0)
		printf(" role=%s", role);
	else
		printf(" role=%u", rec->origin.role);
	printf(" slot=%u gen=%" PRIu64 " seq=%" PRIu64 " len=%" PRIu32,
	    rec->origin.slot, rec->origin.generation, rec->origin.sequence,
	    rec->length);
	if (rec->flags != 0)
		printf(" flags=0x%04x", rec->flags);
	if (waldump_decoded(rec, &p, &len))
		waldump_payload(p, (uint32_t)len);
	else
		waldump_payload(rec->payload, rec->length);
	putchar('\n');
}

static void
waldump_stats(const struct waldump_type_stats *stats)
{
	uint64_t	 total = 0;
	const char	*name;
	int		 t;

	for (t = 1; t < 256; t++)
		total += stats[t].record_bytes;
	for (t = 1; t < 256; t++) {
		if (stats[t].records == 0)
			continue;
		if ((name = wal_type_name((uint8_t)t)) != NULL)
			printf("type=%s", name);
		else
			printf("type=%d", t);
		printf(" records=%" PRIu64 " payload_bytes=%" PRIu64
		    " record_bytes=%" PRIu64 " share=%.1f%%\n",
		    stats[t].records, stats[t].payload_bytes,
		    stats[t].record_bytes,
		    total ? 100.0 * (double)stats[t].record_bytes /
		    (double)total : 0.0);
	}
}

/* The closing line: what was read, and what recovery would do. */
static void
waldump_summary(const struct wal_recovery *rep, uint64_t shown)
{
	printf("summary segments=%" PRIu32 " records=%" PRIu64 " shown=%"
	    PRIu64 " first_lsn=%" PRIu64 " last_lsn=%" PRIu64 " bytes=%"
	    PRIu64 " recovery=%s", rep->segments, rep->records, shown,
	    rep->first_lsn, rep->last_lsn, rep->bytes,
	    wal_recovery_action_name(rep->action));
	if (rep->action != WAL_RECOVERY_CLEAN)
		printf(" damage=%s damage_segment=%s damage_offset=%" PRIu64
		    " bytes_truncated=%" PRIu64 " segments_set_aside=%" PRIu32
		    " records_after_damage=%d why=\"%s\"",
		    wal_damage_name(rep->damage), rep->damage_segment,
		    rep->damage_offset, rep->bytes_truncated,
		    rep->segments_set_aside, rep->records_after_damage,
		    rep->why);
	putchar('\n');
}

int
main(int argc, char **argv)
{
	static struct waldump_type_stats stats[256];
	struct waldump_options	 o;
	struct wal_options	 wo = { 0, WAL_OPEN_READONLY };
	struct wal_recovery	 rep;
	struct wal_storage	*st;
	struct wal_record	 rec;
	struct wal_iter		*it;
	struct wal		*wal;
	char			 err[512];
	uint64_t		 shown = 0;
	int			 rc, status = WALDUMP_EXIT_OK;

	log_init("waldump", -1);
	/* The summary line says what recovery found; its warnings and
	 * errors go to stderr as well, the info lines would only be noise. */
	(void)log_configure("warn", NULL, NULL, NULL, err, sizeof(err));
	waldump_parse(argc, argv, &o);

	if ((rc = wal_storage_file_open(&st, o.dir,
	    WAL_STORAGE_FILE_READONLY)) != 0) {
		fprintf(stderr, "promptmq-waldump: cannot open log directory "
		    "%s: %s\n", o.dir, strerror(-rc));
		return WALDUMP_EXIT_ERROR;
	}
	if ((rc = wal_open(&wal, st, &wo, &rep, err, sizeof(err))) != 0) {
		fprintf(stderr, "promptmq-waldump: %s\n", err);
		wal_storage_destroy(st);
		return WALDUMP_EXIT_ERROR;
	}
	if ((rc = wal_iter_open(&it, wal, o.from)) != 0) {
		fprintf(stderr, "promptmq-waldump: %s: %s\n", o.dir,
		    strerror(-rc));
		status = WALDUMP_EXIT_ERROR;
		goto done;
	}
	while ((rc = wal_iter_next(it, &rec)) == 1) {
		if (rec.lsn > o.to)
			break;
		if (o.type != 0 && rec.type != o.type)
			continue;
		shown++;
		if (o.stats) {
			stats[rec.type].records++;
			stats[rec.type].payload_bytes += rec.length;
			stats[rec.type].record_bytes +=
			    wal_record_size(rec.length);
		} else
			waldump_record(&rec);
	}
	if (rc < 0) {
		fprintf(stderr, "promptmq-waldump: %s: reading records: %s\n",
		    o.dir, strerror(-rc));
		status = WALDUMP_EXIT_ERROR;
	}
	wal_iter_close(it);
	if (o.stats)
		waldump_stats(stats);
	waldump_summary(&rep, shown);
	if (status == WALDUMP_EXIT_OK &&
	    (rep.action == WAL_RECOVERY_SET_ASIDE || rep.records_after_damage))
		status = WALDUMP_EXIT_DAMAGED;
done:
	wal_close(wal);
	wal_storage_destroy(st);
	if (fflush(stdout) != 0 && status == WALDUMP_EXIT_OK)
		status = WALDUMP_EXIT_ERROR;
	return status;
}

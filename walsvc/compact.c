/*
 * compact.c - giving the log's disk space back, and the disk bound.
 *
 * A segment can go once nothing in it is needed: every record in it is
 * applied to the index for good, and no message in it is still held
 * (queued for a session, retained).  Once a second:
 *   1) the oldest location of a held message and the index's position
 *      bound what may go;
 *   2) if the oldest segment is still needed only because of a few old
 *      messages (a retained message that never changes, the first of a
 *      backlog) while the log grows past COMPACT_PINNED segments, those
 *      messages are copied forward (copy records) so that the segment
 *      can go at the next pass; not when they fill more than a quarter
 *      of it (a backlog that is the log): copying would write as much as
 *      it frees;
 *   3) before segments are removed the index is made durable (its log
 *      flushed, a checkpoint), so a crash never needs a removed record.
 * What a removed segment held of the append streams' sequences, the
 * index keeps (streams.db).
 *
 * storage.max-disk: the log's segments and the index's files are
 * measured at each pass; over the bound, the workers are told to refuse
 * new QoS 1 and 2 messages (WAL_FULL) until compaction brings it back
 * under.  Everything else (acknowledgements, sessions, copies) goes on,
 * so the log can always drain.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "walsvc.h"

#define COMPACT_PINNED	4	/* segments before old messages move on */
#define COMPACT_COPIES	10000	/* messages copied forward per pass */
#define INDEX_ROOM	(2u << 20)	/* free bytes before a failed index
					   is tried again */

/* Bytes of the files in the index directory. */
uint64_t
index_disk_bytes(const char *dir)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 path[PATH_MAX];
	uint64_t	 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			n += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

uint64_t
compact_storage_bytes(struct walsvc *ws)
{
	return wal_disk_bytes(ws->wal) + index_disk_bytes(ws->index_dir);
}

/* Tell every running worker whether new messages may be taken. */
static void
tell_workers(struct walsvc *ws)
{
	struct ipc_link	*link;
	uint8_t		 full = ws->disk_full ? 1 : 0;
	size_t		 i = 0;

	while ((link = walsvc_next_worker(ws, &i)) != NULL)
		ipc_link_send(link, IPC_WAL_FULL, 0, 0, &full, 1);
}

static void
check_disk(struct walsvc *ws)
{
	uint64_t	 max = (uint64_t)config_num(&ws->proc->cfg,
			    OPT_storage_max_disk);
	uint64_t	 used;
	int		 full;

	if (max == 0) {
		full = 0;
		used = 0;
	} else {
		used = compact_storage_bytes(ws);
		full = used > max;
	}
	if (full != ws->disk_full) {
		ws->disk_full = full;
		if (full)
			log_warnx("storage.max-disk reached; new QoS 1 and 2 "
			    "messages are refused until compaction frees "
			    "space", "used_bytes=%llu max_bytes=%llu",
			    (unsigned long long)used, (unsigned long long)max);
		else
			log_notice("disk use back under storage.max-disk; "
			    "messages taken again", "used_bytes=%llu "
			    "max_bytes=%llu", (unsigned long long)used,
			    (unsigned long long)max);
	}
	/* said again every pass: a worker that just started hears it too */
	if (ws->disk_full || full != ws->told_full) {
		tell_workers(ws);
		ws->told_full = full;
	}
}

static void
compact(struct walsvc *ws)
{
	uint64_t	 oldest, limit, second, held;
	uint32_t	 removed;
	int		 rv, copied;

	if (wal_segment_count(ws->wal) < 2 || !index_usable(ws->index))
		return;
	second = wal_segment_start(ws->wal, 1);
	oldest = bodies_oldest(ws, second, &held);
	limit = ws->applied_lsn + 1;
	if (oldest < limit)
		limit = oldest;
	if (limit < second) {
		/* the oldest segment is held: by a few old messages only? */
		if (oldest < second && ws->applied_lsn + 1 >= second &&
		    (wal_segment_count(ws->wal) > COMPACT_PINNED ||
		    ws->disk_full) && held * 4 <= (uint64_t)config_num(
		    &ws->proc->cfg, OPT_storage_wal_segment_size)) {
			copied = bodies_copy_below(ws, second, COMPACT_COPIES);
			if (copied > 0)
				log_info("old messages copied forward so their "
				    "segment can go", "messages=%d "
				    "segment_start=%llu", copied,
				    (unsigned long long)wal_segment_start(
				    ws->wal, 0));
		}
		return;
	}
	if (index_sync(ws->index) == -1)
		return;
	if ((rv = wal_remove_below(ws->wal, limit, &removed)) != 0)
		log_warnx("cannot remove log segments", "error=\"%s\"",
		    strerror(-rv));
}

/*
 * An index update was lost (a full disk, an I/O error) and nothing is
 * committed since: only a replay of the log from the index's position
 * brings it back, which is what a new walsvc does.  On a full disk that
 * waits until the disk has room again (the broker serves meanwhile, the
 * log permitting); otherwise it is now.  Workers keep and send again
 * whatever was not yet acknowledged.
 */
static void
index_heal(struct walsvc *ws)
{
	static struct log_ratelimit	 rl;
	struct statvfs			 sv;
	int				 err = index_error(ws->index);
	uint64_t			 room;

	if (index_usable(ws->index))
		return;
	if ((err == ENOSPC || err == EDQUOT) &&
	    statvfs(ws->index_dir, &sv) == 0) {
		room = (uint64_t)sv.f_bavail * sv.f_frsize;
		if (room < INDEX_ROOM) {
			log_limited(&rl, LOG_LEVEL_WARN, "the index waits for "
			    "disk space; nothing is committed or compacted "
			    "until then", "dir=%s free_bytes=%llu",
			    ws->index_dir, (unsigned long long)room);
			return;
		}
	}
	fatalx("the index could not be updated; walsvc restarts to replay "
	    "the log into it", "code=%d", err);
}

static void
compact_cb(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc	*ws = arg;

	index_heal(ws);
	compact(ws);
	check_disk(ws);
}

int
compact_start(struct walsvc *ws)
{
	struct timeval	 second = { 1, 0 };

	if ((ws->compact_timer = event_new(ws->base, -1, EV_PERSIST,
	    compact_cb, ws)) == NULL ||
	    event_add(ws->compact_timer, &second) == -1)
		return -1;
	return 0;
}

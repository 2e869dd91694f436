/*
 * walsvc.c - promptmq-walsvc: the durable state of the broker.
 *
 * Start-up, once the supervisor's configuration has arrived:
 *   1) open the message log in storage.wal-dir and recover it: a torn or
 *      corrupt tail is cut and reported, never a reason not to start;
 *   2) open the Berkeley DB index in DATA-DIR/index, load the stored
 *      sessions, their queues and the retained messages from it, and
 *      replay the log from the last position the index applied; then
 *      read the bodies of the queued and retained messages from the log;
 *   3) open the IPC endpoint and answer READY with the highest worker
 *      generation the log and the index know, so the supervisor never
 *      hands out a generation whose appends the log already holds.
 *      Claims wait until the workers that survived an earlier walsvc
 *      have listed their clients (registry.c).
 * If the log or the index cannot be opened at all, walsvc exits with the
 * do-not-respawn status: the broker stops rather than acknowledge
 * messages it cannot keep.
 *
 * Tests only: with PMQ_TEST_WALSVC_GATE naming a file that exists when
 * step 3 is due, walsvc holds there until the file is removed, so that
 * a test can act while a new walsvc is known to the workers but does
 * not listen yet (a long recovery, without the wait).
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "ipc_link.h"
#include "log.h"
#include "proc.h"
#include "wal.h"
#include "walsvc.h"

#define GATE_POLL_MS	10

static void	walsvc_serve(struct walsvc *);
static void	hold_at_gate(struct walsvc *);

static struct walsvc	 walsvc;
static struct event	*gate_ev;
static const char	*gate_path;
static int64_t		 gate_started;

/*
 * The link to (role, slot), aimed at generation `gen`: one link per
 * sender, opened on first use.  Replies go to the newest incarnation
 * only; for an older one (dead) there is no link (NULL).
 */
struct ipc_link *
walsvc_reply_link(struct walsvc *ws, uint8_t role, uint16_t slot, uint64_t gen)
{
	struct reply_link	*rl;
	char			 path[IPC_PATH_MAX + 1], err[256];

	for (rl = ws->links; rl; rl = rl->next)
		if (rl->role == role && rl->slot == slot)
			break;
	if (rl == NULL) {
		if (proc_endpoint_path(ws->proc, path, sizeof(path), role,
		    slot) == -1 || (rl = calloc(1, sizeof(*rl))) == NULL)
			return NULL;
		if ((rl->link = ipc_link_open(ws->base, path, &ws->proc->self,
		    err, sizeof(err))) == NULL) {
			log_warnx("cannot open reply link", "error=\"%s\"", err);
			free(rl);
			return NULL;
		}
		rl->role = role;
		rl->slot = slot;
		rl->next = ws->links;
		ws->links = rl;
	}
	if (gen < rl->gen)
		return NULL;
	if (gen != rl->gen) {
		rl->gen = gen;
		ipc_link_discard(rl->link);
		ipc_link_set_target_gen(rl->link, gen);
	}
	return rl->link;
}

/*
 * The link to the first running worker at or after peer *i, NULL when
 * there is none; *i moves past it, so that a loop visits each once.
 */
struct ipc_link *
walsvc_next_worker(struct walsvc *ws, size_t *i)
{
	const struct proc_peer	*p;
	struct ipc_link		*link;

	while (*i < ws->proc->npeers) {
		p = &ws->proc->peers[(*i)++];
		if (p->role == IPC_ROLE_WORKER && p->up &&
		    (link = walsvc_reply_link(ws, IPC_ROLE_WORKER, p->slot,
		    p->gen)) != NULL)
			return link;
	}
	return NULL;
}

static void
report_recovery(const struct wal_recovery *r, const char *dir)
{
	switch (r->action) {
	case WAL_RECOVERY_CLEAN:
		log_info("message log recovered", "dir=%s segments=%u "
		    "records=%llu last_lsn=%llu", dir, r->segments,
		    (unsigned long long)r->records,
		    (unsigned long long)r->last_lsn);
		break;
	case WAL_RECOVERY_TRUNCATED_TAIL:
		log_warnx("message log tail damaged and truncated", "dir=%s "
		    "segment=%s offset=%llu damage=%s bytes_truncated=%llu "
		    "last_lsn=%llu why=\"%s\"", dir, r->damage_segment,
		    (unsigned long long)r->damage_offset,
		    wal_damage_name(r->damage),
		    (unsigned long long)r->bytes_truncated,
		    (unsigned long long)r->last_lsn, r->why);
		break;
	case WAL_RECOVERY_SET_ASIDE:
		log_error("message log damaged before its tail; later segments "
		    "set aside as *.corrupt", "dir=%s segment=%s offset=%llu "
		    "damage=%s set_aside=%u last_lsn=%llu why=\"%s\"", dir,
		    r->damage_segment, (unsigned long long)r->damage_offset,
		    wal_damage_name(r->damage), r->segments_set_aside,
		    (unsigned long long)r->last_lsn, r->why);
		break;
	}
}

void
progress_start(struct progress *pg, const char *step)
{
	pg->step = step;
	pg->start = clock_mono_ms();
	pg->next = pg->start + 1000;
}

/* done: items so far (the clock is read every 4096); total 0: unknown */
void
progress_note(struct progress *pg, uint64_t done, uint64_t total)
{
	int64_t	now;

	if ((done & 4095) != 0 || (now = clock_mono_ms()) < pg->next)
		return;
	pg->next = now + 1000;
	if (total > 0)
		log_info("recovery in progress", "step=\"%s\" done=%llu "
		    "total=%llu percent=%llu elapsed_ms=%lld", pg->step,
		    (unsigned long long)done, (unsigned long long)total,
		    (unsigned long long)(done * 100 / total),
		    (long long)(now - pg->start));
	else
		log_info("recovery in progress", "step=\"%s\" done=%llu "
		    "elapsed_ms=%lld", pg->step, (unsigned long long)done,
		    (long long)(now - pg->start));
}

/*
 * An index we may not read or write is an operator's problem, not a
 * damaged index: say which file, and stop.
 */
static void
check_index_access(struct walsvc *ws)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX + 256];

	if ((d = opendir(ws->index_dir)) == NULL || access(ws->index_dir,
	    R_OK | W_OK | X_OK) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot access the index "
		    "directory", "dir=%s error=\"%s\"", ws->index_dir,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", ws->index_dir,
		    de->d_name);
		if (access(path, R_OK | W_OK) == -1 && errno != ENOENT)
			fatal_status(PMQ_EXIT_NORESPAWN, "cannot access an "
			    "index file", "file=%s error=\"%s\"", path,
			    strerror(errno));
	}
	closedir(d);
}

/* Forget what a failed load_state() built. */
static void
unload_state(struct walsvc *ws)
{
	sessions_close(ws);
	wills_close(ws);
	retained_close(ws);
	bodies_close(ws);
	index_close(ws->index);
	ws->index = NULL;
}

/*
 * Open the index and bring it, and what walsvc keeps in memory, up to
 * the end of the log.  -1: the index cannot be opened or read (logged),
 * -2: the storage refused (full, failing: not the index's fault);
 * everything is unloaded again.
 */
static int
load_state(struct walsvc *ws, uint64_t cache)
{
	char	err[512];
	int	rv;

	if (mkdir(ws->index_dir, 0750) == -1 && errno != EEXIST)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot create the index "
		    "directory", "dir=%s error=\"%s\"", ws->index_dir,
		    strerror(errno));
	check_index_access(ws);
	if ((rv = index_open(&ws->index, ws->index_dir, cache, err,
	    sizeof(err))) != 0) {
		log_error("cannot open the index", "dir=%s error=\"%s\"",
		    ws->index_dir, err);
		ws->index = NULL;
		return index_storage_error(rv) ? -2 : -1;
	}
	ws->applied_lsn = index_applied_lsn(ws->index);
	if (ws->applied_lsn > wal_written_lsn(ws->wal)) {
		/* the log lost a tail the index had seen: replay all */
		log_warnx("index is ahead of the log; rebuilding from the "
		    "start of the log", "applied_lsn=%llu log_lsn=%llu",
		    (unsigned long long)ws->applied_lsn,
		    (unsigned long long)wal_written_lsn(ws->wal));
		ws->applied_lsn = 0;
		if (index_clear_derived(ws->index) == -1)
			goto fail;
	}
	if (bodies_open(ws) == -1 || sessions_open(ws) == -1 ||
	    retained_open(ws) == -1 || wills_open(ws) == -1 ||
	    bodies_load_locations(ws) == -1) {
		log_error("cannot load the stored sessions, retained messages "
		    "and wills from the index", "dir=%s", ws->index_dir);
		goto fail;
	}
	if (append_replay(ws) == -1 || bodies_load(ws) == -1)
		goto fail;
	sessions_drop_missing(ws);
	if (retained_finish_load(ws) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "out of memory loading "
		    "retained messages", "");
	return 0;
fail:
	rv = index_storage_error(index_error(ws->index)) ? -2 : -1;
	unload_state(ws);
	return rv;
}

/*
 * The index cannot be read: it is kept aside for the operator and built
 * again from the log.  Everything the log still holds comes back; what
 * compaction removed from the log lived only in the index.
 */
static void
set_index_aside(struct walsvc *ws)
{
	char		aside[PATH_MAX + 32];
	uint64_t	first = wal_first_lsn(ws->wal);

	snprintf(aside, sizeof(aside), "%s.corrupt-%lld", ws->index_dir,
	    (long long)clock_wall_ms());
	if (rename(ws->index_dir, aside) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot set the unreadable "
		    "index aside", "dir=%s to=%s error=\"%s\"", ws->index_dir,
		    aside, strerror(errno));
	log_error("the index is unreadable; it is kept aside and rebuilt from "
	    "the log", "dir=%s kept_as=%s log_first_lsn=%llu", ws->index_dir,
	    aside, (unsigned long long)first);
	if (first > 1)
		log_error("the log no longer starts at its first record: the "
		    "sessions, subscriptions, queued and retained messages and "
		    "wills that only the index held are lost", "removed_lsns="
		    "1-%llu kept_as=%s", (unsigned long long)(first - 1), aside);
}

static void
walsvc_start(struct proc *p)
{
	struct walsvc		*ws = &walsvc;
	struct wal_options	 opts;
	struct wal_recovery	 rec;
	const char		*waldir;
	char			 err[512];
	uint64_t		 mem;
	int64_t			 started;
	int			 rv;

	ws->proc = p;
	ws->base = p->base;
	started = clock_mono_ms();
	waldir = config_str(&p->cfg, OPT_storage_wal_dir);
	mem = (uint64_t)config_num(&p->cfg, OPT_storage_memory_buffer);

	/* 1) the log */
	if ((rv = wal_storage_file_open(&ws->storage, waldir,
	    WAL_STORAGE_FILE_MKDIR)) != 0)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot open the log directory;"
		    " stopping rather than run without durability",
		    "dir=%s error=\"%s\"", waldir, strerror(-rv));
	memset(&opts, 0, sizeof(opts));
	opts.segment_size = (uint64_t)config_num(&p->cfg,
	    OPT_storage_wal_segment_size);
	if ((rv = wal_open(&ws->wal, ws->storage, &opts, &rec, err,
	    sizeof(err))) != 0)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot open the message log; "
		    "stopping rather than run without durability",
		    "error=\"%s\"", err);
	report_recovery(&rec, waldir);

	/* 2) the index, replayed up to the end of the log */
	snprintf(ws->index_dir, sizeof(ws->index_dir), "%s/index",
	    config_str(&p->cfg, OPT_storage_data_dir));
	wal_stream_highest(ws->wal, IPC_ROLE_WALSVC, 0, p->self.gen,
	    &ws->own_seq);
	if ((rv = load_state(ws, mem / 4)) == -1) {
		set_index_aside(ws);
		rv = load_state(ws, mem / 4);
		if (rv == -1)
			fatal_status(PMQ_EXIT_NORESPAWN, "cannot rebuild the "
			    "index from the log", "dir=%s", ws->index_dir);
	}
	/* a full or failing disk: the supervisor starts us again later */
	if (rv == -2)
		fatalx("the storage refused the index; trying again after the "
		    "respawn delay", "dir=%s", ws->index_dir);
	ws->recovery_ms = clock_mono_ms() - started;

	gate_path = getenv("PMQ_TEST_WALSVC_GATE");
	if (gate_path != NULL && *gate_path != '\0' &&
	    access(gate_path, F_OK) == 0) {
		hold_at_gate(ws);
		return;
	}
	walsvc_serve(ws);
}

/* 3) serve */
static void
walsvc_serve(struct walsvc *ws)
{
	struct proc	*p = ws->proc;
	char		 path[PATH_MAX], err[512];
	uint64_t	 maxgen, mem;
	uint8_t		 ready[8];

	mem = (uint64_t)config_num(&p->cfg, OPT_storage_memory_buffer);
	ws->pending_limit = mem / 2;
	if (shares_start(ws) == -1)
		fatalx("out of memory setting up shared subscriptions", "");
	if (registry_start(ws) == -1)
		fatalx("cannot set up the client registry", "");
	if (append_start(ws) == -1)
		fatalx("cannot set up group commit", "");
	if (compact_start(ws) == -1)
		fatalx("cannot set up compaction", "");
	if (proc_endpoint_path(p, path, sizeof(path), IPC_ROLE_WALSVC, 0) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "runtime directory path too "
		    "long", "");
	if ((ws->endpoint = ipc_endpoint_open(ws->base, path, p->self.gen,
	    (size_t)config_num(&p->cfg, OPT_mqtt_max_packet_size) +
	    2 * IPC_LINK_BATCH_BYTES, walsvc_dispatch, ws, err,
	    sizeof(err))) == NULL)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot open IPC endpoint",
		    "error=\"%s\"", err);
	maxgen = wal_role_generation_max(ws->wal, IPC_ROLE_WORKER);
	if (index_worker_generation(ws->index) > maxgen)
		maxgen = index_worker_generation(ws->index);
	stats_recovered(ws, ws->recovery_ms);
	stats_start(ws);
	buf_store_u64(ready, maxgen);
	proc_send(p, IPC_CTL_READY, ready, sizeof(ready));
	log_info("walsvc ready", "gen=%llu sync=%s next_lsn=%llu "
	    "max_worker_gen=%llu", (unsigned long long)p->self.gen,
	    config_text(&p->cfg, OPT_storage_wal_sync),
	    (unsigned long long)wal_next_lsn(ws->wal),
	    (unsigned long long)maxgen);
	/* a peers table that came while we were held */
	if (p->npeers > 0)
		registry_peers_changed(ws);
}

static void
gate_check(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc	*ws = arg;

	if (access(gate_path, F_OK) == 0)
		return;
	log_notice("test gate removed; serving", "held_ms=%lld",
	    (long long)(clock_mono_ms() - gate_started));
	event_free(gate_ev);
	gate_ev = NULL;
	walsvc_serve(ws);
}

/* PMQ_TEST_WALSVC_GATE: wait, in the loop, until the file is gone. */
static void
hold_at_gate(struct walsvc *ws)
{
	struct timeval	 tv = { 0, GATE_POLL_MS * 1000 };

	gate_started = clock_mono_ms();
	gate_ev = event_new(ws->base, -1, EV_PERSIST, gate_check, ws);
	if (gate_ev == NULL || event_add(gate_ev, &tv) == -1)
		fatalx("cannot watch the test gate", "path=%s", gate_path);
	log_notice("held at the test gate before serving", "path=%s gen=%llu",
	    gate_path, (unsigned long long)ws->proc->self.gen);
}

static void
walsvc_peers(struct proc *p)
{
	if (walsvc.registry)
		registry_peers_changed(&walsvc);
}

static void
walsvc_reload(struct proc *p, const enum option_id *ids, size_t n)
{
	append_reload(&walsvc);
}

static void
walsvc_stop(struct proc *p)
{
	struct walsvc	*ws = &walsvc;

	/* held at the test gate: nothing was taken, nothing to write */
	if (ws->endpoint != NULL)
		append_stop(ws);
	stats_publish(ws);
	shares_close(ws);
	sessions_close(ws);
	wills_close(ws);
	retained_close(ws);
	bodies_close(ws);
	index_close(ws->index);
	wal_close(ws->wal);
	wal_storage_destroy(ws->storage);
	if (p->orphaned)
		ipc_endpoint_abandon(ws->endpoint);
	else
		ipc_endpoint_close(ws->endpoint);
	log_info("walsvc stopped", "appends=%llu duplicates=%llu commits=%llu",
	    (unsigned long long)ws->appends,
	    (unsigned long long)ws->duplicates,
	    (unsigned long long)ws->commits);
	exit(0);
}

/* The counter region, before the configuration; promptmqctl's requests. */
static void
walsvc_control(struct proc *p, const struct ipc_record *rec, int fd)
{
	if (rec->type == IPC_CTL_METRICS && rec->len == 1 &&
	    rec->body[0] == IPC_METRICS_REGION) {
		stats_set_region(&walsvc, fd);
		return;
	}
	if (rec->type == IPC_ADM_REQUEST && p->configured) {
		admin_request(&walsvc, rec);
		if (fd != -1)
			close(fd);
		return;
	}
	log_warnx("unexpected control message", "type=0x%04x", rec->type);
	if (fd != -1)
		close(fd);
}

static const struct proc_ops walsvc_ops = {
	.name = "walsvc",
	.control = walsvc_control,
	.start = walsvc_start,
	.peers = walsvc_peers,
	.reload = walsvc_reload,
	.stop = walsvc_stop,
};

int
main(int argc, char *argv[])
{
	proc_main(argc, argv, IPC_ROLE_WALSVC, &walsvc_ops);
}

/*
 * proc.c - the common start-up and control handling of child processes
 * (see proc.h).  Process-level code: it may decide to exit.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "ipc_link.h"
#include "log.h"
#include "proc.h"

#define PEER_ENTRY_SIZE	12

static struct ipc_identity	 fatal_self;

/*
 * Tell the supervisor why we die, in one datagram sent right now: the
 * event loop will not run again.
 */
static void
report_fatal(const char *why)
{
	struct buf	 b = BUF_INITIALIZER;

	if (ipc_batch_begin(&b, &fatal_self, 0) == 0 &&
	    ipc_record_add(&b, IPC_CTL_FATAL, 0, 0, why, strlen(why)) == 0)
		(void)!send(PROC_CTL_FD, b.data, b.len, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
	buf_free(&b);
}

static void
usage(const char *name)
{
	fprintf(stderr, "usage: %s -s SLOT -g GENERATION [-n LISTENERS "
	    "-k KINDS]\n"
	    "This program is started by promptmqd, not by hand.\n", name);
	exit(PMQ_EXIT_NORESPAWN);
}

static uint64_t
parse_number(const char *s, uint64_t max, const char *name)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v > max)
		usage(name);
	return v;
}

int
proc_send(struct proc *p, uint16_t type, const void *body, size_t len)
{
	return ctl_send(p->ctl, type, 0, body, len, -1);
}

const struct proc_peer *
proc_peer(const struct proc *p, uint8_t role, uint16_t slot)
{
	size_t	 i;

	for (i = 0; i < p->npeers; i++)
		if (p->peers[i].role == role && p->peers[i].slot == slot)
			return &p->peers[i];
	return NULL;
}

int
proc_endpoint_path(const struct proc *p, char *out, size_t len, uint8_t role,
    uint16_t slot)
{
	return ipc_endpoint_path(out, len,
	    config_str(&p->cfg, OPT_server_runtime_dir), role, slot);
}

static void
apply_logging(struct proc *p)
{
	char	 err[256];

	if (config_apply_logging(&p->cfg, err, sizeof(err)) == -1)
		log_warnx("logging configuration not applied", "error=\"%s\"",
		    err);
}

/* Apply (name, value) pairs from CONFIG or RELOAD; collect the ids. */
static int
apply_pairs(struct proc *p, const struct ipc_record *rec, enum option_id *ids,
    size_t *nids)
{
	struct buf_reader	 rd;
	const char		*name, *value;
	char			 err[256];
	int			 id, rv;

	*nids = 0;
	buf_reader_init(&rd, rec->body, rec->len);
	if (rec->len == 0 || rec->body[rec->len - 1] != '\0')
		return -1;
	while ((rv = ipc_pairs_next(&rd, &name, &value)) == 1) {
		if ((id = config_find(name)) == -1) {
			log_warnx("unknown option from supervisor ignored",
			    "option=%s", name);
			continue;
		}
		if (config_set(&p->cfg, (enum option_id)id, value,
		    ORIGIN_SUPERVISOR, err, sizeof(err)) == -1) {
			log_warnx("option from supervisor rejected",
			    "option=%s error=\"%s\"", name, err);
			return -1;
		}
		if (*nids < OPT__COUNT)
			ids[(*nids)++] = (enum option_id)id;
	}
	return rv;
}

/*
 * Started as root with server.user set (the supervisor checked the
 * names): drop to that user for good, after the sockets, the log files
 * and the directories are ours, and before serving anything.
 */
static void
drop_privileges(struct proc *p)
{
	const char	*user = config_str(&p->cfg, OPT_server_user);
	const char	*group = config_str(&p->cfg, OPT_server_group);
	struct passwd	*pw;
	struct group	*gr;
	struct pollfd	 pfd;
	uid_t		 ruid, euid, suid;
	gid_t		 gid;

	if (*user == '\0' || geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatal_status(PMQ_EXIT_NORESPAWN, "no such user", "user=%s",
		    user);
	gid = pw->pw_gid;
	if (*group != '\0') {
		if ((gr = getgrnam(group)) == NULL)
			fatal_status(PMQ_EXIT_NORESPAWN, "no such group",
			    "group=%s", group);
		gid = gr->gr_gid;
	}
	if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot drop privileges",
		    "user=%s", user);
	if (getresuid(&ruid, &euid, &suid) == -1 || ruid != pw->pw_uid ||
	    euid != pw->pw_uid || suid != pw->pw_uid || setuid(0) == 0)
		panic("privileges still held after dropping to %s", user);
	/* the drop clears the dumpable flag; the operator may want cores */
	if (config_num(&p->cfg, OPT_server_dump_core))
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	/*
	 * PR_SET_PDEATHSIG does not survive a change of credentials, so
	 * the control channel is what tells us the supervisor is there.
	 */
	pfd.fd = PROC_CTL_FD;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP)))
		fatalx("supervisor gone while starting", "");
	log_info("privileges dropped", "user=%s uid=%u gid=%u", user,
	    (unsigned)pw->pw_uid, (unsigned)gid);
}

static void
handle_peers(struct proc *p, const struct ipc_record *rec)
{
	struct buf_reader	 rd;
	struct proc_peer	*peers;
	size_t			 i, n;

	if (rec->len % PEER_ENTRY_SIZE != 0) {
		log_warnx("malformed peers table ignored", "len=%u", rec->len);
		return;
	}
	n = rec->len / PEER_ENTRY_SIZE;
	if ((peers = calloc(n ? n : 1, sizeof(*peers))) == NULL)
		fatal("peers table", "");
	buf_reader_init(&rd, rec->body, rec->len);
	for (i = 0; i < n; i++) {
		peers[i].role = buf_read_u8(&rd);
		peers[i].up = buf_read_u8(&rd);
		peers[i].slot = buf_read_u16(&rd);
		peers[i].gen = buf_read_u64(&rd);
	}
	free(p->peers);
	p->peers = peers;
	p->npeers = n;
	if (p->configured && p->ops->peers)
		p->ops->peers(p);
}

static void
dispatch_supervisor(struct ctl_channel *ch, int status, struct ipc_batch *batch,
    int fd, void *arg)
{
	struct proc		*p = arg;
	struct ipc_record	 rec;
	struct config_messages	 msgs;
	enum option_id		 ids[OPT__COUNT];
	size_t			 nids, i;
	int			 rv;

	if (status == CTL_EOF) {
		/* nobody would stop or restart us: finish what we hold */
		log_notice("supervisor gone, stopping", "");
		p->orphaned = 1;
		if (p->configured)
			p->ops->stop(p);
		exit(0);
	}
	if (status == IPC_EVERSION)
		fatal_status(PMQ_EXIT_NORESPAWN, "supervisor speaks another "
		    "IPC version: binaries were replaced under a running "
		    "supervisor; restart promptmqd", "ours=%d", IPC_VERSION);
	if (status != IPC_OK)
		fatalx("malformed control message", "error=\"%s\"",
		    ipc_strerror(status));
	if (batch->sender.role != IPC_ROLE_SUPERVISOR)
		fatalx("control message from a non-supervisor", "role=%u",
		    batch->sender.role);

	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_CTL_HELLO:
			if (rec.len != 8)
				fatalx("bad HELLO size", "len=%u", rec.len);
			p->nworkers = buf_load_u32(rec.body);
			break;
		case IPC_CTL_CONFIG:
			if (p->configured)
				fatalx("second CONFIG from supervisor", "");
			if (apply_pairs(p, &rec, ids, &nids) == -1)
				fatal_status(PMQ_EXIT_NORESPAWN,
				    "configuration from supervisor rejected",
				    "");
			memset(&msgs, 0, sizeof(msgs));
			if (config_finish(&p->cfg, &msgs) == -1) {
				for (i = 0; i < msgs.nerrors; i++)
					log_error("configuration error",
					    "error=\"%s\"", msgs.errors[i]);
				fatal_status(PMQ_EXIT_NORESPAWN,
				    "configuration from supervisor rejected",
				    "");
			}
			config_messages_free(&msgs);
			apply_logging(p);
			drop_privileges(p);
			p->configured = 1;
			p->ops->start(p);
			break;
		case IPC_CTL_PEERS:
			handle_peers(p, &rec);
			break;
		case IPC_CTL_RELOAD:
			if (apply_pairs(p, &rec, ids, &nids) == -1) {
				log_warnx("reload from supervisor rejected", "");
				break;
			}
			apply_logging(p);
			if (p->ops->reload)
				p->ops->reload(p, ids, nids);
			break;
		case IPC_CTL_REOPEN_LOGS:
			log_reopen();
			break;
		case IPC_CTL_STOP:
			log_info("stopping on supervisor request", "");
			p->ops->stop(p);
			break;
		default:
			if (p->ops->control)
				p->ops->control(p, &rec, fd);
			else
				log_warnx("unexpected control message",
				    "type=0x%04x", rec.type);
			fd = -1;
			break;
		}
	}
	if (rv < 0)
		fatalx("malformed control batch", "error=\"%s\"",
		    ipc_strerror(rv));
	if (fd != -1)
		close(fd);
}

void
proc_main(int argc, char *argv[], uint8_t role, const struct proc_ops *ops)
{
	static struct proc	 p;
	const char		*kinds = "";
	struct stat		 st;
	struct sigaction	 sa;
	int			 ch, i;

	/* 1) identity from the command line; the name first (promptmqd
	 * executes a descriptor, which the kernel names by its number) */
	prctl(PR_SET_NAME, strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 :
	    argv[0], 0, 0, 0);
	log_init(ops->name, -1);
	p.self.role = role;
	p.ops = ops;
	while ((ch = getopt(argc, argv, "s:g:n:k:")) != -1) {
		switch (ch) {
		case 's':
			p.self.slot = (uint16_t)parse_number(optarg, 65535,
			    argv[0]);
			break;
		case 'g':
			p.self.gen = parse_number(optarg, UINT64_MAX, argv[0]);
			break;
		case 'n':
			p.nlisten = (int)parse_number(optarg, PROC_MAX_LISTEN,
			    argv[0]);
			break;
		case 'k':
			/* what each socket speaks: m MQTT, t MQTT over TLS */
			kinds = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (p.self.gen == 0 || strlen(kinds) != (size_t)p.nlisten ||
	    strspn(kinds, IPC_LISTEN_LETTERS) != strlen(kinds))
		usage(argv[0]);
	for (i = 0; i < p.nlisten; i++)
		p.listen_kinds[i] = (uint8_t)(strchr(IPC_LISTEN_LETTERS,
		    kinds[i]) - IPC_LISTEN_LETTERS);
	if (role == IPC_ROLE_WORKER)
		log_set_slot(p.self.slot);
	fatal_self = p.self;
	log_set_fatal_hook(report_fatal);

	/* 2) inherited descriptors: control channel and listeners */
	if (fstat(PROC_CTL_FD, &st) == -1 || !S_ISSOCK(st.st_mode))
		fatal_status(PMQ_EXIT_NORESPAWN, "no control channel on fd 3: "
		    "this program is started by promptmqd", "");
	for (i = 0; i < p.nlisten; i++) {
		p.listen_fds[i] = PROC_LISTEN_FD0 + i;
		if (fstat(p.listen_fds[i], &st) == -1 || !S_ISSOCK(st.st_mode))
			fatal_status(PMQ_EXIT_NORESPAWN,
			    "listening socket missing", "fd=%d",
			    p.listen_fds[i]);
		fcntl(p.listen_fds[i], F_SETFD, FD_CLOEXEC);
	}
	fcntl(PROC_CTL_FD, F_SETFD, FD_CLOEXEC);

	/* 3) signals: the supervisor alone decides when children stop */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	/* 4) event base and control channel; CONFIG starts the role */
	if (config_defaults(&p.cfg) == -1)
		fatalx("out of memory", "");
	if ((p.base = evloop_new()) == NULL)
		fatalx("cannot create event base", "");
	if ((p.ctl = ctl_open(p.base, PROC_CTL_FD, &p.self, dispatch_supervisor,
	    &p)) == NULL)
		fatal("cannot open control channel", "");

	event_base_dispatch(p.base);
	fatalx("exited event loop", "");
}

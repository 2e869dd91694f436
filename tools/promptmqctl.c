/*
 * promptmqctl - questions and orders to a running promptmqd, over its
 * control socket (RUNDIR/ctl.sock; docs/architecture.md, "Control socket
 * and promptmqctl").  One request per run: send it, print the rows as
 * they come, end with the broker's message and an exit status that says
 * how it went.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "adm.h"
#include "buf.h"
#include "ipc.h"
#include "options.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/promptmq/promptmq.conf"
#define SOCKET_NAME	"ctl.sock"
#define WAIT_MS		30000	/* the broker answers within 5 s */
#define MAX_FIELDS	64
#define REFUSED		"the broker closed the connection without an " \
			    "answer (it refuses its own server.user, and " \
			    "anyone while 16 others are connected; see its log)"

/* Exit statuses (promptmqctl(8)). */
#define EXIT_DONE	0
#define EXIT_NOT_FOUND	1
#define EXIT_FAILED	2
#define EXIT_USAGE	64

/* What a text table shows of a section; JSON shows every field. */
static const struct view {
	const char	*section;
	const char	*columns;
} views[] = {
	{ "processes", "role slot pid state uptime restarts connections "
	    "clients cpu_seconds rss_bytes" },
	{ "clients", "client_id worker address protocol transport user state "
	    "connected_since inflight queued subscriptions" },
	{ "sessions", "client_id state worker offline_since expires_in queued "
	    "subscriptions" },
};

/* The sections a command answers with, in order; the first of `status`
 * is one object, the others are lists. */
static const struct command {
	const char	*name;
	const char	*sections;	/* space-separated */
	int		 needs_arg;	/* "id" or "level" */
	const char	*arg_name;
} commands[] = {
	{ "status", "broker processes", 0, NULL },
	{ "clients", "clients", 0, NULL },
	{ "kick", "", 1, "id" },
	{ "sessions", "sessions", 0, NULL },
	{ "session-delete", "", 1, "id" },
	{ "reload", "", 0, NULL },
	{ "log-level", "", 1, "level" },
};

static int	 json_out;

static void __attribute__((noreturn))
usage(FILE *out, int status)
{
	fprintf(out,
	    "usage: promptmqctl [-j] [-c FILE | -r DIR | -s SOCKET] COMMAND\n"
	    "\n"
	    "commands:\n"
	    "  status                       processes, connections, the log\n"
	    "  clients [--id PATTERN] [--user NAME] [--address PREFIX]\n"
	    "          [--worker N]         connected clients\n"
	    "  kick CLIENT-ID               disconnect a client (0x98)\n"
	    "  sessions [--id PATTERN]      stored sessions\n"
	    "  session-delete CLIENT-ID     end a stored session\n"
	    "  reload                       reread the configuration\n"
	    "  log-level LEVEL              error, warn, notice, info or debug,\n"
	    "                               until the next reload\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE            promptmqd's configuration, read "
	    "for\n"
	    "                               server.runtime-dir (default:\n"
	    "                               %s)\n"
	    "  -r, --runtime-dir DIR        the broker's runtime directory\n"
	    "  -s, --socket PATH            the control socket itself\n"
	    "  -j, --json                   answer in JSON\n"
	    "  -h, --help, -V, --version\n", DEFAULT_CONFIG);
	exit(status);
}

/* ---------------------------------------------------------------------
 * Where the socket is: as promptmqd finds its runtime directory.
 */

static int
socket_path(const char *config, const char *rundir, char *out, size_t outlen)
{
	struct config		 cfg;
	struct config_messages	 msgs;
	char			*argv[6];
	int			 argc = 0;
	size_t			 i;

	argv[argc++] = "promptmqctl";
	if (config) {
		argv[argc++] = "-c";
		argv[argc++] = (char *)config;
	}
	if (rundir) {
		argv[argc++] = "--runtime-dir";
		argv[argc++] = (char *)rundir;
	}
	argv[argc] = NULL;
	memset(&msgs, 0, sizeof(msgs));
	if (config_defaults(&cfg) == -1 ||
	    config_load(&cfg, argc, argv, NULL, DEFAULT_CONFIG, &msgs) == -1) {
		for (i = 0; i < msgs.nerrors; i++)
			fprintf(stderr, "promptmqctl: %s\n", msgs.errors[i]);
		fprintf(stderr, "promptmqctl: cannot tell where the broker's "
		    "runtime directory is; name it with -r or the socket "
		    "with -s\n");
		config_messages_free(&msgs);
		config_free(&cfg);
		return -1;
	}
	snprintf(out, outlen, "%s/%s", config_str(&cfg,
	    OPT_server_runtime_dir), SOCKET_NAME);
	config_messages_free(&msgs);
	config_free(&cfg);
	return 0;
}

static int
connect_to(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "promptmqctl: %s: path too long for a socket\n",
		    path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "promptmqctl: %s: %s%s\n", path,
		    strerror(errno), errno == ENOENT || errno == ECONNREFUSED ?
		    " (is promptmqd running?)" : errno == EACCES ?
		    " (root and the members of server.group may connect)" :
		    "");
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---------------------------------------------------------------------
 * Rows: kept until the end, then printed as tables or as JSON.
 */

struct row {
	char		*section;
	size_t		 n;
	struct adm_field f[MAX_FIELDS];
	char		*mem;		/* the fields' strings */
};

static struct row	*rows;
static size_t		 nrows, rowcap;

static void
keep_row(const char *section, const struct adm_field *f, size_t n)
{
	struct row	*r;
	size_t		 len = strlen(section) + 1, i, at;

	if (nrows == rowcap) {
		rowcap = rowcap ? rowcap * 2 : 64;
		if ((rows = realloc(rows, rowcap * sizeof(*rows))) == NULL) {
			fprintf(stderr, "promptmqctl: out of memory\n");
			exit(EXIT_FAILED);
		}
	}
	r = &rows[nrows++];
	for (i = 0; i < n; i++)
		len += strlen(f[i].name) + strlen(f[i].value) + 2;
	if ((r->mem = malloc(len)) == NULL) {
		fprintf(stderr, "promptmqctl: out of memory\n");
		exit(EXIT_FAILED);
	}
	r->section = r->mem;
	at = strlen(section) + 1;
	memcpy(r->mem, section, at);
	for (i = 0; i < n; i++) {
		r->f[i].type = f[i].type;
		r->f[i].name = r->mem + at;
		memcpy(r->mem + at, f[i].name, strlen(f[i].name) + 1);
		at += strlen(f[i].name) + 1;
		r->f[i].value = r->mem + at;
		memcpy(r->mem + at, f[i].value, strlen(f[i].value) + 1);
		at += strlen(f[i].value) + 1;
	}
	r->n = n;
}

static const struct adm_field *
field_of(const struct row *r, const char *name)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->f[i].name, name) == 0)
			return &r->f[i];
	return NULL;
}

/* A value as a person reads it: times, durations and sizes. */
static void
humanize(const char *name, const char *value, char *out, size_t outlen)
{
	long long	 v = strtoll(value, NULL, 10);
	time_t		 t = (time_t)v;
	struct tm	 tm;
	size_t		 n = strlen(name);

	if ((strcmp(name, "connected_since") == 0 ||
	    strcmp(name, "offline_since") == 0 ||
	    strcmp(name, "started") == 0) && gmtime_r(&t, &tm) != NULL)
		strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else if (strcmp(name, "uptime") == 0 || strcmp(name, "expires_in") == 0) {
		if (v >= 86400)
			snprintf(out, outlen, "%lldd%lldh", v / 86400,
			    v % 86400 / 3600);
		else if (v >= 3600)
			snprintf(out, outlen, "%lldh%lldm", v / 3600,
			    v % 3600 / 60);
		else if (v >= 60)
			snprintf(out, outlen, "%lldm%llds", v / 60, v % 60);
		else
			snprintf(out, outlen, "%llds", v);
	} else if (n > 6 && strcmp(name + n - 6, "_bytes") == 0 && v >= 10240)
		snprintf(out, outlen, v >= 10 << 20 ? "%.0f MiB" : "%.0f KiB",
		    v >= 10 << 20 ? (double)v / 1048576 : (double)v / 1024);
	else
		snprintf(out, outlen, "%s", value);
}

/* A table's cell: the field humanized, "-" when the row lacks it. */
static void
cell(const struct row *r, const char *name, char *out, size_t outlen)
{
	const struct adm_field	*f = field_of(r, name);

	if (f)
		humanize(name, f->value, out, outlen);
	else
		snprintf(out, outlen, "-");
}

static void
print_object(const struct row *r)
{
	char	 value[128];
	size_t	 i;

	for (i = 0; i < r->n; i++) {
		humanize(r->f[i].name, r->f[i].value, value, sizeof(value));
		printf("%-20s %s\n", r->f[i].name, value);
	}
}

static void
print_table(const char *section)
{
	const char	*columns = NULL, *p;
	char		 names[MAX_FIELDS][32], value[128], head[32];
	int		 width[MAX_FIELDS];
	size_t		 ncol = 0, i, j, k, len;

	for (i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (strcmp(views[i].section, section) == 0)
			columns = views[i].columns;
	if (columns == NULL)
		return;
	for (p = columns; *p && ncol < MAX_FIELDS; ) {
		len = strcspn(p, " ");
		snprintf(names[ncol], sizeof(names[ncol]), "%.*s", (int)len, p);
		width[ncol] = (int)len;
		ncol++;
		p += len;
		p += strspn(p, " ");
	}
	for (i = 0; i < nrows; i++) {
		if (strcmp(rows[i].section, section) != 0)
			continue;
		for (j = 0; j < ncol; j++) {
			cell(&rows[i], names[j], value, sizeof(value));
			if ((int)strlen(value) > width[j])
				width[j] = (int)strlen(value);
		}
	}
	for (j = 0; j < ncol; j++) {
		for (k = 0; names[j][k]; k++)
			head[k] = names[j][k] == '_' ? '-' :
			    (char)(names[j][k] >= 'a' && names[j][k] <= 'z' ?
			    names[j][k] - 32 : names[j][k]);
		head[k] = '\0';
		printf("%-*s%s", j + 1 < ncol ? width[j] : 0, head,
		    j + 1 < ncol ? "  " : "\n");
	}
	for (i = 0; i < nrows; i++) {
		if (strcmp(rows[i].section, section) != 0)
			continue;
		for (j = 0; j < ncol; j++) {
			cell(&rows[i], names[j], value, sizeof(value));
			printf("%-*s%s", j + 1 < ncol ? width[j] : 0, value,
			    j + 1 < ncol ? "  " : "\n");
		}
	}
}

static json_t *
json_row(const struct row *r)
{
	json_t	*o = json_object();
	size_t	 i;

	for (i = 0; i < r->n; i++) {
		if (r->f[i].type == 'n' && strchr(r->f[i].value, '.'))
			json_object_set_new(o, r->f[i].name,
			    json_real(strtod(r->f[i].value, NULL)));
		else if (r->f[i].type == 'n')
			json_object_set_new(o, r->f[i].name,
			    json_integer(strtoll(r->f[i].value, NULL, 10)));
		else
			json_object_set_new(o, r->f[i].name,
			    json_string(r->f[i].value));
	}
	return o;
}

static void
print_answer(const struct command *cmd, uint8_t result, const char *msg)
{
	const char	*p = cmd->sections;
	char		 section[32];
	json_t		*top, *list;
	size_t		 len, i, nsection = 0;
	char		*text;

	if (!json_out) {
		while (*p) {
			len = strcspn(p, " ");
			snprintf(section, sizeof(section), "%.*s", (int)len, p);
			if (nsection++ == 0 && strcmp(section, "broker") == 0) {
				for (i = 0; i < nrows; i++)
					if (strcmp(rows[i].section, section) ==
					    0)
						print_object(&rows[i]);
				printf("\n");
			} else
				print_table(section);
			p += len;
			p += strspn(p, " ");
		}
		if (*msg)
			fprintf(result == ADM_DONE_OK ? stdout : stderr,
			    "%s%s\n", result == ADM_DONE_OK ? "" :
			    "promptmqctl: ", msg);
		return;
	}
	top = json_object();
	json_object_set_new(top, "result", json_string(result == ADM_DONE_OK ?
	    "ok" : result == ADM_DONE_NOT_FOUND ? "not-found" : "failed"));
	if (*msg)
		json_object_set_new(top, "message", json_string(msg));
	while (*p) {
		len = strcspn(p, " ");
		snprintf(section, sizeof(section), "%.*s", (int)len, p);
		if (strcmp(section, "broker") == 0) {
			for (i = 0; i < nrows; i++)
				if (strcmp(rows[i].section, section) == 0)
					json_object_set_new(top, section,
					    json_row(&rows[i]));
		} else {
			list = json_array();
			for (i = 0; i < nrows; i++)
				if (strcmp(rows[i].section, section) == 0)
					json_array_append_new(list,
					    json_row(&rows[i]));
			json_object_set_new(top, section, list);
		}
		p += len;
		p += strspn(p, " ");
	}
	text = json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(6));
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(top);
}

/* ---------------------------------------------------------------------
 * The exchange.
 */

static int
exchange(int fd, const struct command *cmd, const struct buf *request)
{
	static const struct ipc_identity self = { IPC_ROLE_TOOL, 0, 0 };
	struct buf		 b = BUF_INITIALIZER;
	struct ipc_batch	 batch;
	struct ipc_record	 rec;
	struct adm_reader	 rd;
	struct adm_field	 f[MAX_FIELDS];
	struct pollfd		 pfd = { fd, POLLIN, 0 };
	const char		*section;
	uint8_t			*in, result;
	char			 msg[1024];
	size_t			 nf;
	ssize_t			 n;
	int			 rv;

	if (ipc_batch_begin(&b, &self, 0) == -1 ||
	    ipc_record_add(&b, IPC_ADM_REQUEST, 1, 1, request->data,
	    request->len) == -1 || ipc_batch_end(&b) == -1 ||
	    send(fd, b.data, b.len, MSG_NOSIGNAL) != (ssize_t)b.len) {
		if (errno == EPIPE || errno == ECONNRESET)
			fprintf(stderr, "promptmqctl: %s\n", REFUSED);
		else
			fprintf(stderr, "promptmqctl: cannot send the request: "
			    "%s\n", strerror(errno));
		buf_free(&b);
		return EXIT_FAILED;
	}
	buf_free(&b);
	if ((in = malloc(IPC_CTL_MAX)) == NULL)
		return EXIT_FAILED;
	for (;;) {
		if ((rv = poll(&pfd, 1, WAIT_MS)) == 0) {
			fprintf(stderr, "promptmqctl: no answer from the broker "
			    "in %d s\n", WAIT_MS / 1000);
			break;
		}
		if (rv == -1 && errno == EINTR)
			continue;
		if ((n = recv(fd, in, IPC_CTL_MAX, 0)) <= 0) {
			if (n == 0 || errno == ECONNRESET)
				fprintf(stderr, "promptmqctl: %s\n", REFUSED);
			else
				fprintf(stderr, "promptmqctl: cannot read the "
				    "answer: %s\n", strerror(errno));
			break;
		}
		if ((rv = ipc_batch_open(&batch, in, (size_t)n)) != IPC_OK) {
			fprintf(stderr, "promptmqctl: bad answer from the broker "
			    "(%s)%s\n", ipc_strerror(rv), rv == IPC_EVERSION ?
			    ": promptmqctl and promptmqd are of different "
			    "versions" : "");
			break;
		}
		while (ipc_batch_next(&batch, &rec) == 1) {
			if (rec.type == IPC_ADM_ROWS) {
				adm_reader_init(&rd, rec.body, rec.len);
				while ((rv = adm_next_row(&rd, &section, f,
				    MAX_FIELDS, &nf)) == 1)
					keep_row(section, f, nf);
				if (rv == -1)
					fprintf(stderr, "promptmqctl: bad "
					    "rows from the broker\n");
			} else if (rec.type == IPC_ADM_DONE && rec.len >= 1) {
				snprintf(msg, sizeof(msg), "%.*s",
				    (int)rec.len - 1, rec.body + 1);
				result = rec.body[0];
				print_answer(cmd, result, msg);
				free(in);
				return result == ADM_DONE_OK ? EXIT_DONE :
				    result == ADM_DONE_NOT_FOUND ?
				    EXIT_NOT_FOUND : EXIT_FAILED;
			}
		}
	}
	free(in);
	return EXIT_FAILED;
}

static void
param(struct buf *b, const char *name, const char *value)
{
	buf_add(b, name, strlen(name) + 1);
	buf_add(b, value, strlen(value) + 1);
}

int
main(int argc, char *argv[])
{
	static const struct option global[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option filters[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "user", required_argument, NULL, 'u' },
		{ "address", required_argument, NULL, 'a' },
		{ "worker", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	const struct command	*cmd = NULL;
	const char		*config = NULL, *rundir = NULL, *sock = NULL;
	struct buf		 req = BUF_INITIALIZER;
	char			 path[PATH_MAX];
	size_t			 i;
	int			 ch, fd, status;

	while ((ch = getopt_long(argc, argv, "+c:r:s:jhV", global, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'r':
			rundir = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json_out = 1;
			break;
		case 'h':
			usage(stdout, EXIT_DONE);
		case 'V':
			printf("promptmqctl %s\n", PACKAGE_VERSION);
			return EXIT_DONE;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (optind >= argc)
		usage(stderr, EXIT_USAGE);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "promptmqctl: unknown command '%s'\n",
		    argv[optind]);
		usage(stderr, EXIT_USAGE);
	}
	param(&req, "cmd", cmd->name);
	/* the command's own options, then its argument */
	argc -= optind;
	argv += optind;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+", filters, NULL)) != -1) {
		if (strcmp(cmd->name, "clients") != 0 && (ch != 'i' ||
		    strcmp(cmd->name, "sessions") != 0)) {
			fprintf(stderr, "promptmqctl: %s takes no such option\n",
			    cmd->name);
			usage(stderr, EXIT_USAGE);
		}
		switch (ch) {
		case 'i':
			param(&req, "id", optarg);
			break;
		case 'u':
			param(&req, "user", optarg);
			break;
		case 'a':
			param(&req, "address", optarg);
			break;
		case 'w':
			param(&req, "worker", optarg);
			break;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	if (argc - optind != cmd->needs_arg) {
		fprintf(stderr, cmd->needs_arg ? "promptmqctl: %s needs one "
		    "argument\n" : "promptmqctl: %s takes no argument\n",
		    cmd->name);
		usage(stderr, EXIT_USAGE);
	}
	if (cmd->needs_arg)
		param(&req, cmd->arg_name, argv[optind]);
	if (buf_failed(&req) || req.len > ADM_BODY_MAX) {
		fprintf(stderr, "promptmqctl: request too long\n");
		buf_free(&req);
		return EXIT_USAGE;
	}
	status = EXIT_FAILED;
	if (sock != NULL)
		snprintf(path, sizeof(path), "%s", sock);
	else if (socket_path(config, rundir, path, sizeof(path)) == -1)
		goto out;
	if ((fd = connect_to(path)) == -1)
		goto out;
	status = exchange(fd, cmd, &req);
	close(fd);
out:
	buf_free(&req);
	return status;
}

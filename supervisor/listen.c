/*
 * listen.c - the supervisor's listening sockets.
 *
 * Each bind address is opened once per worker slot with SO_REUSEPORT, so
 * the kernel spreads new connections over the workers, and the
 * supervisor keeps every socket: a respawned worker N gets slot N's
 * socket back, and connections that queued in its backlog while it was
 * down are served rather than refused.
 *
 * Before that, each address is probed with a plain bind WITHOUT
 * SO_REUSEPORT.  Another process's SO_REUSEPORT socket on the same port
 * (a second broker started by mistake) would otherwise let our bind
 * succeed and silently share the traffic; the probe fails instead.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "supervisor.h"

#define LISTEN_BACKLOG	1024


static void
set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static uint16_t
get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Split "host:port" or "[v6]:port"; "*" or an empty host means any. */
static int
split_spec(const char *spec, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char	*p, *colon;
	size_t		 n;

	if (spec[0] == '[') {
		if ((p = strchr(spec, ']')) == NULL || p[1] != ':')
			return -1;
		n = (size_t)(p - spec - 1);
		colon = p + 1;
		if (n >= hostlen)
			return -1;
		memcpy(host, spec + 1, n);
		host[n] = '\0';
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return -1;
		n = (size_t)(colon - spec);
		if (n >= hostlen)
			return -1;
		memcpy(host, spec, n);
		host[n] = '\0';
		if (strchr(host, ':'))
			return -1;	/* bare IPv6 needs brackets */
	}
	if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	snprintf(port, portlen, "%s", colon + 1);
	if (atoi(port) > 65535)
		return -1;
	return 0;
}

static int
open_socket(const struct sockaddr_storage *ss, socklen_t len, int reuseport,
    int do_listen)
{
	int	 fd, one = 1, saved;

	/* non-blocking: libevent's listener accepts until EAGAIN */
	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	/* v4 and v6 wildcards bind side by side */
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		goto fail;
	if (do_listen && listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int
add_address(struct listen_set *set, const char *spec,
    const struct sockaddr *sa, socklen_t salen, char *err, size_t errlen)
{
	struct listener	*l;
	char		 name[80];
	int		 i, fd;

	if (set->n == LISTEN_MAX) {
		snprintf(err, errlen, "%s: at most %d addresses", set->option,
		    LISTEN_MAX);
		return -1;
	}
	l = &set->l[set->n];
	memset(l, 0, sizeof(*l));
	snprintf(l->spec, sizeof(l->spec), "%s", spec);
	l->fresh = 1;
	memcpy(&l->addr, sa, salen);
	l->addrlen = salen;
	addr_format(sa, name, sizeof(name));
	for (i = 0; i < set->n; i++)
		if (set->l[i].addrlen == salen &&
		    memcmp(&set->l[i].addr, sa, salen) == 0 &&
		    get_port(&l->addr) != 0)
			return 0;	/* the same address twice */

	/* 1) the probe: fails if anyone holds the port, REUSEPORT or not */
	if (get_port(&l->addr) != 0) {
		if ((fd = open_socket(&l->addr, salen, 0, 0)) == -1) {
			snprintf(err, errlen, "%s: %s (%s): %s%s", set->option,
			    name, spec, strerror(errno), errno == EADDRINUSE ?
			    " (is another broker running?)" : "");
			return -1;
		}
		close(fd);
	}

	/* 2) one socket per slot; port 0 is fixed by the first one */
	if ((l->fds = calloc((size_t)set->nslots, sizeof(int))) == NULL ||
	    (l->order = calloc((size_t)set->nslots, sizeof(int))) == NULL) {
		free(l->fds);
		l->fds = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < set->nslots; i++)
		l->fds[i] = -1;
	set->n++;
	for (i = 0; i < set->nslots; i++) {
		if ((l->fds[i] = open_socket(&l->addr, salen, 1, 1)) == -1) {
			snprintf(err, errlen, "%s: %s (%s): %s", set->option,
			    name, spec, strerror(errno));
			return -1;
		}
		l->order[l->norder++] = i;
		if (i == 0 && get_port(&l->addr) == 0) {
			struct sockaddr_storage	 bound;
			socklen_t		 blen = sizeof(bound);

			if (getsockname(l->fds[0], (struct sockaddr *)&bound,
			    &blen) == -1) {
				snprintf(err, errlen, "getsockname: %s",
				    strerror(errno));
				return -1;
			}
			set_port(&l->addr, get_port(&bound));
		}
	}
	addr_format((struct sockaddr *)&l->addr, l->name, sizeof(l->name));
	log_notice("listening", "addr=%s slots=%d kind=%s", l->name, set->nslots,
	    ipc_listen_name(set->kind));
	return 0;
}

/* Resolve one "HOST:PORT" of the set's option and open all it names. */
static int
add_spec(struct listen_set *set, const char *tok, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256], port[8];
	int		 rv;

	if (split_spec(tok, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "%s: '%s' is not HOST:PORT or "
		    "[IPV6]:PORT", set->option, tok);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rv = getaddrinfo(strcmp(host, "*") == 0 || host[0] == '\0' ? NULL :
	    host, port, &hints, &res);
	if (rv != 0) {
		snprintf(err, errlen, "%s: '%s': %s", set->option, tok,
		    gai_strerror(rv));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (add_address(set, tok, ai->ai_addr, ai->ai_addrlen, err,
		    errlen) == -1) {
			freeaddrinfo(res);
			return -1;
		}
	freeaddrinfo(res);
	return 0;
}

/* Call fn for each trimmed token of a comma-separated list. */
static int
each_spec(const char *binds, int (*fn)(const char *, void *), void *arg)
{
	char	*copy, *tok, *save;
	int	 rv = 0;

	if ((copy = strdup(binds)) == NULL)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok && rv == 0;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		rv = fn(tok, arg);
	}
	free(copy);
	return rv;
}

struct open_ctx {
	struct listen_set	*set;
	char			*err;
	size_t			 errlen;
};

static int
open_one(const char *tok, void *arg)
{
	struct open_ctx	*oc = arg;
	int		 i;

	/* unchanged on reload: never touched */
	for (i = 0; i < oc->set->n; i++)
		if (strcmp(oc->set->l[i].spec, tok) == 0)
			return 0;
	return add_spec(oc->set, tok, oc->err, oc->errlen);
}

static void
close_listener(struct listen_set *set, struct listener *l)
{
	int	 j;

	for (j = 0; j < set->nslots && l->fds; j++)
		if (l->fds[j] != -1)
			close(l->fds[j]);
	free(l->fds);
	l->fds = NULL;
	free(l->order);
	l->order = NULL;
	l->norder = 0;
}

/* A slot's socket left its group: the group's last one takes its place,
 * as the kernel does (reuseport_detach_sock). */
static void
order_remove(struct listener *l, int slot)
{
	int	 i;

	for (i = 0; i < l->norder; i++)
		if (l->order[i] == slot) {
			l->order[i] = l->order[--l->norder];
			return;
		}
}

int
listen_open(struct listen_set *set, uint8_t kind, const char *option,
    const char *binds, int nslots, char *err, size_t errlen)
{
	struct open_ctx	 oc = { set, err, errlen };
	int		 i;

	memset(set, 0, sizeof(*set));
	set->kind = kind;
	set->option = option;
	set->nslots = nslots;
	if ((set->l = calloc(LISTEN_MAX, sizeof(*set->l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (each_spec(binds, open_one, &oc) != 0) {
		listen_close(set);
		return -1;
	}
	/* plain MQTT is always served; TLS where it is configured */
	if (set->n == 0 && kind == IPC_LISTEN_MQTT) {
		snprintf(err, errlen, "%s: no address to listen on",
		    set->option);
		listen_close(set);
		return -1;
	}
	for (i = 0; i < set->n; i++)
		set->l[i].fresh = 0;
	return 0;
}

struct keep_ctx {
	const char	*spec;
	int		 found;
};

static int
match_spec(const char *tok, void *arg)
{
	struct keep_ctx	*kc = arg;

	if (strcmp(tok, kc->spec) == 0)
		kc->found = 1;
	return 0;
}

/*
 * Reload: mark and sweep by the configured text.  Addresses that stay
 * are not touched; new ones are probed and opened (marked fresh, for
 * the caller to hand to the workers); those no longer configured are
 * closed and their names put in `removed`.  If a new address cannot be
 * opened, everything opened by this call is closed again and nothing
 * changes.
 */
int
listen_update(struct listen_set *set, const char *binds, char removed[][80],
    int *nremoved, char *err, size_t errlen)
{
	struct open_ctx	 oc = { set, err, errlen };
	struct keep_ctx	 kc;
	int		 i, j, before = set->n;

	*nremoved = 0;
	for (i = 0; i < set->n; i++)
		set->l[i].fresh = 0;
	if (each_spec(binds, open_one, &oc) != 0) {
		for (i = before; i < set->n; i++)
			close_listener(set, &set->l[i]);
		set->n = before;
		return -1;
	}
	for (i = 0, j = 0; i < set->n; i++) {
		kc.spec = set->l[i].spec;
		kc.found = 0;
		each_spec(binds, match_spec, &kc);
		if (!kc.found) {
			snprintf(removed[(*nremoved)++], 80, "%s",
			    set->l[i].name);
			log_notice("no longer listening", "addr=%s",
			    set->l[i].name);
			close_listener(set, &set->l[i]);
			continue;
		}
		set->l[j++] = set->l[i];
	}
	set->n = j;
	if (set->n == 0 && set->kind == IPC_LISTEN_MQTT) {
		snprintf(err, errlen, "%s: no address to listen on",
		    set->option);
		return -1;
	}
	return 0;
}

/*
 * Throttling: the kernel stops giving this slot connections.  Those
 * already waiting in its queue would be reset when it closes, so they
 * are accepted first and handed to `adopt` (another worker).
 */
void
listen_close_slot(struct listen_set *set, int slot,
    void (*adopt)(int, uint8_t, void *), void *arg)
{
	int	 i, fd;

	for (i = 0; i < set->n; i++) {
		if (set->l[i].fds[slot] == -1)
			continue;
		while ((fd = accept4(set->l[i].fds[slot], NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1)
			adopt(fd, set->kind, arg);
		close(set->l[i].fds[slot]);
		set->l[i].fds[slot] = -1;
		order_remove(&set->l[i], slot);
	}
}

int
listen_reopen_slot(struct listen_set *set, int slot, char *err, size_t errlen)
{
	struct listener	*l;
	int		 i;

	for (i = 0; i < set->n; i++) {
		l = &set->l[i];
		if (l->fds[slot] != -1)
			continue;
		if ((l->fds[slot] = open_socket(&l->addr, l->addrlen, 1, 1)) ==
		    -1) {
			snprintf(err, errlen, "%s: %s", l->name,
			    strerror(errno));
			return -1;
		}
		l->order[l->norder++] = slot;	/* joins at the end */
	}
	return 0;
}

/*
 * New connections of every address go to `slot`'s socket, or, with
 * slot -1 (or a slot with no socket), wherever the kernel's hash puts
 * them: a one-instruction classic BPF program returns the socket's
 * position in the SO_REUSEPORT group, and a position past its end makes
 * the kernel fall back to the hash.  Returns -1 when a program could not
 * be attached (that address keeps what it had).
 */
int
listen_steer(struct listen_set *set, int slot)
{
	struct sock_filter	 ret = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog	 prog;
	struct listener		*l;
	int			 i, k, rv = 0;

	memset(&prog, 0, sizeof(prog));	/* its padding goes to the kernel */
	prog.len = 1;
	prog.filter = &ret;
	for (i = 0; i < set->n; i++) {
		l = &set->l[i];
		if (l->norder == 0)
			continue;	/* no group: nothing listens */
		ret.k = 0xffffffffu;
		for (k = 0; k < l->norder; k++)
			if (l->order[k] == slot)
				ret.k = (uint32_t)k;
		if (setsockopt(l->fds[l->order[0]], SOL_SOCKET,
		    SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) == -1) {
			log_warn("cannot choose where new connections go",
			    "addr=%s", l->name);
			rv = -1;
		}
	}
	return rv;
}

void
listen_close(struct listen_set *set)
{
	int	 i;

	for (i = 0; i < set->n; i++)
		close_listener(set, &set->l[i]);
	free(set->l);
	set->l = NULL;
	set->n = 0;
}

/* The descriptors of one slot, in bind order. */
int
listen_slot_fds(const struct listen_set *set, int slot, int *fds, int max)
{
	int	 i, n = 0;

	for (i = 0; i < set->n && n < max; i++)
		if (set->l[i].fds[slot] != -1)
			fds[n++] = set->l[i].fds[slot];
	return n;
}

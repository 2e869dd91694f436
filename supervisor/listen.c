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
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

#define LISTEN_BACKLOG	1024
#define LISTEN_MAX	32

static void
format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char	 host[INET6_ADDRSTRLEN];
	int	 port;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	}
}

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
		snprintf(err, errlen, "server.bind: at most %d addresses",
		    LISTEN_MAX);
		return -1;
	}
	l = &set->l[set->n];
	memset(l, 0, sizeof(*l));
	memcpy(&l->addr, sa, salen);
	l->addrlen = salen;
	format_addr(sa, name, sizeof(name));
	for (i = 0; i < set->n; i++)
		if (set->l[i].addrlen == salen &&
		    memcmp(&set->l[i].addr, sa, salen) == 0 &&
		    get_port(&l->addr) != 0)
			return 0;	/* the same address twice */

	/* 1) the probe: fails if anyone holds the port, REUSEPORT or not */
	if (get_port(&l->addr) != 0) {
		if ((fd = open_socket(&l->addr, salen, 0, 0)) == -1) {
			snprintf(err, errlen, "server.bind: %s (%s): %s%s",
			    name, spec, strerror(errno), errno == EADDRINUSE ?
			    " (is another broker running?)" : "");
			return -1;
		}
		close(fd);
	}

	/* 2) one socket per slot; port 0 is fixed by the first one */
	if ((l->fds = calloc((size_t)set->nslots, sizeof(int))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < set->nslots; i++)
		l->fds[i] = -1;
	set->n++;
	for (i = 0; i < set->nslots; i++) {
		if ((l->fds[i] = open_socket(&l->addr, salen, 1, 1)) == -1) {
			snprintf(err, errlen, "server.bind: %s (%s): %s", name,
			    spec, strerror(errno));
			return -1;
		}
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
	format_addr((struct sockaddr *)&l->addr, l->name, sizeof(l->name));
	log_notice("listening", "addr=%s slots=%d", l->name, set->nslots);
	return 0;
}

int
listen_open(struct listen_set *set, const char *binds, int nslots, char *err,
    size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	char		*copy, *tok, *save, host[256], port[8];
	int		 rv;

	memset(set, 0, sizeof(*set));
	set->nslots = nslots;
	if ((set->l = calloc(LISTEN_MAX, sizeof(*set->l))) == NULL ||
	    (copy = strdup(binds)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (split_spec(tok, host, sizeof(host), port, sizeof(port)) ==
		    -1) {
			snprintf(err, errlen, "server.bind: '%s' is not "
			    "HOST:PORT or [IPV6]:PORT", tok);
			goto fail;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		rv = getaddrinfo(strcmp(host, "*") == 0 || host[0] == '\0' ?
		    NULL : host, port, &hints, &res);
		if (rv != 0) {
			snprintf(err, errlen, "server.bind: '%s': %s", tok,
			    gai_strerror(rv));
			goto fail;
		}
		for (ai = res; ai; ai = ai->ai_next) {
			if (add_address(set, tok, ai->ai_addr, ai->ai_addrlen,
			    err, errlen) == -1) {
				freeaddrinfo(res);
				goto fail;
			}
		}
		freeaddrinfo(res);
	}
	free(copy);
	if (set->n == 0) {
		snprintf(err, errlen, "server.bind: no address to listen on");
		listen_close(set);
		return -1;
	}
	return 0;
fail:
	free(copy);
	listen_close(set);
	return -1;
}

void
listen_close(struct listen_set *set)
{
	int	 i, j;

	for (i = 0; i < set->n; i++) {
		for (j = 0; j < set->nslots && set->l[i].fds; j++)
			if (set->l[i].fds[j] != -1)
				close(set->l[i].fds[j]);
		free(set->l[i].fds);
	}
	free(set->l);
	memset(set, 0, sizeof(*set));
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

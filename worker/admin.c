/*
 * admin.c - a worker's part of promptmqctl (docs/architecture.md,
 * "Control socket and promptmqctl"): the list of its connections, in
 * one pass over them between two events of the loop.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "adm.h"
#include "clock.h"
#include "ctl.h"
#include "proc.h"
#include "worker.h"

static const char *
state_name(enum conn_state state)
{
	switch (state) {
	case CONN_NEW:
		return "connecting";
	case CONN_AUTH:
		return "authenticating";
	case CONN_CLAIMING:
		return "claiming";
	case CONN_ACTIVE:
		return "connected";
	default:
		return "closing";
	}
}

static const char *
transport_name(const struct conn *c)
{
	return c->ws == 2 ? "wss" : c->ws == 1 ? "ws" : c->ssl ? "tls" :
	    "tcp";
}

static const char *
protocol_name(uint8_t level)
{
	return level == 5 ? "5.0" : level == 4 ? "3.1.1" : level == 3 ? "3.1" :
	    "";
}

/* Does the connection pass the request's filters? */
static int
wanted(const struct conn *c, const char *id, const char *user,
    const char *address, const char *addr)
{
	if (id && *id && (c->client_id == NULL ||
	    fnmatch(id, c->client_id, 0) != 0))
		return 0;
	if (user && *user && (c->username == NULL ||
	    strcmp(user, c->username) != 0))
		return 0;
	if (address && *address && strncmp(addr, address,
	    strlen(address)) != 0)
		return 0;
	return 1;
}

static void
clients(struct worker *w, struct proc *p, uint64_t corr, const uint8_t *body,
    size_t len)
{
	struct adm_rows		 rows;
	struct conn		*c;
	struct conn_sub		*sub;
	const char		*id, *user, *address;
	char			 addr[80];
	int64_t			 mono = clock_mono_ms(), wall = clock_wall_ms();
	size_t			 nsubs;

	id = adm_param(body, len, "id");
	user = adm_param(body, len, "user");
	address = adm_param(body, len, "address");
	adm_rows_init(&rows);
	for (c = w->conns; c; c = c->next) {
		conn_addr(c, addr, sizeof(addr));
		if (!wanted(c, id, user, address, addr))
			continue;
		for (sub = c->subs, nsubs = 0; sub; sub = sub->next)
			nsubs++;
		adm_row_begin(&rows, "clients");
		if (c->client_id)
			adm_bytes(&rows, "client_id", c->client_id,
			    c->client_id_len);
		adm_num(&rows, "worker", p->self.slot);
		adm_str(&rows, "address", addr);
		adm_str(&rows, "transport", transport_name(c));
		if (c->level)
			adm_str(&rows, "protocol", protocol_name(c->level));
		if (c->username)
			adm_str(&rows, "user", c->username);
		adm_str(&rows, "state", state_name(c->state));
		adm_num(&rows, "connected_since", (wall - (mono - c->created)) /
		    1000);
		adm_num(&rows, "keep_alive", c->keep_alive);
		adm_str(&rows, "session", c->stored ? "stored" : "clean");
		adm_num(&rows, "inflight", c->inflight_out);
		adm_num(&rows, "queued", c->queued);
		adm_num(&rows, "queued_bytes", (int64_t)c->queued_bytes);
		adm_num(&rows, "subscriptions", (int64_t)nsubs);
		adm_row_end(&rows);
		if (adm_rows_due(&rows, 0))
			adm_send_rows(p->ctl, corr, &rows);
	}
	if (adm_rows_due(&rows, 1))
		adm_send_rows(p->ctl, corr, &rows);
	adm_rows_free(&rows);
	adm_send_done(p->ctl, corr, ADM_DONE_OK, "%s", "");
}

void
admin_request(struct worker *w, struct proc *p, const struct ipc_record *rec)
{
	const char	*cmd = adm_param(rec->body, rec->len, "cmd");

	if (cmd != NULL && strcmp(cmd, "clients") == 0)
		clients(w, p, rec->corr, rec->body, rec->len);
	else
		adm_send_done(p->ctl, rec->corr, ADM_DONE_FAILED,
		    "a worker does not answer that");
}

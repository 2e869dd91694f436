/*
 * admin.c - walsvc's part of promptmqctl (docs/architecture.md,
 * "Control socket and promptmqctl"): kick, sessions and session-delete,
 * asked by the supervisor over the control channel and answered at once
 * from the registry and the stored sessions.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "adm.h"
#include "ctl.h"
#include "log.h"
#include "walsvc.h"

static uint64_t	 corr;		/* of the request being answered */

static void
flush(struct walsvc *ws, struct adm_rows *rows)
{
	adm_send_rows(ws->proc->ctl, corr, rows);
}

/* The end of the answer, with its result and message. */
#define done(ws, result, ...) \
	adm_send_done((ws)->proc->ctl, corr, (result), __VA_ARGS__)

static void
kick(struct walsvc *ws, const char *id, int end)
{
	int	 slot;

	slot = registry_admin_kick(ws, (const uint8_t *)id, strlen(id), end);
	if (slot == -2)
		done(ws, ADM_DONE_FAILED, "walsvc has just started and is "
		    "still learning the connections from the workers; try "
		    "again");
	else if (slot < 0)
		done(ws, ADM_DONE_NOT_FOUND, "no client '%s' is connected", id);
	else {
		log_notice(end ? "session deleted by an operator; its client "
		    "is disconnected" : "client kicked by an operator",
		    "client=%s worker=%d", id, slot);
		done(ws, ADM_DONE_OK, end ? "client '%s' disconnected from "
		    "worker %d; its session ends with the connection" :
		    "client '%s' disconnected from worker %d", id, slot);
	}
}

static void
session_delete(struct walsvc *ws, const char *id)
{
	switch (sessions_delete(ws, (const uint8_t *)id, strlen(id))) {
	case 0:
		log_notice("session deleted by an operator", "client=%s", id);
		done(ws, ADM_DONE_OK, "session of '%s' deleted", id);
		break;
	case 1:
		kick(ws, id, 1);
		break;
	case -1:
		done(ws, ADM_DONE_NOT_FOUND, "no stored session for '%s'", id);
		break;
	default:
		done(ws, ADM_DONE_FAILED, "the message log refused the record "
		    "(see the broker's log); session of '%s' kept", id);
		break;
	}
}

void
admin_request(struct walsvc *ws, const struct ipc_record *rec)
{
	struct adm_rows	 rows;
	const char	*cmd, *id;

	corr = rec->corr;
	cmd = adm_param(rec->body, rec->len, "cmd");
	id = adm_param(rec->body, rec->len, "id");
	if (cmd == NULL) {
		done(ws, ADM_DONE_FAILED, "malformed request");
		return;
	}
	if (strcmp(cmd, "sessions") == 0) {
		adm_rows_init(&rows);
		sessions_list(ws, id && *id ? id : NULL, &rows, flush);
		if (adm_rows_due(&rows, 1))
			flush(ws, &rows);
		adm_rows_free(&rows);
		done(ws, ADM_DONE_OK, "%s", "");
	} else if ((strcmp(cmd, "kick") == 0 ||
	    strcmp(cmd, "session-delete") == 0) && (id == NULL || *id == '\0'))
		done(ws, ADM_DONE_FAILED, "%s needs a client id", cmd);
	else if (strcmp(cmd, "kick") == 0)
		kick(ws, id, 0);
	else if (strcmp(cmd, "session-delete") == 0)
		session_delete(ws, id);
	else
		done(ws, ADM_DONE_FAILED, "walsvc does not answer '%s'", cmd);
}

/*
 * privs.c - the user the children run as (server.user, server.group).
 *
 * The supervisor keeps root when started as root, like the masters of
 * nginx and Postfix, so that it can open new listeners and reopen logs
 * on reload; every child drops to the configured user before it serves
 * (common/proc.c).  Here the supervisor resolves the names once, refuses
 * a configuration that cannot work, and hands the directories the
 * children write to over to that user.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

int
privs_resolve(const struct config *cfg, struct privs *pv, char *err,
    size_t errlen)
{
	const char	*user = config_str(cfg, OPT_server_user);
	const char	*group = config_str(cfg, OPT_server_group);
	struct passwd	*pw;
	struct group	*gr;

	memset(pv, 0, sizeof(*pv));
	if (*user == '\0') {
		if (*group != '\0') {
			snprintf(err, errlen, "server.group is set but "
			    "server.user is not");
			return -1;
		}
		return 0;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "server.user: no such user '%s'", user);
		return -1;
	}
	pv->uid = pw->pw_uid;
	pv->gid = pw->pw_gid;
	if (*group != '\0') {
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "server.group: no such group "
			    "'%s'", group);
			return -1;
		}
		pv->gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (pv->uid == geteuid())
			return 0;	/* already that user: nothing to drop */
		snprintf(err, errlen, "server.user '%s' needs promptmqd to be "
		    "started as root", user);
		return -1;
	}
	pv->drop = 1;
	return 0;
}

static uid_t	 walk_uid;
static gid_t	 walk_gid;

static int
chown_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	if (st->st_uid == walk_uid && st->st_gid == walk_gid)
		return 0;
	/*
	 * A file with other links may be one the children's user linked
	 * here from elsewhere (where fs.protected_hardlinks is off), to
	 * have root give it away: leave it as it is.
	 */
	if (flag != FTW_D && flag != FTW_DNR && st->st_nlink > 1) {
		log_warnx("not handing over a file with several links",
		    "path=%s links=%lu", path, (unsigned long)st->st_nlink);
		return 0;
	}
	if (lchown(path, walk_uid, walk_gid) == -1)
		return errno;
	return 0;
}

/* Give a directory and everything in it to the children's user. */
int
privs_hand_over(const struct privs *pv, const char *what, const char *dir,
    char *err, size_t errlen)
{
	int	 rv;

	if (!pv->drop)
		return 0;
	walk_uid = pv->uid;
	walk_gid = pv->gid;
	if ((rv = nftw(dir, chown_entry, 16, FTW_PHYS)) != 0) {
		snprintf(err, errlen, "%s %s: cannot hand it to uid %u: %s",
		    what, dir, (unsigned)pv->uid,
		    strerror(rv > 0 ? rv : errno));
		return -1;
	}
	return 0;
}

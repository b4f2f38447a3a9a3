// SPDX-License-Identifier: GPL-2.0
/*
 * The operator's hold on a migration in progress (migrate_ctl, migrate.h):
 * cancel before the commit, resolve after it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate/migrate.h"

void migrate_ctl_init(struct migrate_ctl *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

void migrate_ctl_destroy(struct migrate_ctl *c)
{
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
}

const char *migrate_phase_name(enum migrate_phase p)
{
	static const char *const names[] = {
		[MIGRATE_IDLE] = "idle",
		[MIGRATE_PRECOPY] = "pre-copy",
		[MIGRATE_SWITCHING] = "switching",
		[MIGRATE_COMMITTED] = "committed",
		[MIGRATE_IN_DOUBT] = "in-doubt",
		[MIGRATE_DONE] = "done",
	};

	return (unsigned int)p <= MIGRATE_DONE ? names[p] : "?";
}

int migrate_ctl_cancel(struct migrate_ctl *c, const char *why)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	switch (c->phase) {
	case MIGRATE_PRECOPY:
	case MIGRATE_SWITCHING:
		if (!c->cancel)
			snprintf(c->why, sizeof(c->why), "%s", why);
		c->cancel = true;
		pthread_cond_broadcast(&c->cond);
		break;
	case MIGRATE_COMMITTED:
	case MIGRATE_IN_DOUBT:
		ret = -EALREADY;
		break;
	default:
		ret = -ENOENT;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int in_doubt_set(struct migrate_ctl *c, bool *flag)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&c->lock);
	if (c->phase == MIGRATE_IN_DOUBT) {
		*flag = true;
		pthread_cond_broadcast(&c->cond);
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int migrate_ctl_resolve(struct migrate_ctl *c)
{
	return in_doubt_set(c, &c->resolve_now);
}

int migrate_ctl_force_resume(struct migrate_ctl *c)
{
	return in_doubt_set(c, &c->force_resume);
}

int migrate_ctl_give_up(struct migrate_ctl *c)
{
	return in_doubt_set(c, &c->give_up);
}

enum migrate_phase migrate_ctl_phase(struct migrate_ctl *c)
{
	enum migrate_phase p;

	pthread_mutex_lock(&c->lock);
	p = c->phase;
	pthread_mutex_unlock(&c->lock);
	return p;
}

void migrate_dest_ctl_init(struct migrate_dest_ctl *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	snprintf(c->state, sizeof(c->state), "waiting");
}

void migrate_dest_ctl_destroy(struct migrate_dest_ctl *c)
{
	pthread_mutex_destroy(&c->lock);
}

/* Only a copy that is loaded and not running can be started or discarded. */
static int held_set(struct migrate_dest_ctl *c, bool *flag)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&c->lock);
	if (!strcmp(c->state, "ready") || !strcmp(c->state, "holding")) {
		*flag = true;
		ret = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int migrate_dest_ctl_start(struct migrate_dest_ctl *c)
{
	return held_set(c, &c->start);
}

int migrate_dest_ctl_discard(struct migrate_dest_ctl *c)
{
	return held_set(c, &c->discard);
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An agent's control socket: another command (`vmdirty migrate`) asks a
 * running agent to act.  A unix stream socket, one request line per
 * connection, one reply (a JSON object, "ok..." or "error: ...") then close.
 *
 * Source (vmdirty source --control):
 *   migrate       start a migration; the reply is its report (JSON)
 *   cancel        cancel the migration in progress; "error: too late" after
 *                 the commit (the destination decides then)
 *   status        {"state": ..., "phase": ..., "ops": N, ...}
 *   resolve       in doubt: ask the destination now
 *   force-resume  in doubt: resume here; only when the destination is known
 *                 never to have run the guest (it is gone, say)
 *   give-up       in doubt: stop asking; the VM stays paused here
 *   quit          stop the guest and exit (refused while migrating)
 * Destination (vmdirty dest --control):
 *   status        {"state": "waiting"|"ready"|"holding"|"running"|...}
 *   start         run a held copy whose source went silent after READY;
 *                 only when the source is known to be gone for good
 *   discard       discard a held copy
 */
#ifndef VMDIRTY_CONTROL_H
#define VMDIRTY_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#define CONTROL_MAX_LINE	256

enum control_cmd {
	CONTROL_NONE, CONTROL_MIGRATE, CONTROL_CANCEL, CONTROL_STATUS, CONTROL_QUIT,
	CONTROL_RESOLVE, CONTROL_FORCE_RESUME, CONTROL_GIVE_UP, CONTROL_START, CONTROL_DISCARD,
};

/* Parse one request line; CONTROL_NONE if it is not one. */
enum control_cmd control_parse(const char *line);

struct control;

/*
 * The server answers every request but migrate and quit itself, through
 * handle() (on the server thread): it writes the reply, and returns false
 * for a request this agent does not take.  migrate and quit are queued for
 * the main thread, whose control_finish() writes the reply.
 */
struct control_ops {
	bool (*handle)(void *ctx, enum control_cmd cmd, FILE *reply);
	void *ctx;
	bool no_queue;		/* migrate and quit go to handle() too */
};

int control_listen(const char *path, const struct control_ops *ops, struct control **out);
/* Block until a request for the main thread (MIGRATE or QUIT) or timeout_ms (0: none). */
/* Also returns (CONTROL_NONE) once control_wake() was called. */
enum control_cmd control_wait(struct control *c, unsigned int timeout_ms);
/* Reply to the pending MIGRATE/QUIT request; text is a complete reply. */
void control_finish(struct control *c, const char *text);
/* Make a control_wait() in progress return now (signals, say). */
void control_wake(struct control *c);
void control_close(struct control *c);

/* Client side: send line to the socket at path and copy the reply to out. */
int control_request(const char *path, const char *line, FILE *out);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source agent's control socket: another command (`vmdirty migrate`)
 * asks a running source to migrate, cancel, report or quit.  A unix stream
 * socket, one request line per connection, one reply (a JSON object or a
 * one-line error) then close:
 *
 *   migrate            start a migration; the reply is its report (JSON)
 *   cancel             cancel the migration in progress
 *   status             {"state": "running"|"migrating"|"migrated", "ops": N}
 *   quit               stop the guest and exit (refused while migrating)
 */
#ifndef VMDIRTY_CONTROL_H
#define VMDIRTY_CONTROL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#define CONTROL_MAX_LINE	256

enum control_cmd { CONTROL_NONE, CONTROL_MIGRATE, CONTROL_CANCEL, CONTROL_STATUS, CONTROL_QUIT };

/* Parse one request line; CONTROL_NONE if it is not one. */
enum control_cmd control_parse(const char *line);

struct control;

/*
 * The server answers status, cancel and quit itself through these
 * callbacks; migrate is queued for the main thread, whose
 * control_finish() writes the reply.  All callbacks run on the server
 * thread.
 */
struct control_ops {
	void (*status)(void *ctx, FILE *reply);
	void (*cancel)(void *ctx);
	void *ctx;
};

int control_listen(const char *path, const struct control_ops *ops, struct control **out);
/* Block until a request for the main thread (MIGRATE or QUIT) or timeout_ms (0: none). */
enum control_cmd control_wait(struct control *c, unsigned int timeout_ms);
/* Reply to the pending MIGRATE/QUIT request; text is a complete reply. */
void control_finish(struct control *c, const char *text);
void control_close(struct control *c);

/* Client side: send line to the socket at path and copy the reply to out. */
int control_request(const char *path, const char *line, FILE *out);

#endif

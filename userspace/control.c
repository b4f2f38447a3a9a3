// SPDX-License-Identifier: GPL-2.0
/*
 * Control socket: a unix stream socket served by one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "vmm/vmm.h"

struct control {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct control_ops ops;
	pthread_t thread;
	int wake[2];			/* close(wake[1]) stops the thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum control_cmd pending;	/* for the main thread */
	int client;			/* its connection, waiting for the reply */
	bool replied;
	bool woken;			/* control_wake() */
};

enum control_cmd control_parse(const char *line)
{
	static const struct {
		const char *word;
		enum control_cmd cmd;
	} words[] = {
		{ "migrate", CONTROL_MIGRATE },
		{ "cancel", CONTROL_CANCEL },
		{ "status", CONTROL_STATUS },
		{ "quit", CONTROL_QUIT },
		{ "resolve", CONTROL_RESOLVE },
		{ "force-resume", CONTROL_FORCE_RESUME },
		{ "give-up", CONTROL_GIVE_UP },
		{ "start", CONTROL_START },
		{ "discard", CONTROL_DISCARD },
	};
	size_t n = strcspn(line, "\r\n");

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (n == strlen(words[i].word) && !strncmp(line, words[i].word, n))
			return words[i].cmd;
	return CONTROL_NONE;
}

static void reply_close(int fd, const char *text)
{
	size_t len = strlen(text);

	while (len) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		text += n;
		len -= n;
	}
	close(fd);
}

/* One request line, bounded in size and time. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf + got, cap - 1 - got, 0);
		if (n <= 0)
			return n ? -errno : -ENODATA;
		got += n;
		buf[got] = 0;
		if (strchr(buf, '\n'))
			return 0;
	}
	return -EMSGSIZE;
}

static void handle(struct control *c, int fd)
{
	char line[CONTROL_MAX_LINE];
	enum control_cmd cmd;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (read_line(fd, line, sizeof(line))) {
		reply_close(fd, "error: bad request\n");
		return;
	}
	cmd = control_parse(line);
	switch (cmd) {
	case CONTROL_NONE:
		reply_close(fd, "error: unknown request\n");
		return;
	case CONTROL_MIGRATE:
	case CONTROL_QUIT:
		if (c->ops.no_queue)
			break;
		pthread_mutex_lock(&c->lock);
		if (c->pending != CONTROL_NONE || c->client >= 0) {
			pthread_mutex_unlock(&c->lock);
			reply_close(fd, "error: busy\n");
			return;
		}
		c->pending = cmd;
		c->client = fd;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return;
	default:
		break;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		reply_close(fd, "error: out of memory\n");
		return;
	}
	if (!c->ops.handle(c->ops.ctx, cmd, f))
		fprintf(f, "error: this agent does not take '%.*s'\n",
			(int)strcspn(line, "\r\n"), line);
	fclose(f);
	reply_close(fd, text ? text : "error\n");
	free(text);
}

static void *server_main(void *arg)
{
	struct control *c = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = c->fd, .events = POLLIN },
			{ .fd = c->wake[0], .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			handle(c, fd);
	}
	return NULL;
}

int control_listen(const char *path, const struct control_ops *ops, struct control **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *c;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->client = -1;
	c->ops = *ops;
	strcpy(c->path, path);
	strcpy(sa.sun_path, path);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || pipe2(c->wake, O_CLOEXEC))
		goto err_errno;
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(c->fd, 4))
		goto err_errno;
	ret = pthread_create(&c->thread, NULL, server_main, c);
	if (ret) {
		errno = ret;
		unlink(path);
		goto err_errno;
	}
	*out = c;
	return 0;
err_errno:
	ret = -errno;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return ret;
}

enum control_cmd control_wait(struct control *c, unsigned int timeout_ms)
{
	struct timespec ts;
	enum control_cmd cmd;

	ts = vmm_deadline_ms(timeout_ms);
	pthread_mutex_lock(&c->lock);
	while (c->pending == CONTROL_NONE && !c->woken) {
		if (!timeout_ms)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	}
	c->woken = false;
	cmd = c->pending;
	pthread_mutex_unlock(&c->lock);
	return cmd;
}

void control_wake(struct control *c)
{
	pthread_mutex_lock(&c->lock);
	c->woken = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void control_finish(struct control *c, const char *text)
{
	pthread_mutex_lock(&c->lock);
	if (c->client >= 0)
		reply_close(c->client, text);
	c->client = -1;
	c->pending = CONTROL_NONE;
	pthread_mutex_unlock(&c->lock);
}

void control_close(struct control *c)
{
	if (!c)
		return;
	close(c->wake[1]);
	pthread_join(c->thread, NULL);
	control_finish(c, "error: the agent is exiting\n");
	close(c->wake[0]);
	close(c->fd);
	unlink(c->path);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int control_request(const char *path, const char *line, FILE *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	ssize_t n;
	int fd, ret = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line) ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* The reply to migrate comes when the migration ends: no timeout. */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		fwrite(buf, 1, n, out);
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

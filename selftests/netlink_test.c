// SPDX-License-Identifier: GPL-2.0
/*
 * The "vmdirty" generic netlink family, through libnl-genl: GET_SESSION do
 * and dump with the per-vCPU counters, the counters matching the shared
 * region, a dump flagged NLM_F_DUMP_INTR when sessions come or go during
 * it, the "events" group, and every rejected request (one test per case).
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/genetlink.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksft_compat.h"
#include "vmdirty_nl.h"
#include "vmdirty_util.h"

/* Outside a harness assertion: log and fail. */
#define ADD_FAILURE(a) do {						\
	TH_LOG("attribute %d missing", a);				\
	_metadata->passed = 0;						\
} while (0)

FIXTURE(genl) {
	struct vmdirty_nl nl;
	struct bare_vm vm;
	int fd;
	struct vmdirty_attach attach;
	struct vmdirty_shm_header *hdr;
};

FIXTURE_SETUP(genl)
{
	int ret;

	self->hdr = NULL;
	self->nl.sk = NULL;
	BARE_SESSION_SETUP(self, 2);
	ret = vmdirty_nl_open(&self->nl);
	ASSERT_EQ(0, ret) TH_LOG("netlink: %s", strerror(-ret));
	ASSERT_EQ(0, vmdirty_attach(self->fd, self->vm.vm_fd, &self->attach));
	self->hdr = vmdirty_map(self->fd, self->attach.region_size);
	ASSERT_NE(NULL, self->hdr);
	/* One walk, so that both vCPUs are known. */
	ASSERT_EQ(0, vmdirty_harvest(self->fd, 0, NULL));
}

FIXTURE_TEARDOWN(genl)
{
	if (self->hdr)
		munmap(self->hdr, self->attach.region_size);
	if (self->fd >= 0)
		close(self->fd);
	bare_vm_destroy(&self->vm);
	vmdirty_nl_close(&self->nl);
}

TEST_F(genl, get_session)
{
	struct vmdirty_nl_session s;
	int a;

	ASSERT_EQ(0, vmdirty_nl_get(&self->nl, self->attach.session_id, -1, &s));
	EXPECT_EQ(VMDIRTY_CMD_GET_SESSION, s.cmd);
	/* Every attribute but the request's DUMP_FLAGS and the vCPUs. */
	for (a = VMDIRTY_A_SESSION_ID; a <= VMDIRTY_A_DRAIN_INTERVAL_US; a++)
		if (a != VMDIRTY_A_DUMP_FLAGS && !s.has[a])
			ADD_FAILURE(a);
	EXPECT_FALSE(s.has[VMDIRTY_A_VCPUS]);
	EXPECT_EQ(self->attach.session_id, s.id);
	EXPECT_EQ(0, s.flags);
	EXPECT_EQ(getpid(), s.owner_pid);
	EXPECT_EQ(gettid(), s.vm_pid);
	EXPECT_EQ(1, s.layout_gen);
	EXPECT_EQ(1, s.nr_slots);
	EXPECT_EQ(2, s.nr_vcpus);
	EXPECT_EQ(256, s.tracked_pages);
	EXPECT_EQ(1, s.harvests);
	EXPECT_EQ(0, s.drain_interval_us);
}

/* The counters are the region's. */
TEST_F(genl, counters_match_region)
{
	struct vmdirty_nl_session s;
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, vmdirty_harvest(self->fd, i ? VMDIRTY_HARVEST_NO_SWAP : 0, NULL));
	ASSERT_EQ(0, vmdirty_nl_get(&self->nl, self->attach.session_id, 0, &s));
	EXPECT_EQ(self->hdr->harvests, s.harvests);
	EXPECT_EQ(self->hdr->drains, s.drains);
	EXPECT_EQ(self->hdr->entries, s.entries);
	EXPECT_EQ(self->hdr->resets, s.resets);
	EXPECT_EQ(self->hdr->dropped, s.dropped);
	EXPECT_EQ(self->hdr->live_pages, s.live_pages);
	EXPECT_EQ(self->hdr->layout_gen, s.layout_gen);
	EXPECT_EQ(2, s.harvests);
	EXPECT_EQ(2, s.drains);
}

TEST_F(genl, get_session_vcpus)
{
	struct vmdirty_shm_vcpu *v = vmdirty_shm_vcpus(self->hdr);
	struct vmdirty_nl_session s;
	unsigned int i;

	ASSERT_EQ(0, vmdirty_nl_get(&self->nl, self->attach.session_id,
				    VMDIRTY_DUMP_F_VCPUS, &s));
	ASSERT_TRUE(s.has[VMDIRTY_A_VCPUS]);
	ASSERT_EQ(2, s.nr_vcpu_entries);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(i, s.vcpus[i].idx);
		EXPECT_EQ(v[i].vcpu_id, s.vcpus[i].id);
		EXPECT_EQ(4096, s.vcpus[i].ring_size);
		EXPECT_EQ(v[i].ring_used, s.vcpus[i].ring_used);
		EXPECT_EQ(v[i].entries, s.vcpus[i].entries);
		EXPECT_EQ(v[i].last_entries, s.vcpus[i].last_entries);
	}
}

TEST_F(genl, dump)
{
	static struct vmdirty_nl_session all[64];
	unsigned int i, n, found = 0;
	bool intr;

	ASSERT_EQ(0, vmdirty_nl_dump(&self->nl, VMDIRTY_DUMP_F_VCPUS, all, 64, &n, &intr));
	EXPECT_FALSE(intr);
	for (i = 0; i < n && i < 64; i++) {
		EXPECT_TRUE(all[i].nlmsg_flags & NLM_F_MULTI);
		if (all[i].id != self->attach.session_id)
			continue;
		found++;
		EXPECT_EQ(2, all[i].nr_vcpu_entries);
		EXPECT_EQ(getpid(), all[i].owner_pid);
	}
	EXPECT_EQ(1, found);
}

/* Sessions not attached are not reported. */
TEST_F(genl, unattached_session_not_listed)
{
	static struct vmdirty_nl_session all[64];
	int other = vmdirty_open();
	unsigned int n;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, vmdirty_nl_dump(&self->nl, -1, all, 64, &n, NULL));
	EXPECT_EQ(1, n);
	close(other);
}

/* --- A dump that sessions come and go under ----------------------------- */

#define MANY	64

/* Raw netlink, to read a dump one datagram at a time. */
static int dump_socket(int family, uint32_t seq)
{
	struct {
		struct nlmsghdr nlh;
		struct genlmsghdr g;
	} req = {
		.nlh = {
			.nlmsg_len = sizeof(req), .nlmsg_type = family,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq,
		},
		.g = { .cmd = VMDIRTY_CMD_GET_SESSION, .version = VMDIRTY_GENL_VERSION },
	};
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

	if (sk < 0)
		return -errno;
	if (send(sk, &req, sizeof(req), 0) != sizeof(req)) {
		close(sk);
		return -errno;
	}
	return sk;
}

/* One datagram: sessions in it, whether flagged, whether the dump ended. */
static int dump_read(int sk, unsigned int *sessions, bool *intr, bool *done)
{
	char buf[4096] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	ssize_t len = recv(sk, buf, sizeof(buf), 0);

	if (len < 0)
		return -errno;
	for (nlh = (void *)buf; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			*intr = true;
		if (nlh->nlmsg_type == NLMSG_ERROR)
			return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error ?: -EPROTO;
		if (nlh->nlmsg_type == NLMSG_DONE)
			*done = true;
		else
			(*sessions)++;
	}
	return 0;
}

struct many {
	struct bare_vm vm[MANY];
	int fd[MANY];
};

static void many_open(struct __test_metadata *_metadata, struct many *m)
{
	int i;

	for (i = 0; i < MANY; i++) {
		m->fd[i] = vmdirty_open();
		ASSERT_LE(0, m->fd[i]);
		ASSERT_EQ(0, bare_vm_create(&m->vm[i], 4096));
		ASSERT_EQ(0, vmdirty_attach(m->fd[i], m->vm[i].vm_fd, NULL));
		/* The session holds the VM. */
		bare_vm_destroy(&m->vm[i]);
	}
}

static void many_close(struct many *m)
{
	int i;

	for (i = 0; i < MANY; i++)
		if (m->fd[i] >= 0)
			close(m->fd[i]);
}

static unsigned int dump_all(struct __test_metadata *_metadata, int family,
			     int (*between)(struct many *m), struct many *m, bool *intr)
{
	unsigned int sessions = 0, reads = 0;
	bool done = false;
	int sk = dump_socket(family, 1);

	*intr = false;
	EXPECT_LE(0, sk);
	if (sk < 0)
		return 0;
	while (!done) {
		EXPECT_EQ(0, dump_read(sk, &sessions, intr, &done));
		if (reads++ == 0 && between)
			between(m);
		if (reads > 100)
			break;
	}
	close(sk);
	TH_LOG("%u sessions in %u datagrams%s", sessions, reads, *intr ? ", interrupted" : "");
	EXPECT_LE(3, reads);
	return sessions;
}

static int close_last(struct many *m)
{
	close(m->fd[MANY - 1]);
	m->fd[MANY - 1] = -1;
	return 0;
}

TEST_F_TIMEOUT(genl, dump_consistent, 300)
{
	struct many *m = calloc(1, sizeof(*m));
	bool intr;

	ASSERT_NE(NULL, m);
	many_open(_metadata, m);
	EXPECT_EQ(MANY + 1, dump_all(_metadata, self->nl.family, NULL, m, &intr));
	EXPECT_FALSE(intr);
	many_close(m);
	free(m);
}

TEST_F_TIMEOUT(genl, dump_interrupted, 300)
{
	struct many *m = calloc(1, sizeof(*m));
	bool intr;

	ASSERT_NE(NULL, m);
	many_open(_metadata, m);
	dump_all(_metadata, self->nl.family, close_last, m, &intr);
	EXPECT_TRUE(intr);
	many_close(m);
	free(m);
}

/* --- Events -------------------------------------------------------------- */

static void expect_event(struct __test_metadata *_metadata, struct vmdirty_nl *ev,
			 uint8_t cmd, uint32_t id, struct vmdirty_nl_session *out)
{
	int ret = vmdirty_nl_event(ev, out, 2000);

	ASSERT_EQ(0, ret) TH_LOG("waiting for event %u: %s", cmd, strerror(-ret));
	EXPECT_EQ(cmd, out->cmd);
	EXPECT_EQ(id, out->id);
	EXPECT_FALSE(out->has[VMDIRTY_A_VCPUS]);
}

TEST_F(genl, events)
{
	struct vmdirty_nl ev;
	struct vmdirty_nl_session s;
	struct vmdirty_attach a;
	struct bare_vm vm;
	int fd;

	ASSERT_EQ(0, vmdirty_nl_open(&ev));
	ASSERT_EQ(0, vmdirty_nl_subscribe(&ev));
	fd = vmdirty_open();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bare_vm_simple(&vm, 1));
	ASSERT_EQ(0, vmdirty_attach(fd, vm.vm_fd, &a));
	expect_event(_metadata, &ev, VMDIRTY_CMD_SESSION_NEW, a.session_id, &s);
	EXPECT_EQ(getpid(), s.owner_pid);
	EXPECT_EQ(1, s.nr_slots);

	ASSERT_EQ(0, bare_vm_add_slot(&vm, 1, 16 << 20, 1 << 20));
	ASSERT_EQ(0, vmdirty_harvest(fd, 0, NULL));
	expect_event(_metadata, &ev, VMDIRTY_CMD_LAYOUT_STALE, a.session_id, &s);
	EXPECT_EQ(VMDIRTY_SESSION_F_STALE, s.flags);
	EXPECT_EQ(2, s.layout_gen);

	close(fd);
	expect_event(_metadata, &ev, VMDIRTY_CMD_SESSION_DEL, a.session_id, &s);
	EXPECT_EQ(-ETIMEDOUT, vmdirty_nl_event(&ev, &s, 100));
	bare_vm_destroy(&vm);
	vmdirty_nl_close(&ev);
}

TEST_F(genl, draining_flag)
{
	struct vmdirty_nl_session s;

	ASSERT_EQ(0, vmdirty_set_drain(self->fd, VMDIRTY_DRAIN_ENABLE, 2000, 4000, 0));
	ASSERT_EQ(0, vmdirty_nl_get(&self->nl, self->attach.session_id, -1, &s));
	EXPECT_EQ(VMDIRTY_SESSION_F_DRAINING, s.flags);
	EXPECT_LE(2000, s.drain_interval_us);
	EXPECT_GE(4000, s.drain_interval_us);
	ASSERT_EQ(0, vmdirty_set_drain(self->fd, 0, 0, 0, 0));
	ASSERT_EQ(0, vmdirty_nl_get(&self->nl, self->attach.session_id, -1, &s));
	EXPECT_EQ(0, s.flags);
	EXPECT_EQ(0, s.drain_interval_us);
}

/* --- Rejected requests: one test each ------------------------------------ */

static struct nl_msg *get_msg(FIXTURE_DATA(genl) *self, int flags)
{
	return vmdirty_nl_msg(&self->nl, VMDIRTY_CMD_GET_SESSION, flags);
}

TEST_F(genl, do_without_session_id)
{
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, get_msg(self, 0)));
}

TEST_F(genl, do_unknown_session)
{
	struct vmdirty_nl_session s;

	EXPECT_EQ(-ENOENT, vmdirty_nl_get(&self->nl, self->attach.session_id + 1000, -1, &s));
}

TEST_F(genl, do_session_id_wrong_size)
{
	struct nl_msg *msg = get_msg(self, 0);

	nla_put_u64(msg, VMDIRTY_A_SESSION_ID, self->attach.session_id);
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, msg));
}

TEST_F(genl, do_unknown_dump_flag)
{
	struct vmdirty_nl_session s;

	EXPECT_EQ(-EINVAL, vmdirty_nl_get(&self->nl, self->attach.session_id,
					  VMDIRTY_DUMP_F_ALL << 1, &s));
}

TEST_F(genl, do_unknown_attribute)
{
	struct nl_msg *msg = get_msg(self, 0);

	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, self->attach.session_id);
	nla_put_u32(msg, VMDIRTY_A_MAX + 1, 0);
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, msg));
}

/* Attributes the kernel only sends are no input. */
TEST_F(genl, do_output_attribute)
{
	struct nl_msg *msg = get_msg(self, 0);

	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, self->attach.session_id);
	nla_put_u64(msg, VMDIRTY_A_HARVESTS, 1);
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, msg));
}

TEST_F(genl, do_nested_vcpus)
{
	struct nl_msg *msg = get_msg(self, 0);
	struct nlattr *nest;

	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, self->attach.session_id);
	nest = nla_nest_start(msg, VMDIRTY_A_VCPUS);
	nla_put_u32(msg, VMDIRTY_A_VCPU_IDX, 0);
	nla_nest_end(msg, nest);
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, msg));
}

TEST_F(genl, dump_unknown_dump_flag)
{
	static struct vmdirty_nl_session all[4];

	EXPECT_EQ(-EINVAL, vmdirty_nl_dump(&self->nl, 1U << 31, all, 4, NULL, NULL));
}

TEST_F(genl, dump_unknown_attribute)
{
	struct nl_msg *msg = get_msg(self, NLM_F_DUMP);

	nla_put_u32(msg, VMDIRTY_A_MAX + 3, 7);
	EXPECT_EQ(-EINVAL, vmdirty_nl_request(&self->nl, msg));
}

TEST_F(genl, unknown_command)
{
	struct nl_msg *msg = vmdirty_nl_msg(&self->nl, VMDIRTY_CMD_MAX + 1, 0);

	EXPECT_EQ(-EOPNOTSUPP, vmdirty_nl_request(&self->nl, msg));
}

/* Event commands are the kernel's to send. */
TEST_F(genl, event_command_request)
{
	struct nl_msg *msg = vmdirty_nl_msg(&self->nl, VMDIRTY_CMD_SESSION_NEW, 0);

	nla_put_u32(msg, VMDIRTY_A_SESSION_ID, self->attach.session_id);
	EXPECT_EQ(-EOPNOTSUPP, vmdirty_nl_request(&self->nl, msg));
}

/* --- Who may listen ------------------------------------------------------ */

/*
 * The events carry what GET_SESSION hides behind CAP_NET_ADMIN (owner and
 * VM pids, counters): joining the group needs it too.  Before: anyone
 * could listen.
 */
TEST_F(genl, events_need_net_admin)
{
	int status, grp = self->nl.events;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		int sk, ret;

		if (drop_cap(CAP_NET_ADMIN))
			_exit(3);
		sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
		if (sk < 0)
			_exit(4);
		ret = setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp));
		_exit(!ret ? 1 : errno == EPERM ? 0 : 2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) {
		TH_LOG("%s", WEXITSTATUS(status) == 1 ?
		       "a listener without CAP_NET_ADMIN joined the events group" :
		       "setting up the unprivileged listener failed");
	}
}

/* --- Sessions with more vCPUs than one netlink nest holds ---------------- */

/*
 * A nest's length is 16 bits: at 60 bytes a vCPU, one nest of every vCPU
 * overflows past 1092 of them (KVM allows 4096 on 6.12).  Before: the
 * nest's length wrapped and the message was garbage past it.
 */
#define MANY_VCPUS	1100

/* Raw netlink, big buffers: the replies may be hundreds of KiB. */
static int raw_request(int family, uint16_t flags, uint32_t id)
{
	struct {
		struct nlmsghdr nlh;
		struct genlmsghdr g;
		struct nlattr a1;
		uint32_t id;
		struct nlattr a2;
		uint32_t dump_flags;
	} req = {
		.nlh = {
			.nlmsg_len = sizeof(req), .nlmsg_type = family,
			.nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = 7,
		},
		.g = { .cmd = VMDIRTY_CMD_GET_SESSION, .version = VMDIRTY_GENL_VERSION },
		.a1 = { .nla_len = NLA_HDRLEN + 4, .nla_type = VMDIRTY_A_SESSION_ID },
		.id = id,
		.a2 = { .nla_len = NLA_HDRLEN + 4, .nla_type = VMDIRTY_A_DUMP_FLAGS },
		.dump_flags = VMDIRTY_DUMP_F_VCPUS,
	};
	int sk = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	int rcvbuf = 8 << 20;

	if (sk < 0)
		return -errno;
	setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	/* A dump takes no session id. */
	if (flags & NLM_F_DUMP) {
		memmove(&req.a1, &req.a2, sizeof(req.a2) + sizeof(req.dump_flags));
		req.nlh.nlmsg_len -= NLA_HDRLEN + 4;
	}
	if (send(sk, &req, req.nlh.nlmsg_len, 0) != (ssize_t)req.nlh.nlmsg_len) {
		close(sk);
		return -errno;
	}
	return sk;
}

/*
 * The vCPU indexes one message reports for session @id, into seen[];
 * -EPROTO if any attribute's length does not add up.
 */
static int count_vcpus(struct nlmsghdr *nlh, uint32_t id, uint16_t *seen, unsigned int *n)
{
	int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	struct nlattr *first = (void *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN), *a, *e, *x;
	uint32_t sid = UINT32_MAX;
	int rem, erem, xrem;

	for (a = first, rem = len; rem >= NLA_HDRLEN; rem -= NLA_ALIGN(a->nla_len),
	     a = (void *)((char *)a + NLA_ALIGN(a->nla_len))) {
		if (a->nla_len < NLA_HDRLEN || a->nla_len > rem)
			return -EPROTO;
		if ((a->nla_type & NLA_TYPE_MASK) == VMDIRTY_A_SESSION_ID)
			memcpy(&sid, (char *)a + NLA_HDRLEN, 4);
	}
	if (rem > 0 || sid != id)
		return rem > 0 ? -EPROTO : 0;
	for (a = first, rem = len; rem >= NLA_HDRLEN; rem -= NLA_ALIGN(a->nla_len),
	     a = (void *)((char *)a + NLA_ALIGN(a->nla_len))) {
		if ((a->nla_type & NLA_TYPE_MASK) != VMDIRTY_A_VCPUS)
			continue;
		for (e = (void *)((char *)a + NLA_HDRLEN), erem = a->nla_len - NLA_HDRLEN;
		     erem >= NLA_HDRLEN; erem -= NLA_ALIGN(e->nla_len),
		     e = (void *)((char *)e + NLA_ALIGN(e->nla_len))) {
			uint32_t idx = UINT32_MAX;

			if (e->nla_len < NLA_HDRLEN || e->nla_len > erem ||
			    (e->nla_type & NLA_TYPE_MASK) != VMDIRTY_A_VCPUS_ENTRY)
				return -EPROTO;
			for (x = (void *)((char *)e + NLA_HDRLEN), xrem = e->nla_len - NLA_HDRLEN;
			     xrem >= NLA_HDRLEN; xrem -= NLA_ALIGN(x->nla_len),
			     x = (void *)((char *)x + NLA_ALIGN(x->nla_len))) {
				if (x->nla_len < NLA_HDRLEN || x->nla_len > xrem)
					return -EPROTO;
				if (x->nla_type == VMDIRTY_A_VCPU_IDX)
					memcpy(&idx, (char *)x + NLA_HDRLEN, 4);
			}
			if (idx >= MANY_VCPUS)
				return -EPROTO;
			seen[idx]++;
			(*n)++;
		}
		if (erem > 0)
			return -EPROTO;
	}
	return 0;
}

/* Read replies until the ACK (do) or NLMSG_DONE (dump); count our vCPUs. */
static int read_vcpus(int sk, uint32_t id, uint16_t *seen, unsigned int *n,
		      unsigned int *msgs)
{
	static char buf[4 << 20] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	ssize_t len;
	int ret;

	for (;;) {
		len = recv(sk, buf, sizeof(buf), MSG_TRUNC);
		if (len < 0)
			return -errno;
		if (len > (ssize_t)sizeof(buf))
			return -EMSGSIZE;
		for (nlh = (void *)buf; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
			if (nlh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nlh->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(nlh))->error;
			(*msgs)++;
			ret = count_vcpus(nlh, id, seen, n);
			if (ret)
				return ret;
			if (!(nlh->nlmsg_flags & NLM_F_MULTI))
				return 0;
		}
	}
}

TEST(vcpus_past_one_nest)
{
	static uint16_t seen[MANY_VCPUS];
	struct vmdirty_attach a;
	struct vmdirty_nl nl;
	struct bare_vm vm;
	unsigned int i, n, msgs, twice;
	int fd, sk, max, ret, *vcpu = calloc(MANY_VCPUS, sizeof(int));

	if (!bare_vm_supported())
		SKIP(return, "no /dev/kvm with a dirty ring");
	fd = vmdirty_open();
	if (fd == -ENOENT)
		SKIP(return, "vmdirty.ko is not loaded");
	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, vcpu);
	ASSERT_EQ(0, bare_vm_create(&vm, 512));
	max = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max < MANY_VCPUS) {
		bare_vm_destroy(&vm);
		SKIP(return, "KVM allows %d vCPUs per VM: one nest holds 1092", max);
	}
	ASSERT_EQ(0, bare_vm_add_slot(&vm, 0, 1 << 20, 1 << 20));
	/* One fd per vCPU. */
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &(struct rlimit){ MANY_VCPUS + 64, MANY_VCPUS + 64 }));
	for (i = 0; i < MANY_VCPUS; i++) {
		vcpu[i] = ioctl(vm.vm_fd, KVM_CREATE_VCPU, i);
		ASSERT_LE(0, vcpu[i]) TH_LOG("vCPU %u: %s", i, strerror(errno));
	}
	ASSERT_EQ(0, vmdirty_attach(fd, vm.vm_fd, &a));
	ASSERT_EQ(0, vmdirty_harvest(fd, 0, NULL));
	ASSERT_EQ(0, vmdirty_nl_open(&nl));

	for (int dump = 0; dump < 2; dump++) {
		memset(seen, 0, sizeof(seen));
		n = msgs = twice = 0;
		sk = raw_request(nl.family, dump ? NLM_F_DUMP : NLM_F_ACK, a.session_id);
		ASSERT_LE(0, sk);
		ret = read_vcpus(sk, a.session_id, seen, &n, &msgs);
		close(sk);
		for (i = 0; i < MANY_VCPUS; i++)
			twice += seen[i] != 1;
		TH_LOG("%s: %u vCPU entries in %u messages: %s", dump ? "dump" : "do", n, msgs,
		       ret ? strerror(-ret) : "well formed");
		EXPECT_EQ(0, ret);
		EXPECT_EQ(MANY_VCPUS, n);
		EXPECT_EQ(0, twice);
	}
	vmdirty_nl_close(&nl);
	close(fd);
	for (i = 0; i < MANY_VCPUS; i++)
		close(vcpu[i]);
	free(vcpu);
	bare_vm_destroy(&vm);
}

TEST_HARNESS_MAIN

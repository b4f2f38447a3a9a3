// SPDX-License-Identifier: GPL-2.0
/*
 * Memory dumps: raw (file offset == gpa, QEMU's pmemsave from 0 and vmdirty
 * dest --dump-mem) or an ELF core whose PT_LOAD segments carry their
 * guest-physical address in p_paddr (QEMU's dump-guest-memory, ELF32 or
 * ELF64 as QEMU picks by the guest's mode and RAM size).  Every offset and
 * length is checked against the file before it is used.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check/check.h"

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ret;
}

const char *dump_format_name(enum dump_format f)
{
	return f == DUMP_ELF ? "ELF core" : "raw";
}

static int add_range(struct dump *d, uint64_t gpa, uint64_t len, uint64_t off, char *err,
		     size_t errlen)
{
	if (off > d->size || len > d->size - off)
		return fail(err, errlen, -EINVAL,
			    "segment at gpa %#llx: %llu bytes from offset %llu, beyond the file",
			    (unsigned long long)gpa, (unsigned long long)len,
			    (unsigned long long)off);
	if (gpa + len < gpa)
		return fail(err, errlen, -EINVAL, "segment at gpa %#llx wraps around",
			    (unsigned long long)gpa);
	if (!len)
		return 0;
	if (d->nr == DUMP_MAX_RANGES)
		return fail(err, errlen, -E2BIG, "more than %d memory segments", DUMP_MAX_RANGES);
	d->r[d->nr++] = (struct dump_range){ .gpa = gpa, .len = len, .off = off };
	return 0;
}

/* The fields both ELF classes share, read into 64-bit form. */
struct phdr {
	uint32_t type;
	uint64_t off, paddr, filesz;
};

static int parse_elf(struct dump *d, char *err, size_t errlen)
{
	const unsigned char *id = d->data;
	uint64_t phoff, phnum, phentsize, want, i;
	int is64;

	if (d->size < EI_NIDENT || (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64))
		return fail(err, errlen, -EINVAL, "an ELF file of neither class");
	is64 = id[EI_CLASS] == ELFCLASS64;
	if (id[EI_DATA] != ELFDATA2LSB)
		return fail(err, errlen, -EINVAL, "a big-endian ELF file: not an x86 guest's dump");
	if (d->size < (is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
		return fail(err, errlen, -EINVAL, "an ELF file cut short in its header");
	if (is64) {
		const Elf64_Ehdr *e = (const void *)d->data;

		if (e->e_type != ET_CORE)
			return fail(err, errlen, -EINVAL, "an ELF file, but not a core dump");
		phoff = e->e_phoff;
		phnum = e->e_phnum;
		phentsize = e->e_phentsize;
		want = sizeof(Elf64_Phdr);
	} else {
		const Elf32_Ehdr *e = (const void *)d->data;

		if (e->e_type != ET_CORE)
			return fail(err, errlen, -EINVAL, "an ELF file, but not a core dump");
		phoff = e->e_phoff;
		phnum = e->e_phnum;
		phentsize = e->e_phentsize;
		want = sizeof(Elf32_Phdr);
	}
	if (phentsize != want || !phnum || phnum == PN_XNUM || phoff > d->size ||
	    (d->size - phoff) / want < phnum)
		return fail(err, errlen, -EINVAL, "bad program headers in the ELF core");
	for (i = 0; i < phnum; i++) {
		const uint8_t *p = d->data + phoff + i * want;
		struct phdr ph;
		int r;

		if (is64) {
			const Elf64_Phdr *h = (const void *)p;

			ph = (struct phdr){ h->p_type, h->p_offset, h->p_paddr, h->p_filesz };
		} else {
			const Elf32_Phdr *h = (const void *)p;

			ph = (struct phdr){ h->p_type, h->p_offset, h->p_paddr, h->p_filesz };
		}
		if (ph.type != PT_LOAD)
			continue;
		r = add_range(d, ph.paddr, ph.filesz, ph.off, err, errlen);
		if (r)
			return r;
	}
	if (!d->nr)
		return fail(err, errlen, -EINVAL, "an ELF core without memory (no PT_LOAD)");
	return 0;
}

int dump_parse(const void *data, size_t size, struct dump *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->data = data;
	d->size = size;
	if (!size)
		return fail(err, errlen, -EINVAL, "empty");
	if (size >= 8 && !memcmp(data, "KDUMP   ", 8))
		return fail(err, errlen, -EINVAL,
			    "a kdump-compressed dump: take an ELF one (dump-guest-memory, format elf)");
	if (size >= SELFMAG && !memcmp(data, ELFMAG, SELFMAG)) {
		d->format = DUMP_ELF;
		return parse_elf(d, err, errlen);
	}
	/* Guest RAM at gpa 0 is the real-mode IVT: never an ELF or kdump magic. */
	d->format = DUMP_RAW;
	return add_range(d, 0, size, 0, err, errlen);
}

int dump_open(const char *path, struct dump *d, char *err, size_t errlen)
{
	struct stat st;
	void *map;
	int fd, r;

	memset(d, 0, sizeof(*d));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r = fail(err, errlen, -EINVAL, "not a regular file");
		close(fd);
		return r;
	}
	if (!st.st_size) {
		close(fd);
		return fail(err, errlen, -EINVAL, "empty");
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	r = -errno;
	close(fd);
	if (map == MAP_FAILED)
		return fail(err, errlen, r, "cannot map it: %s", strerror(-r));
	r = dump_parse(map, st.st_size, d, err, errlen);
	d->map_size = st.st_size;
	if (r)
		dump_close(d);
	return r;
}

void dump_close(struct dump *d)
{
	if (d->map_size)
		munmap((void *)d->data, d->map_size);
	memset(d, 0, sizeof(*d));
}

const void *dump_ptr(const struct dump *d, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < d->nr; i++) {
		const struct dump_range *r = &d->r[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->len && len <= r->len - (gpa - r->gpa))
			return d->data + r->off + (gpa - r->gpa);
	}
	return NULL;
}

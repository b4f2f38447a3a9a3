/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the agent prints: a progress line per round, the final report of a
 * migration, and the same as one JSON object for tools (--json).
 */
#ifndef VMDIRTY_REPORT_H
#define VMDIRTY_REPORT_H

#include <stdio.h>

#include "migrate/migrate.h"

/* One line per pre-copy round; ctx is the FILE to print on. */
void report_progress(void *ctx, const struct migrate_progress *p);
void report_text(FILE *f, const struct migrate_report *r);
void report_json(FILE *f, const struct migrate_report *r);
/* A JSON string literal, escaped. */
void report_json_str(FILE *f, const char *s);

#endif

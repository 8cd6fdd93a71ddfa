/*
 * delta_acc — private: what the user stage of one input partition learnt
 * since the last checkpoint, pre-aggregated as pair-delta batch entries
 * (include/xsell/records.h, xs_delta_t), for xs_engine_take_deltas().
 *
 * Entries are merged by (kind, class, a, b): PAIR and USERS counts are
 * summed, CATEGORY keeps one entry per (item, category), TREND weights are
 * summed relative to the entry's last_ts (re-based when it grows); last_ts
 * is the latest event time merged. A PAIR is kept with a < b (the item
 * stage counts a pair into both items alike). Entries stay in the order
 * they were first seen. Memory: per distinct (kind, class, a, b) of the
 * interval one entry (48 bytes) and two to four table slots (4 bytes each),
 * up to twice that while the arrays grow by doubling; at most one entry per
 * delta the partition's events made (xs_delta_acc_bytes).
 */
#ifndef XSELL_LIB_DELTA_ACC_H
#define XSELL_LIB_DELTA_ACC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/records.h"

typedef struct xs_delta_acc {
    xs_delta_t *v; /* entries, first-seen order */
    size_t n, cap;
    uint32_t *slot;                    /* open addressing: entry index + 1, 0 empty */
    size_t n_slots;                    /* power of two, or 0 */
    int64_t users_total, users_bought; /* change of the totals */
    int64_t ts;                        /* latest event time merged (when has_ts) */
    bool has_ts;
} xs_delta_acc_t;

/* Zero-initialise ({0}) before use. */
void xs_delta_acc_clear(xs_delta_acc_t *a);
/* Merges d (kind PAIR/USERS: d->count more; CATEGORY; TREND: d->weight
 * relative to d->last_ts). */
xs_err_t xs_delta_acc_add(xs_delta_acc_t *a, const xs_delta_t *d);
/* Merges a change of the totals at event time ts. */
void xs_delta_acc_users(xs_delta_acc_t *a, int64_t total, int64_t bought, int64_t ts);
/* Whether anything is to be published: entries or a change of the totals. */
bool xs_delta_acc_pending(const xs_delta_acc_t *a);
/* Bytes held. */
size_t xs_delta_acc_bytes(const xs_delta_acc_t *a);

#endif

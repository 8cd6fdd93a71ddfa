/*
 * xsell — identifier hashing.
 *
 * Every string id (user, item, category, event) is turned into a 64-bit
 * hash with XXH3-64 seeded with XS_HASH_SEED. The seed is part of the
 * stored format: changing it invalidates every state directory, so it is
 * fixed here and recorded in the `meta` column family. Hash 0 is reserved
 * for "none"; an id that hashes to 0 is mapped to 1.
 */
#ifndef XSELL_HASH_H
#define XSELL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define XS_HASH_SEED UINT64_C(0x78736c6c2d763031) /* "xsll-v01" */

uint64_t xs_hash(const void *data, size_t len);
uint64_t xs_hash_str(const char *s); /* NULL or "" -> 0 */
/* 128-bit hash rendered as 32 lowercase hex characters + NUL (33 bytes). */
void xs_hash_hex128(const void *data, size_t len, char out[33]);

#endif

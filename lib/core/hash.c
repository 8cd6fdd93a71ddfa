/*
 * hash.c — seeded XXH3 hashing of identifiers (see include/xsell/hash.h).
 */
#include "xsell/hash.h"

#include <string.h>
#include <xxhash.h>

uint64_t xs_hash(const void *data, size_t len)
{
    uint64_t h = XXH3_64bits_withSeed(data, len, XS_HASH_SEED);
    return h ? h : 1;
}

uint64_t xs_hash_str(const char *s)
{
    if (!s || !*s)
        return 0;
    return xs_hash(s, strlen(s));
}

void xs_hash_hex128(const void *data, size_t len, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    XXH128_hash_t h = XXH3_128bits_withSeed(data, len, XS_HASH_SEED);
    uint64_t parts[2] = {h.high64, h.low64};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 16; i++)
            out[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 0xf];
    out[32] = '\0';
}

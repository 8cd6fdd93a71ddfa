/*
 * xsell — Avro codec for events and cross-sell lists.
 *
 * The only module that includes <avro.h>. Reader schemas are the files in
 * schemas/, embedded into the library at build time (one source of truth).
 *
 * Framings accepted by xs_codec_decode():
 *   - Avro single-object encoding: C3 01, then the 8-byte little-endian
 *     CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form,
 *     then the Avro binary body. The writer schema must be known: the
 *     reader schemas are always known; older/newer writer schemas are added
 *     with xs_codec_add_writer().
 *   - Confluent wire format: 00, then a 4-byte big-endian schema id, then
 *     the body. Ids are mapped to writer schemas with xs_codec_add_writer().
 *   - Bare Avro body: only when the caller passes a bare kind (the topic is
 *     configured as bare); decoded with that kind's bare writer schema
 *     (the reader schema unless xs_codec_set_bare_writer() was called).
 * Writer schemas that differ from the reader schema are resolved against
 * it by Avro's resolution rules: fields matched by name, missing reader
 * fields take the reader default, extra writer fields are skipped, numeric
 * promotions, enum symbols by name (unknown symbol -> enum default),
 * unions matched branch by branch.
 *
 * Encoding always writes single-object encoding with the reader schema.
 */
#ifndef XSELL_CODEC_H
#define XSELL_CODEC_H

#include "xsell/common.h"
#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_codec xs_codec_t;

/* Framing detected on decode (for metrics and errors). */
typedef enum xs_framing {
    XS_FRAMING_SINGLE_OBJECT = 0,
    XS_FRAMING_CONFLUENT,
    XS_FRAMING_BARE,
} xs_framing_t;

/* Creates a codec with the embedded reader schemas. NULL + errstr on failure. */
xs_codec_t *xs_codec_new(char *errstr, size_t errstr_size);
void xs_codec_destroy(xs_codec_t *codec); /* NULL is a no-op */

/*
 * Registers a writer schema (JSON text) for `kind`. It becomes decodable by
 * its fingerprint (single-object) and, when confluent_id >= 0, by that
 * Confluent schema id. Fails with XS_ERR_SCHEMA (and errstr) when the JSON
 * does not parse or cannot be resolved against the reader schema.
 */
xs_err_t xs_codec_add_writer(xs_codec_t *codec, xs_event_kind_t kind, const char *schema_json,
                             int32_t confluent_id, char *errstr, size_t errstr_size);

/* True when a writer schema is registered for Confluent schema id `id`. */
bool xs_codec_has_confluent_id(const xs_codec_t *codec, int32_t id);

/* Sets the writer schema used for bare framing of `kind` (default: reader). */
xs_err_t xs_codec_set_bare_writer(xs_codec_t *codec, xs_event_kind_t kind, const char *schema_json,
                                  char *errstr, size_t errstr_size);

/*
 * Decodes one message. bare_kind is the kind to assume for bare framing, or
 * -1 when the topic does not allow bare messages (then a message that is
 * neither single-object nor Confluent is an error). On success *ev is
 * initialised and filled (caller clears it); *kind_out receives the kind.
 * On failure returns XS_ERR_DECODE / XS_ERR_SCHEMA and writes a reason such
 * as "unknown fingerprint 0x1234..." or "truncated Avro body" into reason;
 * *ev is left cleared. Does NOT run xs_event_validate().
 */
xs_err_t xs_codec_decode(xs_codec_t *codec, const void *data, size_t len, int bare_kind,
                         xs_event_t *ev, xs_event_kind_t *kind_out, xs_framing_t *framing_out,
                         char *reason, size_t reason_size);

/* Encodes a click/cart/item event (by ev->kind) as single-object; appends to out. */
xs_err_t xs_codec_encode_event(xs_codec_t *codec, const xs_event_t *ev, xs_buf_t *out);

/* Encodes a cross-sell list as single-object; appends to out. */
xs_err_t xs_codec_encode_list(xs_codec_t *codec, const xs_list_t *list, xs_buf_t *out);

/* Decodes a CrossSellList (single-object or Confluent framing). */
xs_err_t xs_codec_decode_list(xs_codec_t *codec, const void *data, size_t len, xs_list_t *list,
                              char *reason, size_t reason_size);

/*
 * The identity of an encoded CrossSellList, for consumers that only route or
 * deduplicate lists: the message is decoded and checked as by
 * xs_codec_decode_list(), but nothing is copied out. The pointers point into
 * data (not NUL-terminated) and stay valid while data and the codec do.
 */
typedef struct xs_list_ref {
    const char *list_id, *user_id, *trigger_event_id;
    size_t list_id_len, user_id_len, trigger_event_id_len;
} xs_list_ref_t;

xs_err_t xs_codec_peek_list(xs_codec_t *codec, const void *data, size_t len, xs_list_ref_t *ref,
                            char *reason, size_t reason_size);

/* Fingerprint (CRC-64-AVRO of the canonical form) of the reader schema of kind. */
uint64_t xs_codec_fingerprint(const xs_codec_t *codec, xs_event_kind_t kind);

/* The embedded reader schema JSON of kind (static). */
const char *xs_codec_schema_json(xs_event_kind_t kind);

/* Parsing Canonical Form of a schema given as JSON text; appended to out (NUL-terminated). */
xs_err_t xs_codec_schema_canonical_form(const char *schema_json, xs_buf_t *out, char *errstr,
                                        size_t errstr_size);
/* CRC-64-AVRO (Rabin) fingerprint of bytes. */
uint64_t xs_codec_schema_crc64(const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif

/*
 * xsell: events from JSON objects (POST /v1/events and `--format jsonl`).
 */
#ifndef XSELL_EVENT_JSON_H
#define XSELL_EVENT_JSON_H

#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One event from a JSON object in the shape of `--format jsonl` (the Avro
 * schemas' field names; "kind": click, cart or item, else inferred; "ts"
 * epoch milliseconds or ISO-8601; no user_id but a session_id: user_id
 * XS_SESSION_USER_PREFIX + session_id): the reader of POST /v1/events too. On
 * success the caller owns *ev (xs_event_clear); on failure *ev is cleared
 * and why says what is wrong (XS_ERR_DECODE) or XS_ERR_NOMEM. Does not run
 * xs_event_validate().
 */
struct xs_json;
xs_err_t xs_event_json_decode(const struct xs_json *obj, xs_event_t *ev, char *why,
                              size_t why_size);

#ifdef __cplusplus
}
#endif
#endif

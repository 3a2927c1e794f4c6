/* netvsc-patch: UTF-16LE <-> UTF-8, the one place either is converted
 * (registry strings written by hive.c, scripts.ini in defer_ini.c).
 *
 * Both directions are strict: what is not a well-formed string is
 * refused, never passed on or replaced.  UTF-16LE: an odd length, an
 * unpaired surrogate (a low one alone, a high one not followed by a
 * low one) or a NUL character.  UTF-8: a stray continuation byte, an
 * overlong form, a truncated sequence, an encoded surrogate or a code
 * point above U+10FFFF.  No byte order mark is read or written: that is
 * the file format's business, not the string's. */
#ifndef NETVSC_PATCH_UTF16_H
#define NETVSC_PATCH_UTF16_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* The length (1 to 4) of the well-formed UTF-8 sequence at P, which
 * has LEN bytes left, with its code point in *CP; 0 if none starts
 * there.  A NUL-terminated string may pass SIZE_MAX: its NUL ends any
 * sequence, and nothing after it is read.  The one UTF-8 decoder (also
 * escape.c's printing and defer.c's checks). */
size_t utf8_decode (const unsigned char *p, size_t len, uint32_t *cp);

/* Append the LEN bytes of UTF-16LE at P to B as UTF-8.  Returns 0, or
 * -1 with errno EINVAL (B may hold part of the text). */
int utf16le_to_utf8 (const unsigned char *p, size_t len, struct strbuf *b);

/* Append the LEN bytes of UTF-8 at P to B as UTF-16LE (a NUL byte is
 * converted like any character).  Returns 0, or -1 with errno EINVAL
 * (B may hold part of the text). */
int utf8_to_utf16le (const unsigned char *p, size_t len, struct strbuf *b);

#endif

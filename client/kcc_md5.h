/*
 * kcc_md5.h - MD5 (RFC 1321), only for placing servers and keys on the
 * ketama ring; not for anything that needs a secure hash.
 */
#ifndef KCC_MD5_H
#define KCC_MD5_H

#include <stddef.h>
#include <stdint.h>

/* Write the 16-byte MD5 digest of data[0..len) to out. */
void kcc_md5(const void *data, size_t len, uint8_t out[16]);

#endif
